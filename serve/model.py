"""The shipped model: read artifacts/manifest.json, check every file it names, open one onnxruntime session.

A model that does not match its manifest must never answer, so every problem here is a ModelError
whose message is one line naming the file and what is wrong with it.
"""

import hashlib
import json
from pathlib import Path

import numpy as np
import onnxruntime

MANIFEST_NAME = "manifest.json"


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
        files = {name: variant["file"] for name, variant in manifest["variants"].items()}
        manifest["default_variant"], manifest["model_id"], manifest["labels"]
        manifest["input"]["name"], manifest["outputs"]["probabilities"]["name"], manifest["outputs"]["not_digit"]["name"]
        manifest["outputs"]["verdict"]["name"], manifest["outputs"]["verdict"]["values"]
    except (ValueError, KeyError, TypeError) as error:
        raise ModelError(f"{path}: not a valid model manifest ({type(error).__name__}: {error})") from None
    for file_name in files.values():
        # File names come from the manifest and end up in URLs and paths: keep them plain.
        if not isinstance(file_name, str) or Path(file_name).name != file_name or file_name.startswith("."):
            raise ModelError(f"{path}: variant file name {file_name!r} is not a plain file name")
    return manifest_bytes, manifest


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
    """The manifest, the checked model files, and a session for the chosen variant."""

    def __init__(self, artifacts_dir, variant=None):
        self.artifacts_dir = Path(artifacts_dir)
        self.manifest_bytes, self.manifest = read_manifest(self.artifacts_dir)
        self.variant = variant or self.manifest["default_variant"]
        if self.variant not in self.manifest["variants"]:
            known = ", ".join(sorted(self.manifest["variants"]))
            raise ModelError(f"unknown model variant {self.variant!r}; the manifest has {known}")
        # Every file the manifest names is served under /model/, so every one of them is checked.
        self.files = {
            variant["file"]: read_checked_file(self.artifacts_dir, variant)
            for variant in self.manifest["variants"].values()
        }
        chosen = self.manifest["variants"][self.variant]
        self.file_sha256 = {variant["file"]: variant["sha256"] for variant in self.manifest["variants"].values()}
        self.session = create_session(self.files[chosen["file"]])
        if self.variant != self.manifest["default_variant"]:
            # The page runs the manifest's default variant: make that the one this server runs too,
            # so the browser and the server never answer with different files under one model id.
            self.manifest["default_variant"] = self.variant
            self.manifest["browser_variant"] = self.variant
            self.manifest["model_id"] = f"{self.manifest['model_id']}-{self.variant}"
            self.manifest_bytes = json.dumps(self.manifest, indent=2).encode() + b"\n"
        self.model_id = self.manifest["model_id"]
        self.labels = [int(label) for label in self.manifest["labels"]]
        self.input_name = self.manifest["input"]["name"]
        outputs = self.manifest["outputs"]
        self.output_names = [outputs[key]["name"] for key in ("probabilities", "not_digit", "verdict")]
        self.verdicts = outputs["verdict"]["values"]
        self.ink_threshold = float(self.manifest.get("normalization", {}).get("ink_threshold", 0.0))
        self.manifest_sha256 = hashlib.sha256(self.manifest_bytes).hexdigest()

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
