"""Visitors' corrections as training data: `python -m train --feedback SOURCE` (see --help).

SOURCE is the kiosk's SQLite store, a postgresql:// URL of a fleet's store, or a jsonl export
(GET /feedback/export). Only digit corrections an operator accepted are read (on /stats, or by the rule the
operator set): nothing anonymous trains a model without review, and number-mode entries correct the number
reader. The server drew each accepted entry's held-out share (one in five) when it was accepted, so no
client chooses it: held-out entries never reach training, and are written to build/feedback_held_out.jsonl,
where convert/gate.py compares the new model with the shipped one.
"""

import base64
import json
import sqlite3
import sys
import urllib.parse
from pathlib import Path

import numpy as np

from feedback.entry import DIGIT_MODE, NOT_DIGIT
from feedback.images import drawing_to_array
from feedback.store import ACCEPTED, REVIEW_SINCE_VERSION
from reader.contract import NOT_DIGIT_CLASS

HELD_OUT_FILE = "feedback_held_out.jsonl"
# Accepted digit corrections; the parameters are the review and the mode (constants, never data).
QUERY = ("SELECT id, label, image, held_out FROM feedback_entries WHERE correct = 0 AND review = {mark} "
         "AND mode = {mark} ORDER BY received_at, id")
VERSION_QUERY = "SELECT max(version) FROM feedback_schema"


def add_arguments(parser):
    parser.add_argument("--feedback", help="mix visitors' corrections into training: a feedback SQLite file, a postgresql:// URL or an exported .jsonl")
    parser.add_argument("--feedback-weight", type=int, default=20, help="how many times each correction is repeated in training (default: %(default)s)")


def read_corrections(source):
    """[(id, label, PNG bytes, held out)] of every accepted digit correction in `source`, oldest first;
    labels as stored ("7", "not_digit")."""
    source = str(source)
    if source.startswith(("postgresql://", "postgres://")):
        import psycopg

        with psycopg.connect(source) as connection:
            return [(entry_id, label, bytes(image), bool(held_out)) for entry_id, label, image, held_out
                    in select_accepted(connection, "%s")]
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such feedback store or export")
    if path.suffix == ".jsonl":
        entries = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        return [(entry["id"], str(entry["label"]), base64.b64decode(entry["image"]), bool(entry["held_out"]))
                for entry in entries if not entry.get("correct", False) and entry.get("review") == ACCEPTED
                and entry.get("mode", DIGIT_MODE) == DIGIT_MODE]
    with sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True) as connection:
        return [(entry_id, label, bytes(image), bool(held_out)) for entry_id, label, image, held_out
                in select_accepted(connection, "?")]


def select_accepted(connection, mark):
    """The accepted corrections' rows; a store from before review has none (its entries await review)."""
    version = connection.execute(VERSION_QUERY).fetchone()[0] or 0
    if version < REVIEW_SINCE_VERSION:
        return []
    return connection.execute(QUERY.format(mark=mark), (ACCEPTED, DIGIT_MODE)).fetchall()


def is_held_out(correction):
    """Whether the server drew this accepted correction for the gate's held-out set."""
    return correction[3]


def label_class(label):
    """The classifier's class of a stored label: 0..9, or NOT_DIGIT_CLASS."""
    return NOT_DIGIT_CLASS if label == NOT_DIGIT else int(label)


def decode(png):
    """The drawing as the server hands it to the model: float32 [H, W], ink = 1."""
    return drawing_to_array(png)


def write_jsonl(path, corrections):
    with open(path, "w") as output:
        for entry_id, label, png, held_out in corrections:
            output.write(json.dumps({"id": entry_id, "label": label, "image": base64.b64encode(png).decode(),
                                     "review": ACCEPTED, "held_out": held_out}) + "\n")


def redacted(source):
    """The source without a password, for the training summary (which ends up in the manifest)."""
    parts = urllib.parse.urlsplit(str(source))
    if parts.password is None:
        return str(source)
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")).geturl()


def mix_into_training(args, x_train, y_train, kinds):
    """The training arrays with the training share of the corrections appended, each `--feedback-weight` times."""
    from reader.normalization import Normalizer

    corrections = read_corrections(args.feedback)
    training = [entry for entry in corrections if not is_held_out(entry)]
    args.output_dir.mkdir(parents=True, exist_ok=True)
    write_jsonl(args.output_dir / HELD_OUT_FILE, [entry for entry in corrections if is_held_out(entry)])
    print(f"feedback: {len(corrections)} accepted corrections, {len(training)} trained on x{args.feedback_weight}, "
          f"{len(corrections) - len(training)} held out in {args.output_dir / HELD_OUT_FILE}", file=sys.stderr, flush=True)
    args.feedback = redacted(args.feedback)
    if not training:
        return x_train, y_train, kinds
    normalizer = Normalizer()
    images = np.stack([normalizer.normalize(decode(png)) for _, _, png, _ in training])[..., None]
    labels = np.array([label_class(label) for _, label, _, _ in training], dtype=y_train.dtype)
    repeat = lambda values: np.repeat(values, args.feedback_weight, axis=0)
    return (np.concatenate([x_train, repeat(images).astype(x_train.dtype)]), np.concatenate([y_train, repeat(labels)]),
            np.concatenate([kinds, np.full(len(training) * args.feedback_weight, "feedback")]))


def load_held_out(train_dir):
    """(images [H, W] list, classes) held out by the last training run, or None when it used no feedback."""
    path = Path(train_dir) / HELD_OUT_FILE
    if not path.exists():
        return None
    corrections = read_corrections(path)
    return [decode(png) for _, _, png, _ in corrections], np.array([label_class(label) for _, label, _, _ in corrections])
