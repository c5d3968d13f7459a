"""MNIST training digits as a low-resolution scanner would have seen them, for training and validation.

Scripts send scans: digits of 8 to 16 pixels, binarised and counted in blocks, or pixelated and blown up.
MNIST's 28x28 anti-aliased ink shows none of that, and the reader fell on such scans. The ways below
imitate how such scans are commonly made (an 8x8 grid of block counts over a binarised 32x32 bitmap;
area-averaged low resolutions; nearest-neighbour upscaling), from MNIST *training* digits only: no
scanned set is ever read here, so the ones evaluation uses (UCI) stay out by construction.
"""

import numpy as np
from PIL import Image, ImageFilter

BLOCK_GRID = 8            # block counts: a 32x32 bitmap counted in 4x4 blocks -> 8x8, 17 grey levels
BLOCK = 4
THICKENING = (1, 1, 3, 3, 5)  # a max filter's side on the 32x32 bitmap: none, one pixel or two around
LOW_SIDES = (8, 16)       # area-averaged scans: the digit's longer side in pixels, inclusive
UPSCALE = (2, 6)          # pixelated scans blown up by this nearest-neighbour factor, inclusive
WAYS = ("blocks", "area", "pixelated")
WAY_SHARES = (0.45, 0.35, 0.2)


def _ink_crop(image, threshold=0.1):
    rows, cols = np.nonzero(image > threshold)
    if not len(rows):
        return image
    return image[rows.min(): rows.max() + 1, cols.min(): cols.max() + 1]


def _resized(image, width, height, resample):
    picture = Image.fromarray(np.ascontiguousarray(image, np.float32), "F")
    return np.clip(np.asarray(picture.resize((max(1, width), max(1, height)), resample), np.float32), 0.0, 1.0)


def block_counts(ink, rng):
    """A binarised 32x32 bitmap, the digit filling its height, counted in 4x4 blocks: [8, 8] in 17 levels."""
    side = BLOCK_GRID * BLOCK
    binary = (ink > rng.uniform(0.25, 0.6)).astype(np.float32)
    height = int(rng.integers(side - 4, side + 1))
    width = int(np.clip(round(binary.shape[1] * height / binary.shape[0] * rng.uniform(0.85, 1.3)), 2, side))
    bitmap = (_resized(binary, width, height, Image.BILINEAR) > 0.5).astype(np.float32)
    thickening = int(rng.choice(THICKENING))
    if thickening > 1:  # scanned pens are often broader than MNIST's, relative to the digit
        bitmap = np.asarray(Image.fromarray(bitmap, "F").filter(ImageFilter.MaxFilter(thickening)), np.float32)
    canvas = np.zeros((side, side), np.float32)
    top = int(rng.integers(0, side - height + 1))
    left = int(np.clip(round((side - width) / 2 + rng.normal(0, 1.5)), 0, side - width))
    canvas[top: top + height, left: left + width] = bitmap
    return canvas.reshape(BLOCK_GRID, BLOCK, BLOCK_GRID, BLOCK).mean((1, 3))


def area_averaged(ink, rng):
    """The digit at a low resolution, area-averaged, from grey or binarised ink, on a thin margin."""
    if rng.random() < 0.5:
        ink = (ink > rng.uniform(0.25, 0.6)).astype(np.float32)
    long_side = int(rng.integers(LOW_SIDES[0], LOW_SIDES[1] + 1))
    scale = long_side / max(ink.shape)
    small = _resized(ink, round(ink.shape[1] * scale), round(ink.shape[0] * scale), Image.BOX)
    if rng.random() < 0.5:
        small = np.round(small * 16) / 16  # a scanner's few grey levels
    margin = int(rng.integers(0, 3))
    return np.pad(small, margin)


def pixelated(ink, rng):
    """A low-resolution scan blown up with nearest-neighbour: big square pixels with hard edges."""
    small = area_averaged(ink, rng)
    factor = int(rng.integers(UPSCALE[0], UPSCALE[1] + 1))
    return np.kron(small, np.ones((factor, factor), np.float32))


def scanned(image, rng, distort=True):
    """One uint8 MNIST digit [28, 28] -> a float32 low-resolution scan of it, ink = 1 (distorted first if asked)."""
    from train.augment import augment_digit

    ink = augment_digit(image, rng) if distort else image.astype(np.float32) / 255.0
    ink = _ink_crop(ink)
    way = rng.choice(len(WAYS), p=WAY_SHARES)
    return (block_counts, area_averaged, pixelated)[way](ink, rng)
