"""One contract: reader/contract.py, the manifest convert/ wrote from it, the shipped graphs and the page agree."""

import json
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


# The pads' sizes and pen width as numbers in code (not inside a longer number or a name).
PAD_NUMBERS = re.compile(rf"(?<![\w.])({contract.PAD_SIDE}|{contract.NUMBER_PAD_WIDTH}|{contract.PAD_PEN_WIDTH})(?![\w.])")


def test_the_manifest_carries_the_contracts_pads(manifest):
    assert manifest["pad"] == contract.describe_pad()


def test_the_pads_geometry_has_no_copy_in_the_page_or_the_server():
    """The page draws with the pen evaluation assumes, and both take the pads from the manifest, not a copy."""
    files = [*(ROOT / "web").glob("*.js"), *(ROOT / "web").glob("*.css"), ROOT / "web" / "index.html",
             *(ROOT / "serve").rglob("*.py"), *(ROOT / "feedback").rglob("*.py")]
    copies = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}" for path in files
              for number, line in enumerate(path.read_text().splitlines(), 1) if PAD_NUMBERS.search(line)]
    assert copies == []


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


def test_convert_manifest_stamps_the_pad_and_leaves_the_rest(manifest, tmp_path):
    from convert.manifest import main

    without = {key: value for key, value in manifest.items() if key != "pad"}
    (tmp_path / "manifest.json").write_text(json.dumps(without))
    main(["--artifacts", str(tmp_path)])
    rewritten = json.loads((tmp_path / "manifest.json").read_text())
    assert rewritten == {**without, "pad": contract.describe_pad()}
