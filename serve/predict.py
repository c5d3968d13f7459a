"""Read digits from image files without a server: `python -m serve.predict IMAGE... [--number] [--json]`.

Uses the same checked model and the same decoding as POST /predict (with --number, POST /number). Prints one
line per file (`path: 7 (99.3%)`, `path: 7? unsure (41.0%)` or `path: not a digit`; with --number
`path: 2026 (97.0%)`, `path: 2026? unsure (41.0%)` or `path: not a number`), or with --json one JSON object
per line with the API's fields plus "file". Exits 1 if any file could not be read or holds no ink.
"""

import argparse
import json
import sys
from functools import partial
from pathlib import Path

from serve.decode import DEFAULT_MAX_IMAGE_PIXELS, MAX_DECODED_SIDE, check_ink, decode_image
from serve.model import Model, ModelError

ROOT = Path(__file__).resolve().parent.parent


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m serve.predict", description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="+", type=Path, help="image files (PNG, JPEG, WebP, BMP, GIF)")
    parser.add_argument("--number", action="store_true", help="read a whole number with the number reader")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--variant", choices=["fp32", "int8"], default=None,
                        help="model variant (default: the manifest's default_variant); the number reader "
                             "runs it too when it has one")
    parser.add_argument("--artifacts", type=Path, default=ROOT / "artifacts", help="artifacts directory")
    return parser.parse_args(argv)


def predict_file(model, path):
    """POST /predict's answer for one file, or {"error": ...}."""
    return answer_file(path, lambda decoded: model.predict(decoded.image), model.ink_threshold, "a digit",
                       MAX_DECODED_SIDE)


def read_number_file(model, path):
    """POST /number's answer for one file, or {"error": ...}."""
    reader = model.numbers
    return answer_file(path, reader.predict, reader.ink_threshold, "a number", model.number_decoded_side)


def answer_file(path, read, ink_threshold, wanted, max_side):
    """`read(decoded)` for one file, or {"error": ...} when it cannot be read or is blank."""
    try:
        decoded = decode_image(path.read_bytes(), DEFAULT_MAX_IMAGE_PIXELS, max_side)
        check_ink(decoded.image, ink_threshold, wanted=wanted)
        return read(decoded)
    except OSError as error:
        return {"error": f"cannot read file: {error.strerror or error}"}
    except ValueError as error:
        return {"error": str(error)}


def describe(answer):
    """One line for a person: the digit, a hedged guess, or no digit at all."""
    if answer["verdict"] == "not_digit":
        return "not a digit"
    if answer["verdict"] == "unsure":
        return f"{answer['digit']}? unsure ({answer['confidence']:.1%})"
    return f"{answer['digit']} ({answer['confidence']:.1%})"


def describe_number(answer):
    """One line for a person: the number, a hedged guess, or no number at all."""
    if answer["verdict"] == "not_number":
        return "not a number"
    if answer["verdict"] == "unsure":
        return f"{answer['number']}? unsure ({answer['confidence']:.1%})"
    return f"{answer['number']} ({answer['confidence']:.1%})"


def main(argv=None):
    args = parse_args(argv)
    try:
        model = Model(args.artifacts, args.variant)
    except ModelError as error:
        print(f"serve.predict: {error}", file=sys.stderr)
        return 2
    if args.number and model.numbers is None:
        print(f'serve.predict: {args.artifacts}: the manifest has no "numbers" section, so no number reader', file=sys.stderr)
        return 2
    read, say = (partial(read_number_file, model), describe_number) if args.number else (partial(predict_file, model), describe)
    failed = False
    for path in args.images:
        answer = read(path)
        failed = failed or "error" in answer
        if args.json:
            print(json.dumps({"file": str(path), **answer}))
        elif "error" in answer:
            print(f"{path}: error: {answer['error']}")
        else:
            print(f"{path}: {say(answer)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
