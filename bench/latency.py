"""Model latency, one digit and batches: our ONNX files on onnxruntime vs the same classifier in Keras and TFLite.

    python -m bench.latency [--quick]

All contenders live in this one process and run interleaved, round after round; each figure is the
median over rounds of the mean time per call. onnxruntime and LiteRT run on one thread (as the
server runs onnxruntime); Keras uses TensorFlow's default thread pools (every core).
"""

import numpy as np

from bench.measure import interleave, median, ratio
from bench.repeats import Repeated
from bench.models import (PAD_SIDE, extract_classifier, keras_reference_path, load_keras, load_manifest, mnist_test,
                          multiply_adds, onnx_classifier, open_session, open_tflite, pad_image, reader_path, run_tflite,
                          seed_model_path, tflite_classifier)
from bench.report import Section, Target, format_ratio, format_seconds, run_section, script_command, table

SPEEDUP_TARGET = 500  # single digit, ONNX vs Keras model.predict (issue 5)
BATCH_SIZES = (32, 256)
PREDICT = "Keras `model.predict(x, verbose=0)`"
SEED = "ONNX seed app's CNN fp32 (reference, smaller)"


def single_digit_contenders(args, manifest, digit):
    """name -> (what runs, zero-argument callable) for one digit."""
    input_name = manifest["input"]["name"]
    probabilities_name = manifest["outputs"]["probabilities"]["name"]
    pad = pad_image(digit)
    contenders, classifiers = {}, {}
    for variant in manifest["variants"]:
        path = reader_path(args.artifacts, manifest, variant)
        reader = open_session(path)
        contenders[f"ONNX reader {variant} (normalisation + CNN)"] = (
            f"`session.run([{probabilities_name}], {{{input_name}: float32[{PAD_SIDE}, {PAD_SIDE}]}})`",
            lambda reader=reader: reader.run([probabilities_name], {input_name: pad}))
        classifiers[variant] = open_session(extract_classifier(path))
    normalized = reader.run([manifest["outputs"]["normalized"]["name"]], {input_name: pad})[0]
    digits = np.ascontiguousarray(normalized[None, :, :, None], np.float32)
    for variant, classifier in classifiers.items():
        name = classifier.get_inputs()[0].name
        contenders[f"ONNX bare classifier {variant}"] = (
            "`session.run(None, {digits: float32[1, 28, 28, 1]})`",
            lambda classifier=classifier, name=name: classifier.run(None, {name: digits}))
    seed_path, _, _ = seed_model_path(args.work_dir, args.quick)
    seed = open_session(onnx_classifier(seed_path, args.work_dir, "seed-classifier"))
    seed_input = seed.get_inputs()[0].name
    contenders[SEED] = ("`session.run(None, {digits: float32[1, 28, 28, 1]})`, exported by convert/export.py",
                        lambda: seed.run(None, {seed_input: digits}))
    keras_path = keras_reference_path(args.artifacts, manifest)
    interpreter = open_tflite(tflite_classifier(keras_path, args.work_dir))
    contenders["TFLite (ai-edge-litert) classifier"] = (
        "`set_tensor; invoke(); get_tensor` on [1, 28, 28, 1]", lambda: run_tflite(interpreter, digits))
    model = load_keras(keras_path)
    contenders["Keras direct call"] = ("`model(x, training=False).numpy()`", lambda: model(digits, training=False).numpy())
    contenders[PREDICT] = ("`model.predict(x, verbose=0)` on [1, 28, 28, 1]", lambda: model.predict(digits, verbose=0))
    return contenders, classifiers, model, keras_path, load_keras(seed_path)


def batch_contenders(classifiers, tflite_path, model, digits):
    contenders = {}
    for variant, classifier in classifiers.items():
        name = classifier.get_inputs()[0].name
        contenders[f"ONNX bare classifier {variant}"] = lambda classifier=classifier, name=name: classifier.run(None, {name: digits})
    interpreter = open_tflite(tflite_path, len(digits))
    contenders["TFLite (ai-edge-litert) classifier"] = lambda: run_tflite(interpreter, digits)
    contenders["Keras direct call"] = lambda: model(digits, training=False).numpy()
    contenders[PREDICT] = lambda: model.predict(digits, verbose=0)
    return contenders


