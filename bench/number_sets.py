"""The number evaluation sets: lines of 1-8 digits composed by train/compose.py from digits training never sees.

- MNIST *test* digits at the composer's scale (training composes MNIST *training* digits);
- the drawn-digit evaluation set of bench/drawn_sets.py: MNIST test digits and handwriting-font digits redrawn
  with the pad's round pen at each of its widths, brought back to the composer's scale. A line is written with
  one pen, and in one hand: its digits come either all from the redrawn MNIST pool or all from one font.
Every set has its own seed, so each run reads the very same lines. Lines are made one at a time (a few
thousand lines would not fit in memory at once).
"""

from dataclasses import dataclass

import numpy as np

from bench.drawn_sets import PEN_WIDTHS, font_paths, glyph, mnist_redrawn
from reader.contract import MAX_NUMBER_DIGITS
from reader.pen import redraw
from train.compose import compose, mnist_glyph, pad_glyph

LENGTHS = tuple(range(1, MAX_NUMBER_DIGITS + 1))
MNIST_SEED = 31
DRAWN_SEED = 37
POOL_SEED = 41


@dataclass
class NumberLine:
    image: np.ndarray       # float32 [H, W], ink = 1
    number: str             # the digits written, left to right
    boxes: list             # each digit's ink box in the image (x0, y0, x1, y1)


def compose_number(glyphs, labels, rng):
    """Compose glyph rasters into a NumberLine labelled with their digits."""
    line = compose(glyphs, rng)
    return NumberLine(line.image, "".join(str(int(label)) for label in labels), line.boxes)


def mnist_numbers(images, labels, per_length, seed=MNIST_SEED):
    """`per_length` lines of each length from MNIST test digits (uint8 [N, 28, 28]); digits drawn at random."""
    rng = np.random.default_rng(seed)
    for length in LENGTHS:
        for _ in range(per_length):
            chosen = rng.choice(len(labels), size=length, replace=False)
            yield compose_number([mnist_glyph(images[index]) for index in chosen], labels[chosen], rng)


def single_digits(images, labels, seed=MNIST_SEED):
    """Every given MNIST test digit alone, as a one-digit line."""
    rng = np.random.default_rng(seed)
    for image, label in zip(images, labels):
        yield compose_number([mnist_glyph(image)], [label], rng)


@dataclass
class DrawnPool:
    """Pad-drawn digits at the composer's scale: glyphs [N, len(PEN_WIDTHS), 56, 56], labels [N], source [N]."""
    glyphs: np.ndarray
    labels: np.ndarray
    sources: np.ndarray     # "mnist" or the font's file stem


def drawn_pool(images, labels, mnist_count, seed=POOL_SEED):
    """`mnist_count` MNIST test digits and every font's ten digits, redrawn at each pen width, at the composer's scale."""
    from PIL import ImageFont

    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(labels), size=mnist_count, replace=False))
    glyphs = [[pad_glyph(drawn) for drawn in mnist_redrawn(images[index:index + 1])[0]] for index in chosen]
    sources = ["mnist"] * mnist_count
    pool_labels = list(labels[chosen])
    for path in font_paths():
        font = ImageFont.truetype(str(path), 200)
        for value in range(10):
            glyphs.append([pad_glyph(drawn) for drawn in redraw(glyph(font, str(value)), PEN_WIDTHS)])
            pool_labels.append(value)
            sources.append(path.stem)
    return DrawnPool(np.asarray(glyphs, np.float32), np.asarray(pool_labels, np.int64), np.asarray(sources))


def drawn_numbers(pool, width_index, per_length, seed=DRAWN_SEED):
    """`per_length` lines of each length at one pen width; every other line in one font's hand, the rest redrawn MNIST."""
    rng = np.random.default_rng([seed, width_index])
    fonts = sorted(set(pool.sources) - {"mnist"})
    for length in LENGTHS:
        for count in range(per_length):
            hand = "mnist" if count % 2 == 0 else fonts[rng.integers(len(fonts))]
            candidates = np.flatnonzero(pool.sources == hand)
            # A font holds each digit once, so a number in one font may repeat its glyphs, as a hand repeats itself.
            chosen = rng.choice(candidates, size=length, replace=hand != "mnist")
            yield compose_number([pool.glyphs[index, width_index] for index in chosen], pool.labels[chosen], rng)


def on_pad(line, width, height, ink_height_share=0.6):
    """A composed line scaled onto an empty pad of width x height, its digits `ink_height_share` of the height."""
    from PIL import Image

    rows = np.flatnonzero(line.max(axis=1) > 0)
    scale = ink_height_share * height / (rows[-1] - rows[0] + 1)
    scale = min(scale, 0.9 * width / line.shape[1])
    sized = Image.fromarray(np.asarray(line, np.float32), "F").resize(
        (max(1, round(line.shape[1] * scale)), max(1, round(line.shape[0] * scale))), Image.BILINEAR)
    pad = np.zeros((height, width), np.float32)
    top, left = (height - sized.height) // 2, (width - sized.width) // 2
    pad[top:top + sized.height, left:left + sized.width] = np.clip(np.asarray(sized, np.float32), 0, 1)
    return pad
