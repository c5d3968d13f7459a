"""The shipped readers: read artifacts/manifest.json, check every file it names, open one onnxruntime session each.

The digit reader is always there; the number reader (the manifest's "numbers" section) when the manifest has one.

A model that does not match its manifest must never answer, so every problem here is a ModelError
whose message is one line naming the file and what is wrong with it.
"""

import hashlib
import json
from pathlib import Path

import numpy as np
import onnxruntime

from serve.number_model import OUTPUT_KEYS as NUMBER_OUTPUT_KEYS, NumberReader

MANIFEST_NAME = "manifest.json"
PAD_MODES = ("digit", "number")  # the page's modes, each with a pad of its own


class ModelError(Exception):
    """The artifacts cannot be served; the message is one line saying why."""


def read_manifest(artifacts_dir):
    """The manifest as bytes (served verbatim) and as a dict."""
    path = Path(artifacts_dir) / MANIFEST_NAME
    try:
        manifest_bytes = path.read_bytes()
    except OSError as error:
        raise ModelError(f"{path}: cannot read the manifest ({error.strerror or error})") from None
    try:
        manifest = json.loads(manifest_bytes)
        file_names = [variant["file"] for variant in manifest["variants"].values()]
        manifest["default_variant"], manifest["model_id"], manifest["labels"]
        manifest["input"]["name"], manifest["outputs"]["probabilities"]["name"], manifest["outputs"]["not_digit"]["name"]
        manifest["outputs"]["verdict"]["name"], manifest["outputs"]["verdict"]["values"]
    except (ValueError, KeyError, TypeError) as error:
        raise ModelError(f"{path}: not a valid model manifest ({type(error).__name__}: {error})") from None
    read_pad(manifest, path)
    if "numbers" in manifest:
        file_names += read_number_files(manifest["numbers"], path)
    for file_name in file_names:
        # File names come from the manifest and end up in URLs and paths: keep them plain.
        if not isinstance(file_name, str) or Path(file_name).name != file_name or file_name.startswith("."):
            raise ModelError(f"{path}: variant file name {file_name!r} is not a plain file name")
    return manifest_bytes, manifest


def read_pad(manifest, path):
    """Each mode's pad as (width, height) in pixels, from the manifest's "pad" (reader/contract.py, through convert/)."""
    try:
        sizes = {mode: (manifest["pad"][mode]["width"], manifest["pad"][mode]["height"]) for mode in PAD_MODES}
    except (KeyError, TypeError) as error:
        raise ModelError(f'{path}: no valid "pad" section ({type(error).__name__}: {error}); '
                         "`python -m convert.manifest` writes it") from None
    if not all(type(side) is int and side > 0 for size in sizes.values() for side in size):
        raise ModelError(f'{path}: the "pad" sizes must be positive whole pixels, not {sizes}')
    return sizes


def read_number_files(section, path):
    """The file names of the "numbers" section, refused unless it names everything the server reads."""
    try:
        file_names = [variant["file"] for variant in section["variants"].values()]
        section["variants"][section["default_variant"]], section["model_id"], section["input"]["name"]
        [section["outputs"][key]["name"] for key in NUMBER_OUTPUT_KEYS]
        section["outputs"]["verdict"]["values"]
    except (KeyError, TypeError, AttributeError) as error:
        raise ModelError(f'{path}: not a valid "numbers" section ({type(error).__name__}: {error})') from None
    return file_names


def read_checked_file(artifacts_dir, variant):
    """The bytes of one variant's file, refused unless size and sha256 match the manifest."""
    path = Path(artifacts_dir) / variant["file"]
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ModelError(f"{path}: model file missing or unreadable ({error.strerror or error})") from None
    if "bytes" in variant and len(data) != variant["bytes"]:
        raise ModelError(f"{path}: truncated or wrong file: {len(data)} bytes, manifest says {variant['bytes']}")
    digest = hashlib.sha256(data).hexdigest()
    if digest != variant["sha256"]:
        raise ModelError(f"{path}: sha256 {digest[:12]}... does not match the manifest's {variant['sha256'][:12]}...")
    return data


