"""Number-mode corrections train the number reader (`train.numbers --feedback`) behind convert.numbers' gate."""

import argparse
import io
import itertools
import json
import shutil
import subprocess
import sys
import uuid

import numpy as np
import onnx
import pytest
from PIL import Image

from convert.gate import GateError, check_numbers
from convert.manifest import NUMBERS_SECTION, read_manifest
from convert.number_export import join_number_reader, sequence_from_reader
from feedback.entry import NUMBER_MODE, Entry
from feedback.images import drawing_to_array
from reader.contract import NOT_DIGIT_CLASS, describe_number_outputs
from serve.feedback import open_store
from tests.conftest import ARTIFACTS_DIR
from tests.feedback_helpers import pad_png
from train.compose import compose_numbers
from train.feedback import HELD_OUT_FILES, load_held_out_drawings, mix_into_lines, number_tokens, read_corrections

BOUNDS = {"FEEDBACK_MAX_ENTRIES": 1000, "FEEDBACK_MAX_STORE_BYTES": 1 << 30, "FEEDBACK_RETENTION_DAYS": 0}
ACCEPTED_CORRECTIONS = 12


def line_png(image):
    """A composed line (float, ink = 1) as the number pad exports a drawing: white ink on black."""
    buffer = io.BytesIO()
    Image.fromarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8), "L").save(buffer, "PNG")
    return buffer.getvalue()


def number_entry(index, image, label, predicted, verdict="number"):
    return Entry(id=str(uuid.UUID(int=500 + index, version=4)), model="numbers-test", predicted=predicted,
                 verdict=verdict, label=label, image=line_png(image), strokes=None, received_at=1.7e9 + index,
                 mode=NUMBER_MODE)


@pytest.fixture
def number_store(tmp_path, mnist, monkeypatch):
    """A SQLite store filled by the server's store code: number corrections of numbers composed from MNIST test
    digits (each read with its last digit dropped) and one "not a number" that an operator accepts, accepted
    confirmations, accepted digit corrections, and number corrections left pending or rejected.
    Returns (path, the store's entries as exported)."""
    # The server's held-out draw, made deterministic (one in three) so that both shares are non-empty.
    draws = itertools.cycle([0, 0, 1])
    monkeypatch.setattr("feedback.store.draw_held_out", lambda: next(draws))
    lines = compose_numbers(mnist["x_test"], mnist["y_test"], 6, seed=16, lengths=(2, 3, 4))
    numbers = ["".join(map(str, digits)) for _, digits in lines]
    accepted = [number_entry(index, line.image, number, number[:-1]) for index, ((line, _), number)
                in enumerate(zip(lines[:ACCEPTED_CORRECTIONS - 1], numbers))]
    accepted.append(number_entry(20, lines[11][0].image, "not_number", "1", "unsure"))
    accepted += [number_entry(21, lines[12][0].image, numbers[12], numbers[12]),  # confirmations
                 number_entry(22, lines[13][0].image, "not_number", "", "not_number")]
    accepted += [Entry(id=str(uuid.UUID(int=600 + index, version=4)), model="digits-test", predicted=7, verdict="digit",
                       label=str(index), image=pad_png(seed=index), strokes=None, received_at=1.7e9 + 50 + index)
                 for index in range(3)]
    pending = [number_entry(30 + index, lines[14 + index][0].image, numbers[14 + index], "9") for index in range(2)]
    rejected = [number_entry(40 + index, lines[16 + index][0].image, "1234", numbers[16 + index]) for index in range(2)]
    path = tmp_path / "feedback.sqlite"
    store = open_store({**BOUNDS, "FEEDBACK_DB": str(path)})
    for entry in accepted + pending + rejected:
        assert store.add(entry)
    store.review([entry.id for entry in accepted], "accepted")
    store.review([entry.id for entry in rejected], "rejected")
    entries = list(store.entries())
    store.disconnect()
    return path, entries


