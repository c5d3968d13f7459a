"""The drawn-digit evaluation sets: digits and non-digits as the kiosk's pad would show them, never trained on.

- MNIST *test* digits, reduced to their centre line and redrawn with the pad's round pen at several widths;
- digits from handwriting fonts that Debian packages (`make fonts`), redrawn the same way;
- non-digits: letters from those fonts, two MNIST test digits side by side, and doodles (stars, spirals,
  hearts, houses, faces, arrows, zigzags...) from a generator that training never uses.
Training's sources are apart by construction: MNIST *training* digits, Hershey's plotter fonts, and
train/strokes.py's scribbles and arcs.
"""

import math
from pathlib import Path

import numpy as np

from reader.contract import PAD_PEN_WIDTH, PAD_SIDE
from reader.pen import draw_strokes, redraw, reink

PEN_WIDTHS = (0.035, 0.05, 0.07, 0.09)
assert PAD_PEN_WIDTH in PEN_WIDTHS
SETS_VERSION = 2
# The handwriting fonts (Debian packages, installed by `make fonts`): each gives ten digits and its letters.
FONT_FILES = (
    "truetype/fifthhorseman/dkg.ttf", "truetype/fifthhorseman/dkgIt.ttf", "truetype/breip/Breip.ttf",
"truetype/humor-sans/Humor-Sans.ttf", "truetype/kristi/Kristi.ttf",
    "opentype/comic-neue/ComicNeue-Regular.otf", "opentype/comic-neue/ComicNeue-Italic.otf",
    "opentype/dancingscript/DancingScript-Regular.otf",
    *(f"opentype/bwht/BecauseWe{name}-Regular.otf" for name in ("Build", "Connect", "Create", "Learn", "Mentor", "Organize")),
)
FONT_ROOT = Path("/usr/share/fonts")
FONT_PACKAGES = "fonts-dkg-handwriting fonts-breip fonts-humor-sans fonts-kristi fonts-comic-neue fonts-dancingscript fonts-bwht"
LETTERS = "ACEFHKLMNPRTUVWXYacdefhkmnprtuvwxy#&@%?+*"  # none of them reads as a digit in any common hand


class MissingFonts(Exception):
    """The handwriting fonts are not installed."""


def font_paths():
    paths = [FONT_ROOT / name for name in FONT_FILES]
    missing = [str(path) for path in paths if not path.exists()]
    if missing:
        raise MissingFonts(f"missing handwriting fonts ({', '.join(missing[:3])}...): run `make fonts` "
                           f"(apt-get install {FONT_PACKAGES})")
    return paths


