"""The synthetic number composer (train/compose.py) keeps its promises: overlap, boxes, labels, scale, seeds."""

import numpy as np
import onnxruntime
import pytest

from reader.pen import reink
from train.compose import (GLYPH_BOX, GLYPH_SIDE, MARGIN, MAX_OVERLAP, compose, compose_numbers, ink_box, mnist_glyph, overlap_share,
                           pad_glyph)

LINES = 200


@pytest.fixture(scope="module")
def digit_reader(manifest, model_path):
    session = onnxruntime.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    probabilities = manifest["outputs"]["probabilities"]["name"]
    return lambda image: int(session.run([probabilities], {manifest["input"]["name"]: np.ascontiguousarray(image, np.float32)})[0].argmax())


@pytest.fixture(scope="module")
def lines(mnist):
    """LINES composed numbers of 1-8 MNIST test digits: (line, labels) pairs."""
    rng = np.random.default_rng(0)
    composed = []
    for _ in range(LINES):
        chosen = rng.choice(len(mnist["y_test"]), size=rng.integers(1, 9), replace=False)
        composed.append((compose([mnist_glyph(mnist["x_test"][index]) for index in chosen], rng), mnist["y_test"][chosen]))
    return composed


def test_ink_box_is_exclusive_and_none_when_blank():
    raster = np.zeros((10, 12), np.float32)
    assert ink_box(raster) is None
    raster[2:5, 3:9] = 1.0
    assert ink_box(raster) == (3, 2, 9, 5)


def test_overlap_share_is_of_the_narrower_box():
    assert overlap_share((0, 0, 10, 5), (8, 0, 12, 5)) == pytest.approx(0.5)
    assert overlap_share((0, 0, 10, 5), (12, 0, 20, 5)) == 0


def test_no_glyph_overlaps_its_neighbour_by_more_than_the_stated_share(lines):
    shares = [overlap_share(first, second) for line, _ in lines for first, second in zip(line.boxes, line.boxes[1:])]
    assert max(shares) <= MAX_OVERLAP
    # The composer does make neighbours touch and overlap, and leaves gaps too.
    assert np.mean(np.array(shares) > 0) > 0.1
    assert np.mean(np.array(shares) == 0) > 0.5


def test_boxes_are_in_order_inside_the_image_and_hold_all_the_ink(lines):
    for line, labels in lines:
        height, width = line.image.shape
        assert line.image.dtype == np.float32 and 0 <= line.image.min() and line.image.max() <= 1
        assert len(line.boxes) == len(labels)
        assert [box[0] for box in line.boxes] == sorted({box[0] for box in line.boxes})
        assert [box[2] for box in line.boxes] == sorted(box[2] for box in line.boxes)
        covered = np.zeros(line.image.shape, bool)
        for x0, y0, x1, y1 in line.boxes:
            assert MARGIN <= x0 < x1 <= width - MARGIN and MARGIN <= y0 < y1 <= height - MARGIN
            # Each box is its glyph's ink box: ink on all four edges.
            crop = line.image[y0:y1, x0:x1] > 0.1
            assert crop[0].any() and crop[-1].any() and crop[:, 0].any() and crop[:, -1].any()
            covered[y0:y1, x0:x1] = True
        assert not line.image[~covered].any()


def test_each_box_reads_as_its_label_with_the_digit_reader(mnist, digit_reader):
    rng = np.random.default_rng(1)
    images, labels = mnist["x_test"], mnist["y_test"]
    candidates = rng.choice(len(labels), size=300, replace=False)
    # Clear digits: ones the shipped digit reader reads right on their own.
    clear = np.array([index for index in candidates if digit_reader(mnist_glyph(images[index])) == labels[index]])
    assert len(clear) > 280
    right = total = 0
    for _ in range(40):
        chosen = rng.choice(clear, size=rng.integers(2, 9))
        line = compose([mnist_glyph(images[index]) for index in chosen], rng)
        for (x0, y0, x1, y1), index in zip(line.boxes, chosen):
            right += digit_reader(line.image[y0:y1, x0:x1]) == labels[index]
            total += 1
    # Neighbours may reach into a box by up to MAX_OVERLAP, so a few crops may misread; a box on the wrong glyph
    # would read right about one time in ten.
    assert right / total >= 0.97


def test_pad_drawn_and_mnist_glyphs_share_one_scale(mnist):
    pool_heights, drawn_heights = [], []
    for digit in mnist["x_test"][:20]:
        pool, drawn = mnist_glyph(digit), pad_glyph(reink(digit.astype(np.float32) / 255.0)[0])
        for glyph in (pool, drawn):
            assert glyph.shape == (GLYPH_SIDE, GLYPH_SIDE) and glyph.dtype == np.float32
            assert 0 <= glyph.min() and glyph.max() <= 1
        pool_heights.append(ink_box(pool)[3] - ink_box(pool)[1])
        drawn_heights.append(ink_box(drawn)[3] - ink_box(drawn)[1])
    assert GLYPH_BOX - 3 <= np.median(pool_heights) <= GLYPH_BOX + 2
    # A digit redrawn on the pad comes back to the pool's scale, within the pen's reach.
    assert abs(np.median(np.subtract(drawn_heights, pool_heights))) <= 4


def test_composition_is_deterministic_per_seed(mnist):
    glyphs = [mnist_glyph(image) for image in mnist["x_test"][:5]]
    first = compose(glyphs, np.random.default_rng(7))
    again = compose(glyphs, np.random.default_rng(7))
    other = compose(glyphs, np.random.default_rng(8))
    assert np.array_equal(first.image, again.image) and first.boxes == again.boxes
    assert first.image.shape != other.image.shape or not np.array_equal(first.image, other.image)


def test_compose_numbers_gives_each_length_its_share_seeded(mnist):
    images, labels = mnist["x_test"][:50], mnist["y_test"][:50]
    numbers = compose_numbers(images, labels, 2, seed=3)
    again = compose_numbers(images, labels, 2, seed=3)
    assert [len(digits) for _, digits in numbers] == [length for length in range(1, 9) for _ in range(2)]
    assert all(len(line.boxes) == len(digits) and set(digits) <= set(labels.tolist()) for line, digits in numbers)
    assert all(np.array_equal(first.image, second.image) and first_digits == second_digits
               for (first, first_digits), (second, second_digits) in zip(numbers, again))