def number_corrections(entries, held_out):
    """The accepted number corrections of the store's draw, oldest first."""
    return [entry for entry in entries if entry["mode"] == NUMBER_MODE and entry["review"] == "accepted"
            and not entry["correct"] and entry["held_out"] is held_out]


def test_number_labels_are_the_readers_ctc_targets():
    assert [number_tokens(label) for label in ["2026", "0042", "7", "not_number"]] == \
        [[2, 0, 2, 6], [0, 0, 4, 2], [7], [NOT_DIGIT_CLASS]]


def test_only_accepted_number_corrections_train_and_the_held_out_ones_go_to_the_gate(number_store, tmp_path):
    path, entries = number_store
    trained, held_out = number_corrections(entries, False), number_corrections(entries, True)
    assert len(trained) + len(held_out) == ACCEPTED_CORRECTIONS and trained and held_out
    args = argparse.Namespace(feedback=str(path), feedback_weight=3, output_dir=tmp_path / "build")
    composed_lines, composed_labels = [np.zeros((28, 64), np.uint8)], [[1, 2]]
    lines, labels, mixed = mix_into_lines(args, composed_lines, composed_labels)

    assert mixed == {"source": str(path), "accepted": ACCEPTED_CORRECTIONS, "trained": len(trained), "too_narrow": 0,
                     "held_out": len(held_out), "weight": 3}
    assert labels[0] == [1, 2] and labels[1:] == [number_tokens(entry["label"]) for entry in trained] * 3
    # Each line is the drawing as the shipped number reader's own normalisation hands it to its sequence model.
    import onnxruntime

    section = read_manifest(ARTIFACTS_DIR)[NUMBERS_SECTION]
    reader = onnxruntime.InferenceSession(str(ARTIFACTS_DIR / section["variants"]["fp32"]["file"]))
    for line, entry in zip(lines[1:], trained):
        drawing = drawing_to_array(entry["image"])
        expected = reader.run([section["outputs"]["normalized"]["name"]], {section["input"]["name"]: drawing})[0]
        assert line.dtype == np.uint8 and line.shape == expected.shape
        assert np.abs(line.astype(np.float32) / 255 - expected).max() <= 1 / 255

    written = read_corrections(args.output_dir / HELD_OUT_FILES[NUMBER_MODE], NUMBER_MODE)
    assert [(entry_id, label) for entry_id, label, _, _ in written] == [(entry["id"], entry["label"]) for entry in held_out]
    drawings, held_out_labels = load_held_out_drawings(args.output_dir, NUMBER_MODE)
    assert held_out_labels == [entry["label"] for entry in held_out] and drawings[0].dtype == np.float32
    assert not (args.output_dir / HELD_OUT_FILES["digit"]).exists()  # digit corrections are the digit reader's


def test_a_training_run_mixes_in_the_number_corrections(number_store, tmp_path, mnist):
    path, entries = number_store
    trained, held_out = number_corrections(entries, False), number_corrections(entries, True)
    npz = tmp_path / "mnist.npz"
    np.savez(npz, x_train=mnist["x_train"][:800], y_train=mnist["y_train"][:800],
             x_test=mnist["x_test"][:100], y_test=mnist["y_test"][:100])
    build = tmp_path / "build"
    run = subprocess.run([sys.executable, "-m", "train.numbers", "--npz", str(npz), "--limit", "800",
                          "--validation-digits", "200", "--lines", "200", "--validation-lines", "50", "--epochs", "1",
                          "--fine-tune-epochs", "0", "--processes", "1", "--output-dir", str(build),
                          "--lines-cache", str(tmp_path / "cache"), "--feedback", str(path), "--feedback-weight", "4"],
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-2000:]
    summary = json.loads((build / "train_summary.json").read_text())
    assert summary["feedback"]["trained"] == len(trained) and summary["feedback"]["held_out"] == len(held_out)
    assert summary["train_lines"] == 200 + 4 * len(trained)
    assert [label for _, label, _, _ in read_corrections(build / HELD_OUT_FILES[NUMBER_MODE], NUMBER_MODE)] == \
        [entry["label"] for entry in held_out]