def glyph(font, char, side=PAD_SIDE):
    """A font glyph drawn on the pad at digit size: float32 [side, side], ink = 1."""
    from PIL import Image, ImageDraw

    canvas = Image.new("L", (side, side))
    draw = ImageDraw.Draw(canvas)
    left, top, right, bottom = draw.textbbox((0, 0), char, font=font)
    scale = 0.7 * side / max(right - left, bottom - top, 1)
    big = Image.new("L", (right - left + 4, bottom - top + 4))
    ImageDraw.Draw(big).text((2 - left, 2 - top), char, font=font, fill=255)
    big = big.resize((max(1, round(big.width * scale)), max(1, round(big.height * scale))), Image.BILINEAR)
    canvas.paste(big, ((side - big.width) // 2, (side - big.height) // 2))
    return np.asarray(canvas, np.float32) / 255.0


def font_sets(widths=PEN_WIDTHS):
    """(digit images [N, W, side, side], digit labels [N], letter images [M, W, side, side], letter names [M])."""
    from PIL import ImageFont

    digits, labels, letters, names = [], [], [], []
    for path in font_paths():
        font = ImageFont.truetype(str(path), 200)
        for value in range(10):
            digits.append(redraw(glyph(font, str(value)), widths))
            labels.append(value)
        for char in LETTERS:
            letters.append(redraw(glyph(font, char), widths))
            names.append(f"{path.stem}:{char}")
    return np.stack(digits), np.array(labels), np.stack(letters), np.array(names)


def mnist_redrawn(images, widths=PEN_WIDTHS):
    """MNIST test digits (uint8 [N, 28, 28]) redrawn on the pad: [N, len(widths), side, side]."""
    return np.stack([reink(image.astype(np.float32) / 255.0, widths) for image in images])


def side_by_side(first, second):
    """Two MNIST test digits next to each other, redrawn at the pad's own width: a number is not a digit."""
    pair = np.concatenate([first, second], axis=1).astype(np.float32) / 255.0
    return reink(pair, (PAD_PEN_WIDTH,))[0]


# Doodles: each a function rng -> strokes in 0..1 pad units.
def _polyline(points):
    return np.asarray(points, np.float64)


def _star(rng):
    spikes = int(rng.integers(5, 8))
    angles = np.linspace(0, 2 * math.pi, 2 * spikes + 1) + rng.uniform(0, 1)
    radii = np.where(np.arange(2 * spikes + 1) % 2 == 0, 0.35, 0.35 * rng.uniform(0.35, 0.5))
    return [0.5 + np.stack([radii * np.cos(angles), radii * np.sin(angles)], 1)]


def _spiral(rng):
    turns = rng.uniform(2, 3.5)
    t = np.linspace(0, 2 * math.pi * turns, 120)
    r = 0.38 * t / t[-1]
    return [0.5 + np.stack([r * np.cos(t), r * np.sin(t)], 1)]


def _heart(rng):
    t = np.linspace(0, 2 * math.pi, 80)
    x, y = 16 * np.sin(t) ** 3, -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    return [0.5 + 0.02 * np.stack([x, y], 1)]


def _house(rng):
    w = rng.uniform(0.25, 0.35)
    return [_polyline([(0.5 - w, 0.85), (0.5 - w, 0.45), (0.5 + w, 0.45), (0.5 + w, 0.85), (0.5 - w, 0.85)]),
            _polyline([(0.5 - w - 0.05, 0.47), (0.5, 0.12), (0.5 + w + 0.05, 0.47)]),
            _polyline([(0.45, 0.85), (0.45, 0.65), (0.55, 0.65), (0.55, 0.85)])]


def _face(rng):
    t = np.linspace(0, 2 * math.pi, 60)
    circle = 0.5 + 0.38 * np.stack([np.cos(t), np.sin(t)], 1)
    smile = 0.5 + 0.2 * np.stack([np.cos(np.linspace(0.3, math.pi - 0.3, 20)), 0.2 + np.sin(np.linspace(0.3, math.pi - 0.3, 20))], 1)
    return [circle, _polyline([(0.38, 0.38), (0.38, 0.4)]), _polyline([(0.62, 0.38), (0.62, 0.4)]), smile]


def _arrow(rng):
    return [_polyline([(0.1, 0.5), (0.9, 0.5)]), _polyline([(0.7, 0.3), (0.9, 0.5), (0.7, 0.7)])]


def _zigzag(rng):
    teeth = int(rng.integers(4, 8))
    x = np.linspace(0.05, 0.95, 2 * teeth + 1)
    return [np.stack([x, np.where(np.arange(len(x)) % 2 == 0, 0.35, 0.65)], 1)]


def _hash(rng):
    return [_polyline([(0.35, 0.1), (0.3, 0.9)]), _polyline([(0.65, 0.1), (0.6, 0.9)]),
            _polyline([(0.1, 0.35), (0.9, 0.35)]), _polyline([(0.1, 0.65), (0.9, 0.65)])]


def _triangle(rng):
    return [_polyline([(0.5, 0.1), (0.9, 0.85), (0.1, 0.85), (0.5, 0.1)])]


def _cross(rng):
    return [_polyline([(0.15, 0.15), (0.85, 0.85)]), _polyline([(0.85, 0.15), (0.15, 0.85)])]


def _sun(rng):
    t = np.linspace(0, 2 * math.pi, 40)
    rays = [_polyline([(0.5 + 0.25 * math.cos(a), 0.5 + 0.25 * math.sin(a)), (0.5 + 0.45 * math.cos(a), 0.5 + 0.45 * math.sin(a))])
            for a in np.linspace(0, 2 * math.pi, 9)[:-1]]
    return [0.5 + 0.18 * np.stack([np.cos(t), np.sin(t)], 1), *rays]


def _wave(rng):
    x = np.linspace(0.05, 0.95, 60)
    return [np.stack([x, 0.5 + 0.15 * np.sin(x * rng.uniform(12, 20))], 1)]


def _loops(rng):
    t = np.linspace(0, 2 * math.pi * rng.integers(3, 6), 200)
    return [np.stack([0.1 + 0.8 * t / t[-1] + 0.08 * np.cos(t), 0.5 + 0.2 * np.sin(t)], 1)]


DOODLES = {"star": _star, "spiral": _spiral, "heart": _heart, "house": _house, "face": _face, "arrow": _arrow,
           "zigzag": _zigzag, "hash": _hash, "triangle": _triangle, "cross": _cross, "sun": _sun, "wave": _wave,
           "loops": _loops}


def _wobble(strokes, rng):
    """A person's version: rotated a little, stretched a little, shaky."""
    angle = math.radians(rng.uniform(-12, 12))
    matrix = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]) @ np.diag(rng.uniform(0.85, 1.15, 2))
    return [np.clip((stroke - 0.5) @ matrix.T * 0.9 + 0.5 + rng.normal(0, 0.004, stroke.shape), 0, 1) for stroke in strokes]


def doodles(count, seed=11):
    """`count` doodles drawn at the pad's own pen width: images [count, side, side] and their kinds."""
    rng = np.random.default_rng(seed)
    kinds = [list(DOODLES)[index % len(DOODLES)] for index in range(count)]
    return np.stack([draw_strokes(_wobble(DOODLES[kind](rng), rng))[0] for kind in kinds]), np.array(kinds)
