"""The regression gate of `python -m convert` and `python -m convert.numbers`: a new digit reader replaces the
shipped one only if it reads the MNIST test digits at most 0.1 point worse, and the digit corrections held out
by training (train/feedback.py) no worse; a new number reader only if it reads the held-out number corrections
no worse. Both sides are printed either way; `--skip-gate` ships a deliberate change regardless.
"""

import json
import sys
from pathlib import Path

import numpy as np

from feedback.entry import NUMBER_MODE, shown
from reader.contract import NOT_DIGIT_CLASS

MAX_MNIST_DROP = 0.001  # 0.1 percentage point


class GateError(Exception):
    """The new reader is worse than the shipped one; nothing is written."""


def add_arguments(parser):
    parser.add_argument("--skip-gate", action="store_true", help="ship even if the gate finds the new reader worse than the shipped one "
                        "(on MNIST test or the held-out corrections)")


def read_answers(session, outputs, images):
    """(top digit, what a visitor is told) for each image; the latter is NOT_DIGIT_CLASS when the verdict says so."""
    names = [outputs["probabilities"]["name"]] + ([outputs["verdict"]["name"]] if "verdict" in outputs else [])
    values = outputs.get("verdict", {}).get("values", [])
    digits, answers = [], []
    for image in images:
        results = session.run(names, {session.get_inputs()[0].name: np.ascontiguousarray(image, np.float32)})
        digits.append(int(np.argmax(results[0])))
        said_not_digit = len(results) > 1 and values[int(results[1][0])] == "not_digit"
        answers.append(NOT_DIGIT_CLASS if said_not_digit else digits[-1])
    return np.array(digits), np.array(answers)


def read_numbers(session, outputs, images):
    """What a visitor is told for each drawing, as the store labels it: the number read, or "not_number"."""
    names = [outputs["digits"]["name"], outputs["verdict"]["name"]]
    values = outputs["verdict"]["values"]
    answers = []
    for image in images:
        digits, verdict = session.run(names, {session.get_inputs()[0].name: np.ascontiguousarray(image, np.float32)})
        answers.append(shown(NUMBER_MODE, "".join(str(int(digit)) for digit in digits), values[int(verdict[0])]))
    return answers


def shipped_mnist_accuracy(manifest, session, test_images, test_labels):
    """The shipped reader's MNIST test accuracy: its manifest's figure when measured on the same digits."""
    recorded = manifest["variants"]["fp32"].get("accuracy", {})
    if recorded.get("mnist_test_digits") == len(test_labels):
        return float(recorded["mnist_test"])
    digits, _ = read_answers(session, manifest["outputs"], test_images)
    return float(np.mean(digits == np.asarray(test_labels)))


def shipped_reader(artifacts_dir, section=None):
    """(manifest or its `section`, onnxruntime session of its fp32 file) of the reader now in artifacts_dir,
    or None when nothing is shipped."""
    from convert.evaluate import open_session

    path = Path(artifacts_dir) / "manifest.json"
    if not path.exists():
        return None
    manifest = json.loads(path.read_text())
    if section is not None:
        manifest = manifest.get(section)
        if manifest is None:
            return None
    return manifest, open_session(Path(artifacts_dir) / manifest["variants"]["fp32"]["file"])


def compare_held_out(shipped, candidate):
    """(no worse?, line) from {"held_out_correct", "held_out"} of each side (held_out may be 0)."""
    if not candidate["held_out"]:
        return True, "gate: no held-out corrections (trained without --feedback)"
    return (candidate["held_out_correct"] >= shipped["held_out_correct"],
            f"gate: held-out corrections: shipped {shipped['held_out_correct']}/{shipped['held_out']}, "
            f"new {candidate['held_out_correct']}/{candidate['held_out']} (no worse allowed)")


def decide(shipped, candidate):
    """(ship?, lines) from {"mnist_test", "held_out_correct", "held_out"} of each side (held_out may be 0)."""
    lines = [f"gate: MNIST test: shipped {shipped['mnist_test']:.4f}, new {candidate['mnist_test']:.4f} "
             f"(at most {100 * MAX_MNIST_DROP:.1f} point worse allowed)"]
    ship = candidate["mnist_test"] >= shipped["mnist_test"] - MAX_MNIST_DROP - 1e-12
    held_out_ship, held_out_line = compare_held_out(shipped, candidate)
    return ship and held_out_ship, lines + [held_out_line]


def enforce(args, ship, lines, shipped_id):
    """Print the gate's lines and its decision; raise GateError if it refused and --skip-gate was not given."""
    print("\n".join(lines + [f"gate: {'ship' if ship else 'REFUSED'} ({shipped_id} is shipped)"]), file=sys.stderr)
    if not ship and not args.skip_gate:
        raise GateError(f"the new model is worse than the shipped {shipped_id}; "
                        "nothing was written (--skip-gate ships it anyway)")


def check(args, candidate_session, candidate_outputs, candidate_mnist, test_images, test_labels):
    """Raise GateError unless the candidate may replace the shipped reader; prints both sides."""
    from train.feedback import load_held_out

    shipped_model = shipped_reader(args.artifacts_dir)
    if shipped_model is None:
        print(f"gate: nothing shipped in {args.artifacts_dir} yet: nothing to compare", file=sys.stderr)
        return
    manifest, session = shipped_model
    shipped = {"mnist_test": shipped_mnist_accuracy(manifest, session, test_images, test_labels)}
    candidate = {"mnist_test": candidate_mnist}
    images, classes = load_held_out(args.train_dir) or ([], np.array([]))
    for side, reader_session, outputs in ((shipped, session, manifest["outputs"]),
                                          (candidate, candidate_session, candidate_outputs)):
        side["held_out"] = len(classes)
        side["held_out_correct"] = int(np.sum(read_answers(reader_session, outputs, images)[1] == classes)) if len(classes) else 0
    enforce(args, *decide(shipped, candidate), manifest["model_id"])


def check_numbers(args, candidate_session, candidate_outputs):
    """Raise GateError unless the candidate number reader reads the number corrections that training held out
    (in args.train_dir) no worse than the shipped one; prints both sides."""
    from convert.manifest import NUMBERS_SECTION
    from train.feedback import load_held_out_drawings

    shipped_model = shipped_reader(args.artifacts_dir, NUMBERS_SECTION)
    if shipped_model is None:
        print(f"gate: no number reader shipped in {args.artifacts_dir} yet: nothing to compare", file=sys.stderr)
        return
    section, session = shipped_model
    images, labels = load_held_out_drawings(args.train_dir, NUMBER_MODE) or ([], [])
    shipped, candidate = {}, {}
    for side, reader_session, outputs in ((shipped, session, section["outputs"]),
                                          (candidate, candidate_session, candidate_outputs)):
        side["held_out"] = len(labels)
        side["held_out_correct"] = sum(answer == label for answer, label in zip(read_numbers(reader_session, outputs, images), labels))
    ship, line = compare_held_out(shipped, candidate)
    enforce(args, ship, [line], section["model_id"])
