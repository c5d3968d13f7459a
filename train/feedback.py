"""Visitors' corrections as training data: `python -m train --feedback SOURCE` for the digit reader and
`python -m train.numbers --feedback SOURCE` for the number reader (see --help).

SOURCE is the kiosk's SQLite store, a postgresql:// URL of a fleet's store, or a jsonl export
(GET /feedback/export). Only corrections an operator accepted are read (on /stats, or by the rule the
operator set): nothing anonymous trains a model without review. Digit-mode entries train the digit reader,
number-mode entries the number reader. The server drew each accepted entry's held-out share (one in five)
when it was accepted, so no client chooses it: held-out entries never reach training, and are written beside
the trained model (build/feedback_held_out.jsonl, build/numbers/feedback_numbers_held_out.jsonl), where
convert/gate.py compares the new reader with the shipped one.
"""

import base64
import json
import sqlite3
import sys
import urllib.parse
from pathlib import Path

import numpy as np

from feedback.entry import DIGIT_MODE, NOT_DIGIT, NOT_NUMBER, NUMBER_MODE
from feedback.images import drawing_to_array
from feedback.store import ACCEPTED, REVIEW_SINCE_VERSION
from reader.contract import NOT_DIGIT_CLASS

HELD_OUT_FILES = {DIGIT_MODE: "feedback_held_out.jsonl", NUMBER_MODE: "feedback_numbers_held_out.jsonl"}
HELD_OUT_FILE = HELD_OUT_FILES[DIGIT_MODE]
# Accepted corrections of one mode; the parameters are the review and the mode (constants, never data).
QUERY = ("SELECT id, label, image, held_out FROM feedback_entries WHERE correct = 0 AND review = {mark} "
         "AND mode = {mark} ORDER BY received_at, id")
VERSION_QUERY = "SELECT max(version) FROM feedback_schema"


def add_arguments(parser):
    parser.add_argument("--feedback", help="mix visitors' corrections into training: a feedback SQLite file, a postgresql:// URL or an exported .jsonl")
    parser.add_argument("--feedback-weight", type=int, default=20, help="how many times each correction is repeated in training (default: %(default)s)")


def read_corrections(source, mode=DIGIT_MODE):
    """[(id, label, PNG bytes, held out)] of every accepted correction of `mode` in `source`, oldest first;
    labels as stored ("7", "not_digit"; in number mode "2026", "not_number")."""
    source = str(source)
    if source.startswith(("postgresql://", "postgres://")):
        import psycopg

        with psycopg.connect(source) as connection:
            return [(entry_id, label, bytes(image), bool(held_out)) for entry_id, label, image, held_out
                    in select_accepted(connection, "%s", mode)]
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such feedback store or export")
    if path.suffix == ".jsonl":
        entries = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        return [(entry["id"], str(entry["label"]), base64.b64decode(entry["image"]), bool(entry["held_out"]))
                for entry in entries if not entry.get("correct", False) and entry.get("review") == ACCEPTED
                and entry.get("mode", DIGIT_MODE) == mode]
    with sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True) as connection:
        return [(entry_id, label, bytes(image), bool(held_out)) for entry_id, label, image, held_out
                in select_accepted(connection, "?", mode)]


def select_accepted(connection, mark, mode):
    """The accepted corrections' rows; a store from before review has none (its entries await review)."""
    version = connection.execute(VERSION_QUERY).fetchone()[0] or 0
    if version < REVIEW_SINCE_VERSION:
        return []
    return connection.execute(QUERY.format(mark=mark), (ACCEPTED, mode)).fetchall()


def is_held_out(correction):
    """Whether the server drew this accepted correction for the gate's held-out set."""
    return correction[3]


def label_class(label):
    """The classifier's class of a stored label: 0..9, or NOT_DIGIT_CLASS."""
    return NOT_DIGIT_CLASS if label == NOT_DIGIT else int(label)


def decode(png):
    """The drawing as the server hands it to the model: float32 [H, W], ink = 1."""
    return drawing_to_array(png)


def number_tokens(label):
    """The number reader's CTC targets for a stored number label: "2026" -> [2, 0, 2, 6]; "not_number" ->
    [NOT_DIGIT_CLASS], as training's lines of non-digits are labelled (the reader need only flag them)."""
    return [NOT_DIGIT_CLASS] if label == NOT_NUMBER else [int(digit) for digit in label]


