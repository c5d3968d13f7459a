"""One contract: reader/contract.py, the manifest convert/ wrote from it, the shipped graphs and the page agree."""

import re
import sys

import onnx
import pytest

from reader import contract
from tests.conftest import ARTIFACTS_DIR, ROOT


def test_manifest_outputs_are_the_contracts(manifest):
    assert manifest["input"] == contract.describe_input()
    assert manifest["outputs"] == contract.describe_outputs()
    assert manifest["labels"] == contract.LABELS
    assert manifest["verdict"]["values"] == contract.VERDICTS and manifest["verdict"]["output"] == contract.VERDICT_NAME


def test_shipped_graphs_have_the_contracts_outputs_in_order(manifest):
    for entry in manifest["variants"].values():
        graph = onnx.load(ARTIFACTS_DIR / entry["file"]).graph
        assert [o.name for o in graph.output] == [o["name"] for o in contract.describe_outputs().values()]
        thresholds = {init.name: onnx.numpy_helper.to_array(init) for init in graph.initializer if init.name.startswith("verdict/")}
        for name in ("not_digit_at_least", "sure_at_least"):
            assert float(thresholds[f"verdict/{name}"]) == pytest.approx(manifest["verdict"][name], abs=1e-6)


def test_the_page_draws_with_the_pen_evaluation_assumes():
    pad = (ROOT / "web" / "pad.js").read_text()
    assert float(re.search(r"const LINE_WIDTH = ([0-9.]+);", pad).group(1)) == contract.PAD_PEN_WIDTH


# Who may import whom: each folder, every subpackage included, never imports the names listed.
FORBIDDEN_IMPORTS = {
    "train": ("convert", "serve"),
    "reader": ("train", "convert", "serve", "bench", "feedback"),
    "feedback": ("serve", "train", "convert", "reader", "bench"),
    "serve": ("train", "convert", "reader", "bench"),
}


def forbidden_imports(folder, forbidden):
    """["path imports name"] for every .py under `folder`, at any depth, that imports one of `forbidden`."""
    found = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        text = path.read_text()
        for name in forbidden:
            if re.search(rf"^\s*(from|import) {name}\b", text, flags=re.M):
                found.append(f"{path.relative_to(ROOT)} imports {name}")
    return found


@pytest.mark.parametrize("folder", FORBIDDEN_IMPORTS)
def test_arrows_flow_one_way(folder):
    """train/ never imports convert/ or serve/; serve/ never imports train/, convert/ or reader/ (it reads the
    manifest); feedback/, the room both share, imports none of them."""
    assert forbidden_imports(folder, FORBIDDEN_IMPORTS[folder]) == []


def test_the_arrow_check_walks_into_subpackages(tmp_path, monkeypatch):
    nested = tmp_path / "train" / "deep" / "deeper"
    nested.mkdir(parents=True)
    (nested / "sneaky.py").write_text("import os\nfrom serve.feedback import open_store\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert forbidden_imports("train", FORBIDDEN_IMPORTS["train"]) == ["train/deep/deeper/sneaky.py imports serve"]