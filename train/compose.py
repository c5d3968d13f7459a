"""Synthetic handwritten numbers: single glyphs (MNIST digits, redrawn digits, non-digits) composed into a line.

People write a number left to right with gaps that vary, neighbours that touch or slightly overlap, a
size and baseline that wander and one slant for the whole line. The composer does the same with glyph
rasters of one scale (GLYPH_SIDE, a digit's ink about GLYPH_BOX high): each glyph is cropped to its ink,
resized, sheared and placed after the previous one, and ink is combined by maximum, as two strokes on a pad
are. It returns the line and each glyph's ink box, so tests can check what it promises.
"""

from dataclasses import dataclass

import numpy as np
from PIL import Image

GLYPH_SIDE = 56                 # pool rasters are 56x56: MNIST's 28x28 at 2x
GLYPH_BOX = 40                  # and a digit's ink fits a 40-pixel box in them (MNIST's 20 at 2x)
INK_LEVEL = 0.1                 # what counts as ink when cropping (the reader's own ink threshold)
MAX_OVERLAP = 0.2               # neighbours' ink boxes overlap by at most this share of the narrower one's width
GAP_RANGE = (-0.12, 0.5)        # gap between neighbours' ink boxes, in digit heights (negative: touching)
SIZE_JITTER = (0.85, 1.15)      # per glyph, times the line's own size
ASPECT_JITTER = (0.85, 1.15)
BASELINE_JITTER = 0.08          # per glyph, in digit heights
DRIFT = 0.06                    # baseline climb per glyph, in digit heights, one per line
SLANT = 0.3                     # shear of the whole line (x per y), one per line
SLANT_JITTER = 0.06             # and per glyph
MARGIN = 6                      # empty pixels around the composed line


@dataclass
class Line:
    image: np.ndarray           # float32 [H, W], ink = 1
    boxes: list                 # each glyph's ink box (x0, y0, x1, y1), x1/y1 exclusive, left to right


def ink_box(raster, level=INK_LEVEL):
    """(x0, y0, x1, y1) of the pixels above `level`, or None for a blank raster."""
    rows, cols = np.nonzero(raster > level)
    if not len(rows):
        return None
    return int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1


def _shaped(glyph, scale_x, scale_y, shear):
    """The glyph cropped to its ink, resized and sheared about its middle row; float32, ink = 1."""
    box = ink_box(glyph)
    crop = glyph[box[1]:box[3], box[0]:box[2]]
    height = max(1, round(crop.shape[0] * scale_y))
    width = max(1, round(crop.shape[1] * scale_x))
    picture = Image.fromarray(crop.astype(np.float32), "F").resize((width, height), Image.BILINEAR)
    reach = int(np.ceil(abs(shear) * height / 2))
    if reach:
        wide = Image.new("F", (width + 2 * reach, height))
        wide.paste(picture, (reach, 0))
        # PIL maps output (x, y) to input (x + shear * (y - h/2), y): the top leans right for a positive shear.
        picture = wide.transform(wide.size, Image.AFFINE, (1, shear, -shear * height / 2, 0, 1, 0), resample=Image.BILINEAR)
    shaped = np.clip(np.asarray(picture, np.float32), 0.0, 1.0)
    box = ink_box(shaped)
    return shaped[box[1]:box[3], box[0]:box[2]] if box else shaped


def compose(glyphs, rng, box=GLYPH_BOX):
    """Glyph rasters (ink = 1, each holding one glyph about `box` high) -> a Line, left to right."""
    size = rng.uniform(0.9, 1.1)
    slant = rng.uniform(-SLANT, SLANT)
    drift = rng.uniform(-DRIFT, DRIFT) * box
    shapes, tops = [], []
    for index, glyph in enumerate(glyphs):
        scale = size * rng.uniform(*SIZE_JITTER)
        shape = _shaped(glyph, scale * rng.uniform(*ASPECT_JITTER), scale, slant + rng.uniform(-SLANT_JITTER, SLANT_JITTER))
        shapes.append(shape)
        # Glyphs share a baseline (their bottoms), which wanders a little and may climb along the line.
        tops.append(index * drift + rng.uniform(-BASELINE_JITTER, BASELINE_JITTER) * box - shape.shape[0])
    lefts = [0]
    for previous, shape in zip(shapes, shapes[1:]):
        gap = rng.uniform(*GAP_RANGE) * box
        narrower = min(previous.shape[1], shape.shape[1])
        gap = max(gap, -MAX_OVERLAP * narrower)
        lefts.append(lefts[-1] + previous.shape[1] + int(np.ceil(gap)))
    top0 = min(tops)
    tops = [int(round(top - top0)) + MARGIN for top in tops]
    lefts = [left + MARGIN for left in lefts]
    height = max(top + shape.shape[0] for top, shape in zip(tops, shapes)) + MARGIN
    width = max(left + shape.shape[1] for left, shape in zip(lefts, shapes)) + MARGIN
    image = np.zeros((height, width), np.float32)
    boxes = []
    for left, top, shape in zip(lefts, tops, shapes):
        region = image[top:top + shape.shape[0], left:left + shape.shape[1]]
        np.maximum(region, shape, out=region)
        boxes.append((left, top, left + shape.shape[1], top + shape.shape[0]))
    return Line(image, boxes)


def overlap_share(first, second):
    """How much two ink boxes overlap horizontally, as a share of the narrower one's width."""
    overlap = min(first[2], second[2]) - max(first[0], second[0])
    return max(0, overlap) / min(first[2] - first[0], second[2] - second[0])


def mnist_glyph(digit):
    """An MNIST uint8 [28, 28] digit as a pool raster: float32 [56, 56], ink = 1."""
    picture = Image.fromarray(np.asarray(digit, np.uint8)).resize((GLYPH_SIDE, GLYPH_SIDE), Image.BILINEAR)
    return np.asarray(picture, np.float32) / 255.0


def pad_glyph(drawn):
    """A digit drawn on a square pad (reader.pen, ink = 1, any side) as a pool raster [56, 56], box-filtered."""
    picture = Image.fromarray(np.asarray(drawn, np.float32), "F").resize((GLYPH_SIDE, GLYPH_SIDE), Image.BOX)
    return np.clip(np.asarray(picture, np.float32), 0.0, 1.0)


def compose_numbers(glyphs, labels, per_length, seed, lengths=range(1, 9), to_glyph=mnist_glyph):
    """`per_length` numbers of each length from a pool of digits and their labels: [(Line, digits), ...].

    `to_glyph` turns a pool entry into a glyph raster (mnist_glyph for MNIST's uint8 digits, pad_glyph for
    digits drawn on a pad).
    Digits are drawn uniformly from the pool (so each position's digit is uniform), seeded: the same pool and
    seed give the same numbers, which is what an evaluation set needs.
    """
    rng = np.random.default_rng(seed)
    out = []
    for length in lengths:
        for _ in range(per_length):
            picks = rng.integers(len(glyphs), size=length)
            out.append((compose([to_glyph(glyphs[pick]) for pick in picks], rng), [int(labels[pick]) for pick in picks]))
    return out