def create_session(model_bytes):
    """One onnxruntime session for all requests; single-threaded because the model runs in ~30 us."""
    options = onnxruntime.SessionOptions()
    # Threads would only add hand-off latency to a 30 us model; the WSGI server supplies parallelism.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    # Input sizes vary per request, so a memory arena would keep the largest image's buffers forever.
    options.enable_cpu_mem_arena = False
    options.enable_mem_pattern = False
    options.log_severity_level = 3
    try:
        return onnxruntime.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own exception types for corrupt graphs
        raise ModelError(f"onnxruntime cannot load the model: {str(error).splitlines()[0]}") from None


class Model:
    """The manifest, the checked model files, a session for the chosen variant, and the number reader if any."""

    def __init__(self, artifacts_dir, variant=None):
        self.artifacts_dir = Path(artifacts_dir)
        self.manifest_bytes, self.manifest = read_manifest(self.artifacts_dir)
        self.variant = variant or self.manifest["default_variant"]
        if self.variant not in self.manifest["variants"]:
            known = ", ".join(sorted(self.manifest["variants"]))
            raise ModelError(f"unknown model variant {self.variant!r}; the manifest has {known}")
        self.files, self.file_sha256 = {}, {}
        self.session = self.open_variant(self.manifest, self.variant)
        self.numbers = None
        if "numbers" in self.manifest:
            # The number reader runs the digit reader's variant when it has one (--variant int8: int8 for both).
            section = self.manifest["numbers"]
            number_variant = self.variant if self.variant in section["variants"] else section["default_variant"]
            self.numbers = NumberReader(section, number_variant, self.open_variant(section, number_variant))
        self.model_id = self.manifest["model_id"]
        self.labels = [int(label) for label in self.manifest["labels"]]
        self.input_name = self.manifest["input"]["name"]
        outputs = self.manifest["outputs"]
        self.output_names = [outputs[key]["name"] for key in ("probabilities", "not_digit", "verdict")]
        self.verdicts = outputs["verdict"]["values"]
        self.ink_threshold = float(self.manifest.get("normalization", {}).get("ink_threshold", 0.0))
        # The largest drawing the page sends in each mode, (width, height): its pad.
        self.pad = read_pad(self.manifest, self.artifacts_dir / MANIFEST_NAME)
        # A number's image keeps the number pad's longer side when decoded: the page's drawing, unreduced.
        self.number_decoded_side = max(self.pad["number"])
        self.manifest_sha256 = hashlib.sha256(self.manifest_bytes).hexdigest()

    def open_variant(self, section, variant):
        """Check every file `section` (the manifest or its "numbers") names, and open a session for `variant`.

        A variant other than the section's default becomes its default in the served manifest, so the page runs
        the very file this server runs, under a model id of its own.
        """
        # Every file the manifest names is served under /model/, so every one of them is checked.
        for described in section["variants"].values():
            self.files[described["file"]] = read_checked_file(self.artifacts_dir, described)
            self.file_sha256[described["file"]] = described["sha256"]
        session = create_session(self.files[section["variants"][variant]["file"]])
        if variant != section["default_variant"]:
            section["default_variant"] = section["browser_variant"] = variant
            section["model_id"] = f"{section['model_id']}-{variant}"
            self.manifest_bytes = json.dumps(self.manifest, indent=2).encode() + b"\n"
        return session

    def read(self, image):
        """The model's probabilities [10], not_digit [1] and verdict [1] for one float32 [H, W] image (ink = 1)."""
        return self.session.run(self.output_names, {self.input_name: image})

    def predict(self, image):
        """The JSON-ready answer for one image; the verdict is the model's own, so page and server agree."""
        probabilities, not_digit, verdict = self.read(image)
        best = int(np.argmax(probabilities))
        return {
            "digit": self.labels[best],
            "confidence": float(probabilities[best]),
            "probabilities": probabilities.tolist(),
            "verdict": self.verdicts[int(verdict[0])],
            "not_digit": float(not_digit[0]),
            "model": self.model_id,
        }
