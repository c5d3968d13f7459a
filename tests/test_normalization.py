"""The normalisation graph (reader/normalization.py) against its numpy oracle, and its edge cases."""

import numpy as np
import pytest

from reader.contract import CANVAS_SIZE
from reader.normalization import Normalizer
from tests.normalization_reference import normalize_reference

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def normalizer():
    return Normalizer()


def random_drawing(rng):
    """A canvas of random size with a few random strokes, blobs or noise: the kinds of thing people send."""
    height, width = rng.integers(1, 420, size=2)
    image = np.zeros((height, width), np.float32)
    for _ in range(rng.integers(1, 4)):
        top, bottom = np.sort(rng.integers(0, height, 2))
        left, right = np.sort(rng.integers(0, width, 2))
        image[top: bottom + 1, left: right + 1] = rng.random((bottom - top + 1, right - left + 1))
    return image


def test_graph_matches_reference_on_random_drawings(normalizer):
    rng = np.random.default_rng(7)
    for _ in range(400):
        image = random_drawing(rng)
        np.testing.assert_allclose(normalizer.normalize(image), normalize_reference(image), atol=TOLERANCE)


def test_graph_matches_reference_on_mnist_digits(normalizer, mnist):
    for image in mnist["x_test"][:200]:
        image = image.astype(np.float32) / 255.0
        np.testing.assert_allclose(normalizer.normalize(image), normalize_reference(image), atol=TOLERANCE)


def _dot():
    image = np.zeros((50, 50), np.float32)
    image[20, 30] = 1.0
    return image


def _border_ink():
    # Not symmetric: a centre of mass exactly half-way between pixels may round either way.
    image = np.zeros((60, 40), np.float32)
    image[:, 0] = image[0, :] = 1.0
    image[-1, :25] = 0.7
    return image


def _thin_one():
    image = np.zeros((400, 400), np.float32)
    image[10:390, 200] = 1.0
    return image


def _thin_dash():
    image = np.zeros((300, 300), np.float32)
    image[150, 5:295] = 0.5
    return image


EDGE_CASES = {
    "blank": lambda: np.zeros((280, 280), np.float32),
    "faint noise only": lambda: np.full((100, 100), 0.05, np.float32),
    "single dot": _dot,
    "ink on the borders": _border_ink,
    "long thin one": _thin_one,
    "long thin dash": _thin_dash,
    "one pixel": lambda: np.ones((1, 1), np.float32),
    "one blank pixel": lambda: np.zeros((1, 1), np.float32),
    "one row": lambda: np.ones((1, 500), np.float32),
    "one column": lambda: np.ones((500, 1), np.float32),
    "huge": lambda: np.random.default_rng(1).random((4000, 4000), dtype=np.float32),
    "out of range": lambda: np.random.default_rng(2).normal(0, 5, (64, 64)).astype(np.float32),
}


@pytest.mark.parametrize("case", EDGE_CASES, ids=list(EDGE_CASES))
def test_edge_cases_are_finite_and_match_reference(normalizer, case):
    image = EDGE_CASES[case]()
    normalized = normalizer.normalize(image)
    assert normalized.shape == (CANVAS_SIZE, CANVAS_SIZE)
    assert np.isfinite(normalized).all()
    assert normalized.min() >= 0.0 and normalized.max() <= 1.0 + 1e-6
    np.testing.assert_allclose(normalized, normalize_reference(image), atol=TOLERANCE)


def test_blank_image_normalizes_to_blank(normalizer):
    assert normalizer.normalize(np.zeros((280, 280), np.float32)).max() == 0.0


def test_drawing_is_scaled_and_centred_like_mnist(normalizer):
    # A small off-centre square in a corner of a big canvas ends up 20 pixels wide, mass-centred.
    image = np.zeros((300, 300), np.float32)
    image[10:40, 250:280] = 1.0
    normalized = normalizer.normalize(image)
    rows, cols = np.flatnonzero(normalized.any(axis=1)), np.flatnonzero(normalized.any(axis=0))
    assert len(rows) == 20 and len(cols) == 20
    centre = (np.arange(CANVAS_SIZE) * normalized.sum(axis=1)).sum() / normalized.sum()
    assert abs(centre - 14.0) <= 0.5


def test_long_thin_stroke_keeps_its_aspect(normalizer):
    normalized = normalizer.normalize(_thin_one())
    rows, cols = np.flatnonzero(normalized.any(axis=1)), np.flatnonzero(normalized.any(axis=0))
    assert len(rows) == 20 and len(cols) <= 2
