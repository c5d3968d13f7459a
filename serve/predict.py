"""Read digits from image files without a server: `python -m serve.predict IMAGE... [--json]`.

Uses the same checked model and the same decoding as POST /predict. Prints one line per file
(`path: 7 (99.3%)`, `path: 7? unsure (41.0%)` or `path: not a digit`), or with --json one JSON object per line with the API's fields plus "file".
Exits 1 if any file could not be read or holds no digit.
"""

import argparse
import json
import sys
from pathlib import Path

from serve.decode import DEFAULT_MAX_IMAGE_PIXELS, check_ink, image_to_array
from serve.model import Model, ModelError

ROOT = Path(__file__).resolve().parent.parent


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m serve.predict", description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="+", type=Path, help="image files (PNG, JPEG, WebP, BMP, GIF)")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--variant", choices=["fp32", "int8"], default=None,
                        help="model variant (default: the manifest's default_variant)")
    parser.add_argument("--artifacts", type=Path, default=ROOT / "artifacts", help="artifacts directory")
    return parser.parse_args(argv)


def predict_file(model, path):
    """The API's answer for one file, or {"error": ...}."""
    try:
        image = image_to_array(path.read_bytes(), DEFAULT_MAX_IMAGE_PIXELS)
        check_ink(image, model.ink_threshold)
        return model.predict(image)
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


def main(argv=None):
    args = parse_args(argv)
    try:
        model = Model(args.artifacts, args.variant)
    except ModelError as error:
        print(f"serve.predict: {error}", file=sys.stderr)
        return 2
    failed = False
    for path in args.images:
        answer = predict_file(model, path)
        failed = failed or "error" in answer
        if args.json:
            print(json.dumps({"file": str(path), **answer}))
        elif "error" in answer:
            print(f"{path}: error: {answer['error']}")
        else:
            print(f"{path}: {describe(answer)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