def measure(args):
    manifest = load_manifest(args.artifacts)
    rounds, budget = (2, 0.005) if args.quick else (25, 0.04)
    images, _ = mnist_test(max(BATCH_SIZES))
    contenders, classifiers, model, keras_path, seed = single_digit_contenders(args, manifest, images[0])
    work, seed_work = multiply_adds(model), multiply_adds(seed)
    samples = interleave({name: call for name, (_, call) in contenders.items()}, rounds, budget)
    medians = {name: median(values) for name, values in samples.items()}
    predict_time = medians[PREDICT]
    rows = [[name, what, Repeated(samples[name]).describe(format_seconds), format_ratio(ratio(predict_time, medians[name]))]
            for name, (what, _) in contenders.items()]
    limit_note = (f"our CNN does {work / 1e6:.1f} M multiply-adds per digit; the seed app's CNN "
                  f"({seed_work / 1e6:.1f} M) on onnxruntime: {format_seconds(medians[SEED])}, "
                  f"{format_ratio(ratio(predict_time, medians[SEED]))} faster than model.predict")
    targets = []
    for variant in manifest["variants"]:
        for kind in (f"ONNX reader {variant} (normalisation + CNN)", f"ONNX bare classifier {variant}"):
            speedup = ratio(predict_time, medians[kind])
            if variant == manifest["default_variant"]:
                targets.append(Target(f"single digit, {kind} vs Keras model.predict", f"≥ {SPEEDUP_TARGET}× faster",
                                      f"{format_ratio(speedup)} ({format_seconds(medians[kind])} vs {format_seconds(predict_time)})",
                                      speedup >= SPEEDUP_TARGET, limit_note))

    normalizer = open_session(reader_path(args.artifacts, manifest, manifest["default_variant"]))
    input_name, normalized_name = manifest["input"]["name"], manifest["outputs"]["normalized"]["name"]
    normalized = np.stack([normalizer.run([normalized_name], {input_name: image})[0] for image in images])
    tflite_path = tflite_classifier(keras_path, args.work_dir)
    batch_rows = []
    for batch_size in BATCH_SIZES:
        digits = np.ascontiguousarray(normalized[:batch_size, :, :, None], np.float32)
        batch_samples = interleave(batch_contenders(classifiers, tflite_path, model, digits), rounds, budget)
        batch_medians = {name: median(values) for name, values in batch_samples.items()}
        for name, seconds in batch_medians.items():
            batch_rows.append([batch_size, name, format_seconds(seconds), format_seconds(seconds / batch_size),
                               format_ratio(ratio(batch_medians[PREDICT], seconds))])

    markdown = "\n\n".join([
        f"**One digit** ({rounds} interleaved rounds of ≥ {budget * 1e3:.0f} ms per contender; median of per-round means, "
        "with the spread of the rounds):",
        table(["Contender", "What runs", "Median per digit (spread)", "Faster than Keras model.predict (medians)"], rows),
        "The reader times include the whole MNIST-style normalisation of a "
        f"{PAD_SIDE}×{PAD_SIDE} pad image; the bare classifiers and the peers get the already normalised 28×28 digit. "
        f"Our classifier ({model.count_params():,} weights) does {work / 1e6:.1f} M multiply-adds per digit, the seed app's "
        f"({seed.count_params():,} weights) {seed_work / 1e6:.1f} M: Keras' per-call overhead hides that difference, onnxruntime shows it.",
        "**Batches** of normalised MNIST test digits (the reader itself takes one image, so only the classifiers batch):",
        table(["Batch", "Contender", "Median per batch", "Per digit", "Faster than Keras model.predict"], batch_rows),
    ])
    return Section("Model latency", script_command("bench.latency", args), markdown, targets)


if __name__ == "__main__":
    run_section("bench.latency", __doc__.splitlines()[0], measure)
