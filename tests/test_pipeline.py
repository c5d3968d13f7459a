"""A tiny real run of the whole pipeline: train (real TensorFlow) -> convert -> load with onnxruntime."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from convert.manifest import sha256_bytes


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, mnist):
    """Train three epochs on 2,000 digits from a user-supplied npz, then convert; returns the artifacts dir."""
    root = tmp_path_factory.mktemp("pipeline")
    npz = root / "mnist.npz"
    np.savez(npz, x_train=mnist["x_train"][:2000], y_train=mnist["y_train"][:2000],
             x_test=mnist["x_test"][:500], y_test=mnist["y_test"][:500])
    run = lambda *args: subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=900)
    trained = run("-m", "train", "--npz", str(npz), "--epochs", "3", "--validation-digits", "400",
                  "--output-dir", str(root / "build"), "--prepared-dir", str(root / "prepared"))
    assert trained.returncode == 0, trained.stderr[-2000:]
    converted = run("-m", "convert", "--npz", str(npz), "--train-dir", str(root / "build"),
                    "--artifacts-dir", str(root / "artifacts"), "--calibration-digits", "200")
    assert converted.returncode == 0, converted.stderr[-2000:]
    return root / "artifacts"


def test_training_writes_a_summary(tiny_run):
    summary = json.loads((tiny_run.parent / "build" / "train_summary.json").read_text())
    assert summary["train_digits"] == 1600 and summary["validation_digits"] == 400 and summary["test_digits"] == 500
    assert len(summary["history"]) == 3 and summary["config"]["epochs"] == 3
    assert summary["classes"] == 11 and 0 < summary["multiply_adds"] <= 3_000_000
    assert set(summary["verdict"]) >= {"not_digit_at_least", "sure_at_least", "digits_refused", "non_digits_caught", "scans_refused"}
    assert 0 <= summary["validation"]["digits_scan"] <= 1  # validation scans of held-back training digits, reported apart


def test_conversion_writes_both_variants_with_their_hashes(tiny_run):
    manifest = json.loads((tiny_run / "manifest.json").read_text())
    files = sorted(path.name for path in tiny_run.iterdir())
    named = [entry["file"] for section in ("variants", "references") for entry in manifest[section].values()]
    assert files == sorted(["manifest.json", *named])
    for entry in manifest["variants"].values():
        assert sha256_bytes((tiny_run / entry["file"]).read_bytes()) == entry["sha256"]
    assert manifest["parity"]["onnx_vs_keras"]["max_abs_difference"] <= 1e-4


def test_converted_model_reads_digits_with_onnxruntime(tiny_run, mnist):
    import onnxruntime

    manifest = json.loads((tiny_run / "manifest.json").read_text())
    session = onnxruntime.InferenceSession(str(tiny_run / manifest["variants"]["fp32"]["file"]))
    correct = 0
    for image, label in zip(mnist["x_test"][-200:], mnist["y_test"][-200:]):
        outputs = dict(zip([o.name for o in session.get_outputs()],
                           session.run(None, {manifest["input"]["name"]: image.astype(np.float32) / 255.0})))
        probabilities = outputs[manifest["outputs"]["probabilities"]["name"]]
        assert probabilities.shape == (10,) and outputs[manifest["outputs"]["normalized"]["name"]].shape == (28, 28)
        assert outputs[manifest["outputs"]["verdict"]["name"]].shape == (1,)
        correct += int(np.argmax(probabilities) == label)
    # Three epochs on 2,000 distorted digits is far from the real model, but well above chance (0.1).
    assert correct / 200 > 0.3


def test_retraining_on_a_handful_of_corrections_keeps_the_model_and_the_gate_prints_both_sides(
        tiny_run, mnist, tmp_path, start_server, open_page):
    """A correction made in Chromium and 25 stored ones, exported, mixed into the same tiny run; the tiny model is
    the shipped one, so the gate compares the two."""
    import random
    import shutil
    import time
    import uuid

    from feedback.entry import Entry
    from serve.feedback import open_store
    from tests.feedback_helpers import TOKEN, export, operator_post, operator_session
    from tests.server_fixtures import encode, enlarge
    from tests.test_browser_feedback import ALL_SENT, WRONG, another_label, answer_a_drawing

    rng = random.Random(0)
    store = open_store({"FEEDBACK_DB": str(tmp_path / "feedback.sqlite"), "FEEDBACK_MAX_ENTRIES": 1000,
                        "FEEDBACK_MAX_STORE_BYTES": 1 << 30, "FEEDBACK_RETENTION_DAYS": 0})
    for image, label in zip(mnist["x_test"][500:525], mnist["y_test"][500:525]):
        store.add(Entry(id=str(uuid.UUID(int=rng.getrandbits(128), version=4)), model="digits-tiny",
                        predicted=(int(label) + 1) % 10, verdict="digit", label=str(label),
                        image=encode(enlarge(image), "PNG"), strokes=None, received_at=time.time()))
    base_url = start_server(ARTIFACTS_DIR=str(tiny_run), FEEDBACK_DB=str(tmp_path / "feedback.sqlite"),
                            ADMIN_TOKEN=TOKEN)
    page = open_page(base_url, "/?auto=0")
    shown = answer_a_drawing(page, "4")
    page.click(WRONG)
    page.click(f'[data-testid="label-{another_label(shown)}"]')
    page.wait_for_selector(ALL_SENT)
    # Nothing trains until the operator accepts it: here, every entry, from the /stats review form.
    cookie, csrf = operator_session(base_url)
    ids = [entry["id"] for entry in export(base_url)]
    accepted = operator_post(base_url, "/stats/review", [("csrf", csrf), ("decision", "accepted")] +
                             [("id", entry_id) for entry_id in ids], cookie)
    assert accepted.status == 303 and {entry["review"] for entry in export(base_url)} == {"accepted"}
    exported = tmp_path / "feedback.jsonl"
    exported.write_text("".join(json.dumps(entry) + "\n" for entry in export(base_url)))
    root = tiny_run.parent
    run = lambda *args: subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=900)
    trained = run("-m", "train", "--npz", str(root / "mnist.npz"), "--epochs", "3", "--validation-digits", "400",
                  "--output-dir", str(tmp_path / "build"), "--prepared-dir", str(root / "prepared"),
                  "--feedback", str(exported))
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert re.search(r"feedback: 26 accepted digit corrections, \d+ trained on x20, \d+ held out", trained.stderr), trained.stderr[-500:]
    shipped = tmp_path / "shipped"
    shutil.copytree(tiny_run, shipped)
    converted = run("-m", "convert", "--npz", str(root / "mnist.npz"), "--train-dir", str(tmp_path / "build"),
                    "--artifacts-dir", str(shipped), "--calibration-digits", "200")
    mnist_line = re.search(r"gate: MNIST test: shipped ([\d.]+), new ([\d.]+)", converted.stderr)
    held_out_line = re.search(r"gate: held-out corrections: shipped (\d+)/(\d+), new (\d+)/(\d+)", converted.stderr)
    decision = re.search(r"gate: (ship|REFUSED)", converted.stderr)
    assert mnist_line and held_out_line and decision, converted.stderr[-2000:]
    before, after = float(mnist_line[1]), float(mnist_line[2])
    assert after >= before - 0.05  # a handful of corrections does not wreck the model
    should_ship = after >= before - 0.001 and int(held_out_line[3]) >= int(held_out_line[1])
    assert (decision[1] == "ship") == should_ship == (converted.returncode == 0)
    manifest_changed = (shipped / "manifest.json").read_text() != (tiny_run / "manifest.json").read_text()
    assert manifest_changed == should_ship
