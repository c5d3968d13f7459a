"""A tiny real run of the number reader's pipeline: train.numbers (real TensorFlow) -> convert.numbers -> onnxruntime."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from convert.manifest import read_manifest, sha256_bytes, write_artifacts
from tests.conftest import ARTIFACTS_DIR


@pytest.fixture(scope="module")
def tiny_numbers(tmp_path_factory, mnist):
    """One epoch on 600 lines from 1,500 digits of a user-supplied npz, converted beside a copy of the digit reader."""
    root = tmp_path_factory.mktemp("numbers")
    npz = root / "mnist.npz"
    np.savez(npz, x_train=mnist["x_train"][:1500], y_train=mnist["y_train"][:1500],
             x_test=mnist["x_test"][:500], y_test=mnist["y_test"][:500])
    artifacts = root / "artifacts"
    shutil.copytree(ARTIFACTS_DIR, artifacts)
    (artifacts / "numbers-fp32-000000000000.onnx").write_bytes(b"stale")
    run = lambda *args: subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=900)
    trained = run("-m", "train.numbers", "--npz", str(npz), "--limit", "1500", "--validation-digits", "300",
                  "--lines", "600", "--validation-lines", "200", "--epochs", "1", "--fine-tune-epochs", "1", "--output-dir", str(root / "build"), "--lines-cache", str(root / "cache"))
    assert trained.returncode == 0, trained.stderr[-2000:]
    converted = run("-m", "convert.numbers", "--npz", str(npz), "--train-dir", str(root / "build"),
                    "--artifacts-dir", str(artifacts), "--per-length", "4", "--calibration-lines", "16")
    assert converted.returncode == 0, converted.stderr[-2000:]
    return artifacts


def test_training_writes_a_summary_with_its_time_and_verdict(tiny_numbers):
    summary = json.loads((tiny_numbers.parent / "build" / "train_summary.json").read_text())
    assert summary["train_lines"] == 600 and summary["validation_lines"] == 200 and [entry["stage"] for entry in summary["history"]] == ["head", "fine-tune"]
    assert summary["seconds"] > 0 and summary["multiply_adds_per_column"] > 0
    assert set(summary["validation"]["by_length"]) <= {str(n) for n in range(1, 9)}


def test_conversion_adds_the_numbers_section_and_keeps_the_digit_reader(tiny_numbers, manifest):
    written = read_manifest(tiny_numbers)
    assert {key: value for key, value in written.items() if key != "numbers"} == \
        {key: value for key, value in manifest.items() if key != "numbers"}
    numbers = written["numbers"]
    files = sorted(path.name for path in tiny_numbers.glob("numbers-*"))
    assert files == sorted(entry["file"] for entry in numbers["variants"].values())  # the stale file is gone
    for entry in numbers["variants"].values():
        assert sha256_bytes((tiny_numbers / entry["file"]).read_bytes()) == entry["sha256"]
    assert numbers["parity"]["onnx_vs_keras"]["disagreements"] == 0
    assert numbers["browser_variant"] in numbers["variants"]


def test_a_new_digit_reader_keeps_the_numbers_section(tiny_numbers):
    before = read_manifest(tiny_numbers)
    digit_manifest = {key: value for key, value in before.items() if key != "numbers"}
    digit_files = {variant: (tiny_numbers / entry["file"]).read_bytes() for variant, entry in before["variants"].items()}
    write_artifacts(digit_files, digit_manifest, tiny_numbers)
    after = read_manifest(tiny_numbers)
    assert after["numbers"] == before["numbers"]
    assert all((tiny_numbers / entry["file"]).exists() for entry in after["numbers"]["variants"].values())


def test_converted_reader_answers_with_the_contract(tiny_numbers, mnist):
    import onnxruntime

    from train.compose import compose_numbers

    numbers = read_manifest(tiny_numbers)["numbers"]
    session = onnxruntime.InferenceSession(str(tiny_numbers / numbers["variants"]["fp32"]["file"]))
    names = [output.name for output in session.get_outputs()]
    assert names == [output["name"] for output in numbers["outputs"].values()]
    for line, _ in compose_numbers(mnist["x_test"], mnist["y_test"], 2, seed=3, lengths=(2, 5)):
        out = dict(zip(names, session.run(None, {numbers["input"]["name"]: line.image})))
        k = len(out["digits"])
        assert out["probabilities"].shape == (k, 10) and out["boxes"].shape == (k, 4)
        assert ((out["boxes"][:, :2] < out["boxes"][:, 2:]).all() if k else True)
