"""The number evaluation sets: lines of 1-8 digits composed by train/compose.py from digits training never sees.

- MNIST *test* digits at the composer's scale (training composes MNIST *training* digits);
- the drawn-digit evaluation set of bench/drawn_sets.py: MNIST test digits and handwriting-font digits redrawn
  with the pad's round pen at each of its widths, brought back to the composer's scale. A line is written with
  one pen, and in one hand: its digits come either all from the redrawn MNIST pool or all from one font.
train/compose.compose_numbers draws the digits, seeded, so each run reads the very same lines; it is called
one length (and hand) at a time, since thousands of lines at once would crowd the memory.
"""

from dataclasses import dataclass

import numpy as np

from bench.drawn_sets import PEN_WIDTHS, font_paths, glyph, mnist_redrawn
from reader.contract import MAX_NUMBER_DIGITS
from reader.pen import redraw
from train.compose import compose, compose_numbers, mnist_glyph, pad_glyph

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


def number_lines(composed):
    """compose_numbers' (Line, digits) pairs as NumberLines."""
    for line, digits in composed:
        yield NumberLine(line.image, "".join(map(str, digits)), line.boxes)


def mnist_numbers(images, labels, per_length, seed=MNIST_SEED):
    """`per_length` lines of each length from MNIST test digits (uint8 [N, 28, 28]), one length at a time."""
    for length in LENGTHS:
        yield from number_lines(compose_numbers(images, labels, per_length, [seed, length], lengths=[length]))


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
    """Lines at one pen width: `per_length` of each length from the redrawn MNIST digits, about as many in the fonts'
    hands (each line in one font), one length at a time."""
    hands = ["mnist", *sorted(set(pool.sources) - {"mnist"})]
    per_font = -(-per_length // (len(hands) - 1))
    for length in LENGTHS:
        for hand_index, hand in enumerate(hands):
            chosen = pool.sources == hand
            # The pool's glyphs are at the composer's scale already.
            yield from number_lines(compose_numbers(pool.glyphs[chosen, width_index], pool.labels[chosen], per_length if hand == "mnist" else per_font,
                                                    [seed, width_index, length, hand_index], lengths=[length], to_glyph=np.asarray))


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
