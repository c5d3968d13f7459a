"""Shared fixtures: the committed model's manifest and paths; the live server and browser come from plugins."""

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS_DIR = ROOT / "artifacts"

pytest_plugins = ["tests.server_fixtures", "tests.browser_fixtures", "tests.postgres_fixtures", "tests.process_fixtures"]
# The launcher as deployed (Xvfb, a real `make serve`, a mount namespace) is `make check-launcher`'s, not `make test`'s.
collect_ignore = [] if os.environ.get("CHECK_LAUNCHER") else ["test_launcher.py"]


@pytest.fixture(scope="session")
def manifest():
    return json.loads((ARTIFACTS_DIR / "manifest.json").read_text())


def model_files(manifest):
    """Every model file the manifest names: the digit reader's variants and the number reader's, if it has one."""
    sections = [manifest, manifest.get("numbers", {"variants": {}})]
    return [variant["file"] for section in sections for variant in section["variants"].values()]


@pytest.fixture(scope="session")
def model_path(manifest):
    return ARTIFACTS_DIR / manifest["variants"][manifest["default_variant"]]["file"]


@pytest.fixture(scope="session")
def mnist():
    """The real MNIST set (uint8), downloaded and hash-checked once into data/."""
    from train.data import load_mnist

    return load_mnist()


@pytest.fixture
def digits_only_artifacts(tmp_path, manifest):
    """A copy of the committed digit reader alone: a manifest without its "numbers" section."""
    import shutil

    copy = tmp_path / "digits-only-artifacts"
    copy.mkdir()
    for variant in manifest["variants"].values():
        shutil.copy(ARTIFACTS_DIR / variant["file"], copy / variant["file"])
    (copy / "manifest.json").write_text(json.dumps({key: value for key, value in manifest.items() if key != "numbers"}))
    return copy
