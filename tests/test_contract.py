"""One contract: reader/contract.py, the manifest convert/ wrote from it, the shipped graphs and the page agree."""

import re

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


def test_arrows_flow_one_way():
    """train/ never imports convert/, and serve/ never imports either (it reads the manifest)."""
    for folder, forbidden in (("train", ("convert",)), ("reader", ("train", "convert", "serve", "bench")),
                              ("serve", ("train", "convert", "reader", "bench"))):
        for path in (ROOT / folder).glob("*.py"):
            text = path.read_text()
            for name in forbidden:
                assert not re.search(rf"^\s*(from|import) {name}\b", text, flags=re.M), f"{path} imports {name}"
