"""artifacts/manifest.json: the one description of the shipped model, written atomically with its files.

    python -m convert.manifest [--artifacts DIR]

rewrites the manifest's contract sections that need no model (the pad's geometry) from reader/contract.py,
without retraining or converting: the files and their hashes stay as they are.
"""

import argparse

import hashlib
import json
import os
import tempfile
from pathlib import Path

from reader.contract import describe_pad

ARTIFACTS_DIR = Path(__file__).resolve().parent.parent / "artifacts"
MANIFEST_NAME = "manifest.json"
SCHEMA_VERSION = 1
NUMBERS_SECTION = "numbers"  # the number reader's section of the manifest, and its files' prefix


def sha256_bytes(data):
    return hashlib.sha256(data).hexdigest()


FILE_SUFFIXES = {"keras": ".keras"}  # every other variant is an ONNX digit reader


def content_addressed_name(variant, data, reader="digits"):
    """File names carry their hash, so a browser may cache them forever and a new model is a new URL."""
    return f"{reader}-{variant}-{sha256_bytes(data)[:12]}{FILE_SUFFIXES.get(variant, '.onnx')}"


def _write_atomically(path, data):
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as temporary:
        temporary.write(data)
        temporary.flush()
        os.fsync(temporary.fileno())
    os.chmod(temporary.name, 0o644)
    Path(temporary.name).replace(path)


def write_artifacts(models, manifest, directory=ARTIFACTS_DIR, references=None):
    """Write each file, then the manifest naming them, then drop model files nobody names.

    `models` maps variant -> ONNX bytes (recorded in manifest["variants"]); `references` maps a name
    -> bytes of files the server never reads, such as the Keras classifier (manifest["references"]).
    The manifest is replaced last, so at every moment it points at complete files.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if NUMBERS_SECTION not in manifest and (directory / MANIFEST_NAME).exists():
        # The number reader is converted on its own (python -m convert.numbers): a new digit reader keeps it.
        previous = read_manifest(directory).get(NUMBERS_SECTION)
        if previous:
            manifest[NUMBERS_SECTION] = previous
    for section, files in (("variants", models), ("references", references or {})):
        for variant, data in files.items():
            name = content_addressed_name(variant, data)
            _write_atomically(directory / name, data)
            manifest.setdefault(section, {}).setdefault(variant, {}).update(file=name, sha256=sha256_bytes(data), bytes=len(data))
    _write_manifest(directory, manifest)
    named = {entry["file"] for section in ("variants", "references") for entry in manifest.get(section, {}).values()}
    for stale in directory.glob("digits-*"):
        if stale.name not in named:
            stale.unlink()
    return manifest


def write_number_artifacts(models, section, directory=ARTIFACTS_DIR):
    """Write the number reader's files and its manifest section beside the digit reader, then drop stale ones."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    for variant, data in models.items():
        name = content_addressed_name(variant, data, NUMBERS_SECTION)
        _write_atomically(directory / name, data)
        section["variants"].setdefault(variant, {}).update(file=name, sha256=sha256_bytes(data), bytes=len(data))
    manifest[NUMBERS_SECTION] = section
    _write_manifest(directory, manifest)
    named = {entry["file"] for entry in section["variants"].values()}
    for stale in directory.glob(f"{NUMBERS_SECTION}-*"):
        if stale.name not in named:
            stale.unlink()
    return manifest


def _write_manifest(directory, manifest):
    """Stamp the contract's sections that do not depend on a model, then replace the manifest atomically."""
    manifest["pad"] = describe_pad()
    _write_atomically(Path(directory) / MANIFEST_NAME, (json.dumps(manifest, indent=2) + "\n").encode())


def read_manifest(directory=ARTIFACTS_DIR):
    return json.loads((Path(directory) / MANIFEST_NAME).read_text())


def main(argv=None):
    parser = argparse.ArgumentParser(description="Rewrite the manifest's model-independent sections (the pad) from reader/contract.py.")
    parser.add_argument("--artifacts", type=Path, default=ARTIFACTS_DIR, help="the folder holding manifest.json")
    args = parser.parse_args(argv)
    _write_manifest(args.artifacts, read_manifest(args.artifacts))
    print(f"{args.artifacts / MANIFEST_NAME}: pad {describe_pad()}")


if __name__ == "__main__":
    main()
