"""Which model file the page runs: the manifest's browser_variant when it names one, else its default_variant."""

import json
import shutil

import pytest

from tests.browser_fixtures import RUNTIME_READY
from tests.conftest import model_files
from tests.test_browser_faults import cached_shas, page_shas, predict_drawn


def release(directory, manifest, model_path, **changes):
    """The committed artifacts in `directory`, with some manifest keys changed (None removes one)."""
    for file_name in model_files(manifest):
        shutil.copy(model_path.parent / file_name, directory)
    edited = {key: value for key, value in {**manifest, **changes}.items() if value is not None}
    (directory / "manifest.json").write_text(json.dumps(edited))
    return directory


@pytest.fixture
def browser_variant_release(tmp_path, manifest, model_path):
    """The committed artifacts, with a manifest whose browser_variant is not its default_variant."""
    other = next(name for name in manifest["variants"] if name != manifest["default_variant"])
    return release(tmp_path, manifest, model_path, browser_variant=other), other


def test_page_runs_the_default_variant_when_the_manifest_names_no_browser_variant(start_server, open_page, manifest,
                                                                                  model_path, tmp_path):
    page = open_page(start_server(ARTIFACTS_DIR=str(release(tmp_path, manifest, model_path, browser_variant=None))), "/?auto=0")
    assert page.get_attribute(RUNTIME_READY, "data-variant") == manifest["default_variant"]


def test_page_runs_the_browser_variant_the_manifest_names(start_server, open_page, manifest, browser_variant_release):
    release_dir, variant = browser_variant_release
    page = open_page(start_server(ARTIFACTS_DIR=str(release_dir)), "/?auto=0")
    assert page.get_attribute(RUNTIME_READY, "data-variant") == variant
    answer = predict_drawn(page, "7")
    assert (answer["digit"], answer["backend"]) == ("7", "browser")
    assert manifest["variants"][variant]["sha256"] in cached_shas(page)
    assert cached_shas(page) == page_shas(dict(manifest, browser_variant=variant))
