"""Corrections as training data (train/feedback.py) and the regression gate's rule (convert/gate.py)."""

import argparse
import time
import uuid

import numpy as np
import pytest

from convert.gate import decide
from reader.contract import NOT_DIGIT_CLASS
from feedback.entry import Entry
from serve.feedback import open_store
from serve.feedback.routes import export_line
from tests.feedback_helpers import pad_png
from train.feedback import label_class, load_held_out, mix_into_training, read_corrections, redacted

BOUNDS = {"FEEDBACK_MAX_ENTRIES": 1000, "FEEDBACK_MAX_STORE_BYTES": 1 << 30, "FEEDBACK_RETENTION_DAYS": 0}


def entries():
    """Three corrections (one "not a digit") and two confirmations, with fixed ids, that an operator accepts;
    then a correction left pending and one rejected."""
    made = [("1", 7, "digit"), ("not_digit", 4, "unsure"), ("7", 7, "digit"), ("3", 8, "unsure"), ("2", 2, "digit"),
            ("5", 6, "digit"), ("6", 5, "digit")]
    return [Entry(id=str(uuid.UUID(int=index + 1, version=4)), model="digits-test", predicted=predicted,
                  verdict=verdict, label=label, image=pad_png(seed=index), strokes=None, received_at=1.7e9 + index)
            for index, (label, predicted, verdict) in enumerate(made)]


def fill(store):
    """The entries, reviewed: the first five accepted, the sixth pending, the seventh rejected."""
    made = entries()
    for entry in made:
        store.add(entry)
    store.review([entry.id for entry in made[:5]], "accepted")
    store.review([made[6].id], "rejected")


@pytest.fixture(params=["sqlite", "postgresql", "jsonl"])
def feedback_source(request, tmp_path):
    """The same five entries in a SQLite store, a PostgreSQL store, or an exported jsonl."""
    if request.param == "jsonl":
        path = tmp_path / "export.jsonl"
        store = open_store({**BOUNDS, "FEEDBACK_DB": str(tmp_path / "for-export.sqlite")})
        fill(store)
        path.write_text("".join(export_line(entry) for entry in store.entries()))
        return str(path)
    if request.param == "sqlite":
        target = {"FEEDBACK_DB": str(tmp_path / "feedback.sqlite")}
    else:
        target = {"FEEDBACK_URL": request.getfixturevalue("postgres_url")}
    store = open_store({**BOUNDS, **target})
    fill(store)
    store.disconnect()
    return target.get("FEEDBACK_URL") or target["FEEDBACK_DB"]


def test_only_accepted_corrections_are_read_and_alike_from_every_source(feedback_source):
    corrections = read_corrections(feedback_source)
    expected = [entry for entry in entries()[:5] if not entry.correct]
    assert [(entry_id, label) for entry_id, label, _, _ in corrections] == [(entry.id, entry.label) for entry in expected]
    assert [png for _, _, png, _ in corrections] == [entry.image for entry in expected]
    assert all(isinstance(held_out, bool) for _, _, _, held_out in corrections)


def test_not_a_digit_is_the_classifiers_eleventh_class():
    assert [label_class(label) for label in ["0", "9", "not_digit"]] == [0, 9, NOT_DIGIT_CLASS]


def test_training_gets_the_weighted_corrections_and_the_gate_gets_the_servers_held_out_draw(tmp_path):
    store = open_store({**BOUNDS, "FEEDBACK_DB": str(tmp_path / "feedback.sqlite")})
    corrections = [Entry(id=str(uuid.UUID(int=number, version=4)), model="m", predicted=1, verdict="digit",
                         label="not_digit" if number % 3 == 0 else str(number % 10), image=pad_png(seed=number),
                         strokes=None, received_at=time.time() + number) for number in range(2, 42)]
    for entry in corrections:
        store.add(entry)
    store.review([entry.id for entry in corrections], "accepted")
    corrections = [entry for entry in corrections if not entry.correct]
    drawn = {entry["id"]: entry["held_out"] for entry in store.entries()}
    args = argparse.Namespace(feedback=str(tmp_path / "feedback.sqlite"), feedback_weight=3, output_dir=tmp_path / "build")
    x_train, y_train, kinds = np.zeros((5, 28, 28, 1), np.float32), np.zeros(5, np.uint8), np.full(5, "plain")
    x_mixed, y_mixed, kinds_mixed = mix_into_training(args, x_train, y_train, kinds)
    trained = [entry for entry in corrections if not drawn[entry.id]]
    assert len(x_mixed) == 5 + 3 * len(trained) and x_mixed.shape[1:] == (28, 28, 1) and x_mixed.max() <= 1
    assert list(y_mixed[5:8]) == [label_class(trained[0].label)] * 3 and set(kinds_mixed[5:]) == {"feedback"}
    images, classes = load_held_out(args.output_dir)
    assert len(images) == len(corrections) - len(trained)
    assert list(classes) == [label_class(entry.label) for entry in corrections if drawn[entry.id]]
    assert not images or (images[0].dtype == np.float32 and images[0].max() == 1.0)


def test_a_password_in_the_source_never_reaches_the_training_summary():
    assert redacted("postgresql://kiosk:secret@db.local/feedback") == "postgresql://kiosk:***@db.local/feedback"
    assert redacted("data/feedback.sqlite") == "data/feedback.sqlite"


GATE_CASES = {
    "better on both": ({"mnist_test": 0.990, "held_out_correct": 3}, {"mnist_test": 0.991, "held_out_correct": 5}, True),
    "0.1 point worse on MNIST": ({"mnist_test": 0.990, "held_out_correct": 3}, {"mnist_test": 0.989, "held_out_correct": 5}, True),
    "0.11 point worse on MNIST": ({"mnist_test": 0.990, "held_out_correct": 3}, {"mnist_test": 0.9889, "held_out_correct": 5}, False),
    "worse on the corrections": ({"mnist_test": 0.990, "held_out_correct": 5}, {"mnist_test": 0.995, "held_out_correct": 4}, False),
}


@pytest.mark.parametrize("name", GATE_CASES)
def test_the_gate_ships_only_what_is_not_worse_and_prints_both_sides(name):
    shipped, candidate, expected = GATE_CASES[name]
    ship, lines = decide({**shipped, "held_out": 6}, {**candidate, "held_out": 6})
    assert ship is expected
    assert f"shipped {shipped['mnist_test']:.4f}, new {candidate['mnist_test']:.4f}" in lines[0]
    assert f"shipped {shipped['held_out_correct']}/6, new {candidate['held_out_correct']}/6" in lines[1]
