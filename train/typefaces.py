"""Digits and letters of training's own typefaces (train.strokes.TRAINING_FONT_FILES), redrawn with a random pen.

Blackletter, early roman and script typefaces show ornate digit styles that neither MNIST nor the Hershey
fonts hold; their letters are more of what is not a digit. A glyph is rendered, distorted at random and
reduced to its centre line, then drawn with a round pen of random width, as the pad would.
"""

import functools

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from train.strokes import DIGIT_LOOKALIKES, TRAINING_FONT_FILES, VALIDATION_FONT_FILES

FONT_ROOT = "/usr/share/fonts"
LETTERS = "".join(char for char in map(chr, range(33, 127)) if not char.isdigit() and char not in DIGIT_LOOKALIKES)
RENDER_SIZE = 96


@functools.cache
def _font(name):
    return ImageFont.truetype(f"{FONT_ROOT}/{name}", RENDER_SIZE)


@functools.cache  # every sample of a glyph starts from the same rendering
def _rendered(name, char):
    """The glyph as float ink [H, W] cropped to itself, or None if the font has no such glyph (draws nothing)."""
    canvas = Image.new("L", (RENDER_SIZE * 2, RENDER_SIZE * 2))
    ImageDraw.Draw(canvas).text((RENDER_SIZE // 2, RENDER_SIZE // 4), char, font=_font(name), fill=255)
    ink = np.asarray(canvas, np.float32) / 255.0
    rows, cols = np.nonzero(ink > 0.5)
    if len(rows) < 20:
        return None
    return ink[rows.min(): rows.max() + 1, cols.min(): cols.max() + 1]


@functools.cache
def glyphs(split):
    """[(label, font, char)] of the split's typefaces ("train" or "validation"); letters carry label None."""
    names = [name for name in TRAINING_FONT_FILES if (name in VALIDATION_FONT_FILES) == (split == "validation")]
    found = []
    for name in names:
        for char in "0123456789" + LETTERS:
            if _rendered(name, char) is not None:
                found.append((int(char) if char.isdigit() else None, name, char))
    return found


def drawn(name, char, rng, pen_widths, side):
    """The glyph placed on a side x side pad, distorted at random, redrawn with a random round pen."""
    from train.augment import redrawn

    ink = _rendered(name, char)
    scale = rng.uniform(0.55, 0.8) * side / max(ink.shape)
    picture = Image.fromarray(ink, "F").resize((max(1, round(ink.shape[1] * scale)), max(1, round(ink.shape[0] * scale))), Image.BILINEAR)
    return redrawn(picture, rng, pen_widths, side)
