"""The models and digits the benchmarks run on, all found through artifacts/manifest.json.

- the shipped readers (fp32, int8): `image` [H, W] -> normalisation -> classifier -> probabilities;
- the bare classifier cut out of a reader (normalised digits [N, 28, 28, 1] -> probabilities [N, 10]);
- the same classifier in Keras (manifest `references.keras`) and converted to TFLite (cached);
- the seed app's CNN trained by `python -m train --architecture seed` (cached), for reference.
"""

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from bench.report import ROOT

# The kiosk's pad is drawn at 280x280 CSS pixels; a pad image is a digit scaled up to that, as a finger draws it.
PAD_SIDE = 280
SEED_EPOCHS = 10


class BenchError(Exception):
    """Something a benchmark needs is missing; the message says what and how to get it."""


def load_manifest(artifacts_dir):
    return json.loads((Path(artifacts_dir) / "manifest.json").read_text())


def reader_path(artifacts_dir, manifest, variant):
    return Path(artifacts_dir) / manifest["variants"][variant]["file"]


def keras_reference_path(artifacts_dir, manifest):
    """The Keras classifier the readers were converted from (manifest `references.keras`)."""
    try:
        return Path(artifacts_dir) / manifest["references"]["keras"]["file"]
    except KeyError:
        raise BenchError(f"{artifacts_dir}/manifest.json names no references.keras; rerun `make convert`") from None


def classifier_tensor_names():
    """The bare classifier's input and output inside a reader, as convert/export.py names them."""
    from convert.export import CLASSIFIER_PREFIX
    from reader.contract import CLASSIFIER_INPUT_NAME, CLASSIFIER_OUTPUT_NAME

    return CLASSIFIER_PREFIX + CLASSIFIER_INPUT_NAME, CLASSIFIER_PREFIX + CLASSIFIER_OUTPUT_NAME


def extract_classifier(path):
    """The classifier part of a reader as ONNX bytes, with a free batch dimension."""
    import onnx

    input_name, output_name = classifier_tensor_names()
    # The reader carries no shape information for inner tensors, which the extractor needs.
    model = onnx.shape_inference.infer_shapes(onnx.load(path))
    classifier = onnx.utils.Extractor(model).extract_model([input_name], [output_name])
    del classifier.graph.value_info[:]  # inferred for batch 1; onnxruntime re-infers for any batch
    for tensor in (classifier.graph.input[0], classifier.graph.output[0]):
        tensor.type.tensor_type.shape.dim[0].dim_param = "batch"
    return classifier.SerializeToString()


def open_session(model):
    """An onnxruntime session configured exactly as the server configures its own."""
    from serve.model import create_session

    return create_session(Path(model).read_bytes() if isinstance(model, Path) else model)


def load_keras(path):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    return keras.models.load_model(path)


def file_sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def tflite_classifier(keras_path, work_dir):
    """The Keras classifier converted with TensorFlow's TFLite converter; cached by the Keras file's hash."""
    target = Path(work_dir) / f"classifier-{file_sha256(keras_path)[:12]}.tflite"
    if target.exists():
        return target
    import tempfile

    import tensorflow as tf

    model = load_keras(keras_path)
    with tempfile.TemporaryDirectory() as saved_model:
        # Keras 3 models convert reliably through an exported SavedModel (from_keras_model drops the weights).
        model.export(saved_model, format="tf_saved_model", verbose=False)
        data = tf.lite.TFLiteConverter.from_saved_model(saved_model).convert()
    target.write_bytes(data)
    return target


def open_tflite(path, batch_size=1):
    """A LiteRT interpreter on one thread (as onnxruntime runs), sized for `batch_size` digits."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=1)
    input_index = interpreter.get_input_details()[0]["index"]
    shape = list(interpreter.get_input_details()[0]["shape"])
    interpreter.resize_tensor_input(input_index, [batch_size, *shape[1:]])
    interpreter.allocate_tensors()
    return interpreter


def run_tflite(interpreter, digits):
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], digits)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def onnx_classifier(keras_path, work_dir, name):
    """A Keras classifier exported to ONNX the way convert/ exports ours; cached by the Keras file's hash."""
    target = Path(work_dir) / f"{name}-{file_sha256(keras_path)[:12]}.onnx"
    if not target.exists():
        from convert.export import export_classifier

        target.write_bytes(export_classifier(load_keras(keras_path)).SerializeToString())
    return target


def multiply_adds(model):
    """Multiply-adds per digit in a Keras model's Conv2D and Dense layers: the arithmetic any runtime must do."""
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            height, width, channels = layer.output.shape[1:]
            total += height * width * channels * int(np.prod(layer.kernel_size)) * layer.input.shape[-1]
        elif isinstance(layer, keras.layers.Dense):
            total += layer.input.shape[-1] * layer.units
    return int(total)


def seed_training_args(quick):
    """The seed app's recipe: its CNN on MNIST as it is, ten classes, no augmentation."""
    if quick:
        return ["--recipe", "mnist", "--epochs", "1", "--limit", "2000", "--validation-digits", "200", "--test-limit", "500"]
    return ["--recipe", "mnist", "--epochs", str(SEED_EPOCHS)]


def seed_model_path(work_dir, quick):
    """The seed app's CNN, trained as ours is (`python -m train --architecture seed`); trained once, then cached."""
    output_dir = Path(work_dir) / ("seed-mnist-quick" if quick else "seed-mnist")
    model_file, summary_file = output_dir / "model.keras", output_dir / "train_summary.json"
    arguments = ["-m", "train", "--architecture", "seed", *seed_training_args(quick), "--output-dir", str(output_dir)]
    if not (model_file.exists() and summary_file.exists()):
        print(f"training the seed reference CNN: python {' '.join(arguments)}", file=sys.stderr, flush=True)
        result = subprocess.run([sys.executable, *arguments], cwd=ROOT, capture_output=True, text=True,
                                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        if result.returncode != 0:
            raise BenchError(f"training the seed CNN failed: {result.stderr.strip()[-500:]}")
    shown = [*arguments[:-1], os.path.relpath(output_dir, ROOT)]
    return model_file, json.loads(summary_file.read_text()), "python " + " ".join(shown)


def mnist_test(limit=None):
    """MNIST test digits as float32 [N, 28, 28] in [0, 1] (ink = 1) and their labels."""
    from train.data import load_mnist

    dataset = load_mnist()
    return dataset["x_test"][:limit].astype(np.float32) / 255.0, dataset["y_test"][:limit].astype(np.int64)


def pad_image(digit, side=PAD_SIDE):
    """A digit scaled up to the pad's size (bilinear), float32 [side, side] in [0, 1]."""
    from PIL import Image

    return np.clip(np.asarray(Image.fromarray(digit, "F").resize((side, side), Image.BILINEAR), np.float32), 0, 1)


def png_bytes(image):
    """An 8-bit grey PNG of a float image in [0, 1], as the pad would upload it."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.round(image * 255).astype(np.uint8), "L").save(buffer, format="PNG")
    return buffer.getvalue()