def write_jsonl(path, corrections, mode=DIGIT_MODE):
    with open(path, "w") as output:
        for entry_id, label, png, held_out in corrections:
            output.write(json.dumps({"id": entry_id, "mode": mode, "label": label, "image": base64.b64encode(png).decode(),
                                     "review": ACCEPTED, "held_out": held_out}) + "\n")


def redacted(source):
    """The source without a password, for the training summary (which ends up in the manifest)."""
    parts = urllib.parse.urlsplit(str(source))
    if parts.password is None:
        return str(source)
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")).geturl()


def training_share(args, mode):
    """The accepted corrections of `mode` that may train; the held-out ones go to the gate's file in
    args.output_dir. The source's password is dropped from args, which the training summary records."""
    corrections = read_corrections(args.feedback, mode)
    training = [entry for entry in corrections if not is_held_out(entry)]
    held_out_path = Path(args.output_dir) / HELD_OUT_FILES[mode]
    held_out_path.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl(held_out_path, [entry for entry in corrections if is_held_out(entry)], mode)
    print(f"feedback: {len(corrections)} accepted {mode} corrections, {len(training)} trained on x{args.feedback_weight}, "
          f"{len(corrections) - len(training)} held out in {held_out_path}", file=sys.stderr, flush=True)
    args.feedback = redacted(args.feedback)
    return training, len(corrections)


def mix_into_training(args, x_train, y_train, kinds):
    """The training arrays with the training share of the corrections appended, each `--feedback-weight` times."""
    from reader.normalization import Normalizer

    training, _ = training_share(args, DIGIT_MODE)
    if not training:
        return x_train, y_train, kinds
    normalizer = Normalizer()
    images = np.stack([normalizer.normalize(decode(png)) for _, _, png, _ in training])[..., None]
    labels = np.array([label_class(label) for _, label, _, _ in training], dtype=y_train.dtype)
    repeat = lambda values: np.repeat(values, args.feedback_weight, axis=0)
    return (np.concatenate([x_train, repeat(images).astype(x_train.dtype)]), np.concatenate([y_train, repeat(labels)]),
            np.concatenate([kinds, np.full(len(training) * args.feedback_weight, "feedback")]))


def mix_into_lines(args, lines, labels):
    """The number reader's training lines and label lists with the training share of the number corrections
    appended, each `--feedback-weight` times, normalised as composed lines are; and what was mixed, for the summary."""
    from reader.number_normalization import LineNormalizer
    from train.number_data import fits_ctc

    training, accepted = training_share(args, NUMBER_MODE)
    normalizer = LineNormalizer()
    added_lines, added_labels = [], []
    for _, label, png, _ in training:
        line, tokens = normalizer.normalize(decode(png)), number_tokens(label)
        if fits_ctc(line, tokens):
            added_lines.append(np.round(line * 255).astype(np.uint8))
            added_labels.append(tokens)
    too_narrow = len(training) - len(added_lines)
    if too_narrow:
        print(f"feedback: {too_narrow} corrections too narrow for their number's digits, left out", file=sys.stderr, flush=True)
    mixed = {"source": args.feedback, "accepted": accepted, "trained": len(added_lines), "too_narrow": too_narrow,
             "held_out": accepted - len(training), "weight": args.feedback_weight}
    return lines + added_lines * args.feedback_weight, labels + added_labels * args.feedback_weight, mixed


def load_held_out_drawings(train_dir, mode):
    """(drawings [H, W] list, labels as stored) that the last training run of `mode` held out, or None when it
    used no feedback."""
    path = Path(train_dir) / HELD_OUT_FILES[mode]
    if not path.exists():
        return None
    corrections = read_corrections(path, mode)
    return [decode(png) for _, _, png, _ in corrections], [label for _, label, _, _ in corrections]


def load_held_out(train_dir):
    """(images [H, W] list, classes) held out by the last digit training run, or None when it used no feedback."""
    held_out = load_held_out_drawings(train_dir, DIGIT_MODE)
    if held_out is None:
        return None
    images, labels = held_out
    return images, np.array([label_class(label) for label in labels])
