"""Figures that hold: every figure README.md, deploy/README.md and docs/ quote comes from bench/RESULTS.md, from
artifacts/manifest.json, or from the configuration or code constant that sets it; none is typed by hand from a run.

A figure is a decimal, a number with thousands separators, or a number with a unit (req/s, MB, ms, %, ...),
outside code (blocks and inline: commands, names and example output) and version requirements.
"""

import json
import re

import pytest

from feedback.store import PRUNE_TO
from serve.decode import DEFAULT_MAX_IMAGE_PIXELS
from serve.feedback import CONFIG_DEFAULTS as FEEDBACK_DEFAULTS
from serve.feedback.parse import MAX_POINTS
from serve.server import BACKLOG, CONNECTION_LIMIT
from tests.conftest import ROOT

DOCUMENTS = ["README.md", "deploy/README.md", "docs/SERVICE.md", "docs/API.md"]
RESULTS = (ROOT / "bench" / "RESULTS.md").read_text()
MANIFEST = json.loads((ROOT / "artifacts" / "manifest.json").read_text())
# Settings quoted where they are explained: their one home is these files.
CONFIGURATION = "\n".join(path.read_text() for path in [*sorted((ROOT / "deploy" / "k8s").glob("*.yaml")),
                                                        ROOT / "pyproject.toml"])
CODE_CONSTANTS = {CONNECTION_LIMIT, BACKLOG, DEFAULT_MAX_IMAGE_PIXELS, MAX_POINTS, 100 * PRUNE_TO,
                  FEEDBACK_DEFAULTS["FEEDBACK_MAX_ENTRIES"]}
FIGURE = re.compile(r"(?<![\w.\-/:=#])(\d[\d,]*\.\d+|\d{1,3}(?:,\d{3})+|\d+(?=\s?(?:req/s|MB\b|MiB\b|ms\b|µs\b|min\b|%|×)))"
                    r"(?![\w.])")
VERSION = re.compile(r"(?:Python|onnxruntime|Node|nginx|podman|Chromium|Debian|OpenAPI)\s?[≥<>=!]*\s?[\d.]+", re.I)


def manifest_numbers(node):
    if isinstance(node, dict):
        return [number for value in node.values() for number in manifest_numbers(value)]
    if isinstance(node, list):
        return [number for value in node for number in manifest_numbers(value)]
    return [node] if isinstance(node, (int, float)) and not isinstance(node, bool) else []


MANIFEST_NUMBERS = manifest_numbers(MANIFEST)


def figures(text):
    """The figures of a document's prose and tables."""
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    prose = re.sub(r"`[^`\n]*`", "", prose)
    prose = VERSION.sub("", prose)
    return FIGURE.findall(prose)


def appears_in(figure, text):
    return re.search(rf"(?<![\d.,]){re.escape(figure)}(?![\d]|[.,]\d)", text) is not None


def is_sourced(figure):
    value = float(figure.replace(",", ""))
    decimals = len(figure.partition(".")[2])
    return (appears_in(figure, RESULTS) or appears_in(figure, CONFIGURATION) or value in CODE_CONSTANTS
            or any(round(number, decimals) == value for number in MANIFEST_NUMBERS))


@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_figure_comes_from_the_results_the_manifest_or_the_configuration(document):
    found = figures((ROOT / document).read_text())
    assert len(found) >= 5, "the figure finder found almost nothing: is it still reading the document?"
    unsourced = [figure for figure in found if not is_sourced(figure)]
    assert unsourced == [], f"{document} quotes figures found in neither bench/RESULTS.md nor the manifest: {unsourced}"


def test_what_docs_attribute_to_bench_results_is_there():
    """docs/ keeps tables of other bench scripts' runs, labelled; but a paragraph citing bench/RESULTS.md quotes it."""
    for document in sorted((ROOT / "docs").glob("*.md")):
        for paragraph in re.split(r"\n\s*\n", document.read_text()):
            if "RESULTS.md" in paragraph:
                unsourced = [figure for figure in figures(paragraph) if not is_sourced(figure)]
                assert unsourced == [], f"{document.name}: {unsourced} in: {paragraph[:200]}"


@pytest.mark.parametrize("typed_by_hand", ["took 26.6 min on a quiet machine", "read 0.9123 of them",
                                           "about 12,345 requests", "146 req/s with two workers"])
def test_a_figure_typed_by_hand_is_caught(typed_by_hand):
    assert [figure for figure in figures(typed_by_hand) if not is_sourced(figure)]


def test_the_readme_says_where_the_page_and_the_server_differ_by_default():
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "very same computation" not in readme
    page, server = MANIFEST["browser_variant"], MANIFEST["default_variant"]
    assert f"the page runs {page}" in readme and f"the server {server}" in readme
    assert str(MANIFEST["parity"]["int8_vs_fp32_argmax_agreement"]) in readme
    assert str(MANIFEST["numbers"]["parity"]["int8_vs_fp32_same_number"]) in readme


def test_the_readmes_numbers_are_the_results_targets_as_bench_readme_writes_them():
    from bench.readme import render, rewritten

    readme = (ROOT / "README.md").read_text()
    assert rewritten(readme, render(RESULTS)) == readme, "run python -m bench.readme"
