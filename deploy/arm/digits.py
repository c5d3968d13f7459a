"""Synthetic digits for comparing CPUs: printed 0-9 in random sizes, weights, slants, places and colours.

Drawn with Pillow's bundled font from a fixed seed, so every run writes the same PNG files without
TensorFlow or a dataset download. They go through the server's own decoding, like a canvas upload.
"""

import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

SIDES = (28, 64, 140, 280)  # from MNIST's own size up to the kiosk pad's canvas


def draw_digit(label, rng):
    """One digit as an image: light on dark, dark on light, or ink on a transparent canvas."""
    side = rng.choice(SIDES)
    font = ImageFont.load_default(size=side * rng.uniform(0.5, 0.9))
    style = rng.choice(("light_on_dark", "dark_on_light", "transparent"))
    mode, background, ink = {
        "light_on_dark": ("L", 0, 255),
        "dark_on_light": ("L", 255, rng.randint(0, 60)),
        "transparent": ("RGBA", (0, 0, 0, 0), (rng.randint(0, 255), 0, 0, 255)),
    }[style]
    image = Image.new(mode, (side, side), background)
    centre = (side * rng.uniform(0.4, 0.6), side * rng.uniform(0.4, 0.6))
    ImageDraw.Draw(image).text(centre, str(label), fill=ink, font=font, anchor="mm",
                               stroke_width=round(side * rng.uniform(0, 0.04)), stroke_fill=ink)
    fill = background if mode == "L" else None
    return image.rotate(rng.uniform(-15, 15), resample=Image.Resampling.BILINEAR, fillcolor=fill)


def write_digits(folder, count, seed=12):
    """Write `count` PNGs (labels cycling 0-9) into folder; returns their paths in order."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    paths = []
    for index in range(count):
        path = folder / f"digit-{index:04d}.png"
        draw_digit(index % 10, rng).save(path, optimize=False)
        paths.append(path)
    return paths