@pytest.fixture
def held_out_numbers(number_store, tmp_path):
    """The train dir of a run that mixed in the store's corrections: the gate's held-out number corrections."""
    path, _ = number_store
    args = argparse.Namespace(feedback=str(path), feedback_weight=1, output_dir=tmp_path / "build")
    mix_into_lines(args, [], [])
    return args.output_dir


def rejoined_reader(not_number_at_least=None):
    """The shipped number reader joined anew from its own parts, optionally with another not-a-number threshold."""
    section = read_manifest(ARTIFACTS_DIR)[NUMBERS_SECTION]
    digits = read_manifest(ARTIFACTS_DIR)["variants"]["fp32"]["file"]
    sequence = sequence_from_reader(onnx.load(ARTIFACTS_DIR / section["variants"]["fp32"]["file"]))
    verdict = section["verdict"]
    threshold = verdict["not_number_at_least"] if not_number_at_least is None else not_number_at_least
    return join_number_reader(sequence, onnx.load(ARTIFACTS_DIR / digits), threshold, verdict["sure_at_least"])


@pytest.mark.parametrize("skip_gate", [False, True])
def test_the_number_gate_refuses_a_reader_that_reads_the_held_out_corrections_worse(held_out_numbers, capsys, skip_gate):
    from convert.evaluate import open_session

    args = argparse.Namespace(artifacts_dir=ARTIFACTS_DIR, train_dir=held_out_numbers, skip_gate=skip_gate)
    # Everything is "not a number" to this reader: it reads only the held-out "not_number" corrections right.
    worse = open_session(rejoined_reader(not_number_at_least=0.0))
    if skip_gate:
        check_numbers(args, worse, describe_number_outputs())
    else:
        with pytest.raises(GateError, match="worse than the shipped numbers-"):
            check_numbers(args, worse, describe_number_outputs())
    printed = capsys.readouterr().err
    held_out = load_held_out_drawings(held_out_numbers, NUMBER_MODE)[1]
    refusals = held_out.count("not_number")
    assert f"new {refusals}/{len(held_out)} (no worse allowed)" in printed and "gate: REFUSED" in printed


def test_the_number_gate_passes_a_reader_that_reads_them_as_well(held_out_numbers, capsys):
    from convert.evaluate import open_session

    args = argparse.Namespace(artifacts_dir=ARTIFACTS_DIR, train_dir=held_out_numbers, skip_gate=False)
    check_numbers(args, open_session(rejoined_reader()), describe_number_outputs())
    printed = capsys.readouterr().err
    held_out = load_held_out_drawings(held_out_numbers, NUMBER_MODE)[1]
    right = int(printed.split("held-out corrections: shipped ")[1].split("/")[0])
    assert right > held_out.count("not_number")  # the shipped reader reads some numbers: "worse" above is worse
    assert f"shipped {right}/{len(held_out)}, new {right}/{len(held_out)}" in printed and "gate: ship" in printed


def test_convert_numbers_writes_nothing_when_the_gate_refuses(held_out_numbers, tmp_path):
    artifacts = tmp_path / "artifacts"
    shutil.copytree(ARTIFACTS_DIR, artifacts)
    before = {path.name: path.read_bytes() for path in artifacts.iterdir()}
    command = [sys.executable, "-m", "convert.numbers", "--from-artifacts", "--artifacts-dir", str(artifacts),
               "--train-dir", str(held_out_numbers), "--per-length", "1", "--calibration-lines", "8"]
    refused = subprocess.run(command + ["--not-number-at-least", "0.0"], capture_output=True, text=True, timeout=300)
    assert refused.returncode != 0 and "gate: REFUSED" in refused.stderr, refused.stderr[-2000:]
    assert {path.name: path.read_bytes() for path in artifacts.iterdir()} == before
    shipped = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert shipped.returncode == 0 and "gate: ship" in shipped.stderr, shipped.stderr[-2000:]
