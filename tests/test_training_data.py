"""What training learns from: the pad's pen, the Hershey glyphs it draws, and the verdict's tuning."""

import numpy as np
import pytest

from reader.pen import draw_strokes, reink
from train.strokes import DIGIT_LOOKALIKES, hershey_glyphs, is_lineish, scribble, style_templates
from train.scan import block_counts, pixelated, scanned
from train.verdict import tune, verdicts


@pytest.fixture(scope="module")
def glyphs():
    return hershey_glyphs()


@pytest.mark.parametrize("width", [0.035, 0.07, 0.09])
def test_the_pen_draws_a_line_as_wide_as_asked(width):
    side = 280
    image = draw_strokes([[(0.5, 0.1), (0.5, 0.9)]], (width,), side)[0]
    across = image[side // 2].sum()  # ink across one row of a vertical line
    assert across == pytest.approx(width * side, abs=1.0)


def test_redrawing_keeps_the_shape_and_sets_the_width(mnist):
    digit = mnist["x_test"][0].astype(np.float32) / 255.0
    thin, thick = reink(digit, (0.035, 0.09))
    assert thin.shape == thick.shape == (280, 280)
    assert 1.8 < thick.sum() / thin.sum() < 3.5
    assert np.all(thick >= thin)  # the same centre line, a wider pen


def test_no_negative_glyph_looks_like_a_digit(glyphs):
    digits, others = glyphs
    assert {digit for digit, *_ in digits} == set(range(10))
    assert all(char not in DIGIT_LOOKALIKES for _, char, _ in others)
    assert not any(is_lineish(strokes) for _, _, strokes in others)
    assert len(others) > 300


def test_a_straight_stroke_is_lineish_and_a_scribble_usually_is_not():
    assert is_lineish([np.array([[0.0, 0.0], [0.05, 1.0]])])
    rng = np.random.default_rng(0)
    assert np.mean([is_lineish(scribble(rng)) for _ in range(100)]) < 0.3


def test_style_templates_are_digits_in_the_unit_box():
    for digit, strokes in style_templates():
        assert 0 <= digit <= 9 and strokes
        points = np.concatenate(strokes)
        assert points.min() >= -0.01 and points.max() <= 1.01


def test_verdict_tuning_refuses_at_most_the_allowed_share_of_digits():
    rng = np.random.default_rng(1)
    digits = rng.dirichlet(np.r_[np.ones(10) * 0.2, 0.05], size=400)
    others = rng.dirichlet(np.r_[np.ones(10) * 0.5, 3.0], size=200)
    classes = np.concatenate([digits, others])
    labels = np.r_[digits[:, :10].argmax(1), np.full(200, 10)]
    best = tune(classes, labels, max_refused=0.02)
    decided = verdicts(classes, best["not_digit_at_least"], best["sure_at_least"])
    assert np.mean(decided[:400] != 0) <= 0.02
    assert np.mean(decided[400:] != 0) == pytest.approx(best["non_digits_caught"])


def test_block_counts_are_an_8x8_grid_of_17_levels_that_keep_the_digit(mnist):
    rng = np.random.default_rng(3)
    digit = mnist["x_train"][0].astype(np.float32) / 255.0
    counts = block_counts(digit, rng)
    assert counts.shape == (8, 8)
    assert np.allclose(counts * 16, np.round(counts * 16)) and counts.max() >= 0.75
    assert (counts > 0).sum() >= 8  # the digit's ink spreads over many blocks, not one


def test_pixelated_scans_are_blown_up_in_square_blocks(mnist):
    rng = np.random.default_rng(4)
    image = pixelated(mnist["x_train"][1].astype(np.float32) / 255.0, rng)
    sides = [side for side in range(2, 7) if image.shape[0] % side == 0 and image.shape[1] % side == 0
             and np.array_equal(image, np.kron(image[::side, ::side], np.ones((side, side))))]
    assert sides


def test_scans_are_low_resolution_images_with_ink(mnist):
    rng = np.random.default_rng(5)
    for image in mnist["x_train"][:50]:
        scan = scanned(image, rng)
        assert scan.dtype == np.float32 and 0 <= scan.min() and scan.max() <= 1 and scan.max() > 0.5
        # At most 20 distinct rows and columns in a run: low resolution, or blown up from it.
        runs = lambda rows: 1 + int(np.any(np.diff(rows, axis=0) != 0, axis=1).sum())
        assert runs(scan) <= 20 and runs(scan.T) <= 20


def test_training_typefaces_give_ten_digits_and_letters_and_validation_keeps_its_own():
    from train.strokes import TRAINING_FONT_FILES, VALIDATION_FONT_FILES
    from train.typefaces import glyphs

    assert set(VALIDATION_FONT_FILES) < set(TRAINING_FONT_FILES)
    for split in ("train", "validation"):
        found = glyphs(split)
        assert {label for label, _, _ in found if label is not None} == set(range(10))
        assert any(label is None for label, _, _ in found)
        assert all(char not in DIGIT_LOOKALIKES for label, _, char in found if label is None)
    assert not {name for _, name, _ in glyphs("train")} & {name for _, name, _ in glyphs("validation")}


def test_a_typeface_digit_is_redrawn_with_the_pad_pen():
    from train.typefaces import drawn, glyphs

    label, name, char = next(entry for entry in glyphs("train") if entry[0] == 4)
    image = drawn(name, char, np.random.default_rng(0), (0.05, 0.05), 112)
    assert image.shape == (168, 168) and image.max() == 1.0 and 0.02 < (image > 0.5).mean() < 0.3
