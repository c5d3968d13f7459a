"""The committed model files: they are what the manifest says, and as accurate as it claims."""

import numpy as np
import onnx
import pytest

from convert.manifest import sha256_bytes
from tests.conftest import ARTIFACTS_DIR
from tests.normalization_reference import normalize_reference

MAX_SHIPPED_BYTES = 1_000_000
ACCURACY_SLACK = 0.0005  # 0.05 percentage points


@pytest.fixture(scope="module", params=["fp32", "int8"])
def variant(request, manifest):
    return request.param, manifest["variants"][request.param]


def _session(path):
    import onnxruntime

    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_files_match_their_manifest_hashes(variant):
    _, entry = variant
    data = (ARTIFACTS_DIR / entry["file"]).read_bytes()
    assert sha256_bytes(data) == entry["sha256"] and len(data) == entry["bytes"]


def test_model_id_names_the_fp32_file(manifest):
    assert manifest["model_id"] == f"digits-{manifest['variants']['fp32']['sha256'][:12]}"


def test_shipped_fp32_file_is_small(manifest):
    assert manifest["variants"]["fp32"]["bytes"] <= MAX_SHIPPED_BYTES


def test_graph_has_the_manifest_contract_and_standard_operators(variant, manifest):
    _, entry = variant
    model = onnx.load(ARTIFACTS_DIR / entry["file"])
    onnx.checker.check_model(model, full_check=True)
    assert [i.name for i in model.graph.input] == [manifest["input"]["name"]]
    assert [o.name for o in model.graph.output] == [o["name"] for o in manifest["outputs"].values()]
    assert {entry.domain for entry in model.opset_import} <= {"", "ai.onnx"}
    assert max(entry.version for entry in model.opset_import) <= 18


def test_accuracy_on_the_mnist_test_set_is_what_the_manifest_claims(variant, manifest, mnist):
    _, entry = variant
    session = _session(ARTIFACTS_DIR / entry["file"])
    name = manifest["input"]["name"]
    predictions = [np.argmax(session.run([manifest["outputs"]["probabilities"]["name"]], {name: image.astype(np.float32) / 255.0})[0])
                   for image in mnist["x_test"]]
    accuracy = float(np.mean(np.array(predictions) == mnist["y_test"]))
    assert abs(accuracy - entry["accuracy"]["mnist_test"]) <= ACCURACY_SLACK


def test_shipped_normalisation_matches_the_reference(model_path, manifest, mnist):
    session = _session(model_path)
    rng = np.random.default_rng(3)
    images = [image.astype(np.float32) / 255.0 for image in mnist["x_test"][:50]]
    images += [np.pad(image, ((rng.integers(0, 200), rng.integers(0, 200)), (rng.integers(0, 200), rng.integers(0, 200))))
               for image in images[:20]]
    for image in images:
        normalized = session.run([manifest["outputs"]["normalized"]["name"]], {manifest["input"]["name"]: image})[0]
        np.testing.assert_allclose(normalized, normalize_reference(image), atol=1e-4)
