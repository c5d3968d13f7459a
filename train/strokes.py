"""Vector strokes for training, drawn later with the pad's pen: Hershey glyphs, missing digit styles, scribbles.

Digits from the Hershey fonts (a pen plotter's single-line fonts) add styles MNIST lacks; their other
glyphs (letters, Greek, kana, astrological and weather symbols...) teach what is not a digit. Glyphs a
person could fairly read as a digit (O, l, S, Z, a circle...) are left out of both. Evaluation never
uses these sources: its non-digits come from other fonts and other generators (bench/drawn.py).
"""

import functools
import math

import numpy as np

DIGIT_FONTS = ("futural", "futuram", "cursive", "scriptc", "scripts", "rowmans", "rowmand", "rowmant",
               "timesr", "timesi", "timesrb", "timesib", "greek", "cyrillic")
SYMBOL_FONTS = ("astrology", "markers", "meteorology", "symbolic", "music", "mathupp", "mathlow", "japanese",
                "greek", "greekc", "cyrillic", "cyrilc_1")
# No gothic font is read, not even for its letters as non-digits: the gothic family is the evaluation's held-out
# plotter style (bench/people_sets.py), and its letters taught the reader to refuse that family's digits.
# Font files (relative to /usr/share/fonts) whose glyphs training draws (train/typefaces.py): blackletter, early
# roman and script typefaces of Debian packages no evaluation reads (TRAINING_FONT_PACKAGES, `make fonts`). The
# evaluation reads only fonts outside this list and Hershey fonts outside the two above (bench/people_sets.py), and a
# test holds it to that. VALIDATION_FONT_FILES, among them, only validate: they never train.
TRAINING_FONT_FILES = (
    "truetype/blankenburg/Blankenburg_UNZ1A.ttf", "opentype/havana/Havana-Regular.otf",
    "opentype/kaushanscript/KaushanScript-Regular.otf",
    *(f"opentype/gotico-antiqua/{name}.otf" for name in ("Hamlet-Tertia18", "Jessen-Cicero12", "Jessen-Mittel14",
                                                          "Ptolemy-GreatPrimer18", "Zainer-GoticoAntiqua96G")),
    "truetype/femkeklaver/femkeklaver.ttf",
)
VALIDATION_FONT_FILES = ("truetype/femkeklaver/femkeklaver.ttf", "opentype/gotico-antiqua/Jessen-Mittel14.otf")
TRAINING_FONT_PACKAGES = "fonts-blankenburg fonts-havana fonts-kaushanscript fonts-gotico-antiqua fonts-femkeklaver"
# Characters that look like a digit in some hand, or are too small to be anything: never a negative.
DIGIT_LOOKALIKES = set("0123456789OoQDIlij|!/\\ZzSs$BbGgq.,:;'`\"_-")


def _normalized(strokes):
    """Strokes moved and scaled so their longer side spans 0..1 (aspect kept), as float arrays."""
    strokes = [np.asarray(stroke, np.float64) for stroke in strokes if len(stroke)]
    points = np.concatenate(strokes)
    low, high = points.min(0), points.max(0)
    scale = max(float((high - low).max()), 1e-6)
    return [(stroke - low) / scale for stroke in strokes]


def _is_round_loop(strokes):
    """One closed stroke about as wide as tall and equally far from its centre everywhere: a circle, i.e. a 0."""
    if len(strokes) != 1 or len(strokes[0]) < 6:
        return False
    stroke = np.asarray(strokes[0], np.float64)
    span = stroke.max(0) - stroke.min(0)
    closed = np.linalg.norm(stroke[0] - stroke[-1]) < 0.15 * span.max()
    radii = np.linalg.norm(stroke - stroke.mean(0), axis=1)
    return closed and 0.5 <= span[0] / max(span[1], 1e-6) <= 2.0 and radii.std() < 0.2 * radii.mean()


def is_lineish(strokes):
    """All the ink lies along one straight-ish line: a person's 1, so never a negative."""
    points = np.concatenate(strokes)
    spread = np.linalg.svd(points - points.mean(0), compute_uv=False)
    return spread[1] < 0.15 * spread[0]


@functools.cache  # parsed once per process, not once per chunk of samples
def hershey_glyphs():
    """(digits, others): lists of (font, char, strokes normalised to 0..1); digits carry their value."""
    from HersheyFonts import HersheyFonts

    font = HersheyFonts()
    digits, others, seen = [], [], set()
    for name in dict.fromkeys(DIGIT_FONTS + SYMBOL_FONTS):
        font.load_default_font(name)
        for code in range(33, 127):
            char = chr(code)
            strokes = [stroke for stroke in font.strokes_for_text(char) if len(stroke) > 1]
            if not strokes:
                continue
            key = tuple(tuple(map(tuple, stroke)) for stroke in strokes)
            if key in seen:  # several fonts share glyphs
                continue
            seen.add(key)
            if char.isdigit() and name in DIGIT_FONTS:
                digits.append((int(char), name, char, _normalized(strokes)))
            elif char not in DIGIT_LOOKALIKES and not _is_round_loop(strokes) and not is_lineish(_normalized(strokes)):
                others.append((name, char, _normalized(strokes)))
    return digits, others


def _line(*points):
    return np.asarray(points, np.float64)


def _arc(centre, radius, start, end, steps=24):
    angles = np.radians(np.linspace(start, end, steps))
    return np.stack([centre[0] + radius[0] * np.cos(angles), centre[1] + radius[1] * np.sin(angles)], 1)


def style_templates():
    """Writing styles MNIST barely has, as (digit, strokes): a 1 with flag and foot, a barred 7, an open 4, a straight-stemmed 9."""
    return [
        (1, [_line((0.3, 0.25), (0.55, 0.0), (0.55, 1.0))]),
        (1, [_line((0.3, 0.25), (0.55, 0.0), (0.55, 1.0)), _line((0.3, 1.0), (0.8, 1.0))]),
        (1, [_line((0.35, 0.15), (0.55, 0.0), (0.5, 1.0))]),
        (7, [_line((0.1, 0.0), (0.9, 0.0), (0.4, 1.0)), _line((0.35, 0.5), (0.8, 0.5))]),
        (7, [_line((0.1, 0.1), (0.15, 0.0), (0.9, 0.0), (0.45, 1.0)), _line((0.4, 0.55), (0.85, 0.45))]),
        (4, [_line((0.3, 0.0), (0.15, 0.6), (0.9, 0.6)), _line((0.7, 0.1), (0.7, 1.0))]),
        (4, [_line((0.25, 0.0), (0.2, 0.55), (0.85, 0.55)), _line((0.65, 0.2), (0.65, 1.0))]),
        (9, [_arc((0.45, 0.25), (0.3, 0.25), 0, 360), _line((0.75, 0.25), (0.75, 1.0))]),
        (9, [_arc((0.45, 0.25), (0.3, 0.25), 10, 370), _line((0.75, 0.3), (0.7, 1.0))]),
        (6, [np.concatenate([_arc((0.55, 0.35), (0.4, 0.35), 250, 180, 12), _arc((0.5, 0.72), (0.35, 0.28), 180, -180, 24)])]),
        (5, [_line((0.8, 0.0), (0.25, 0.0), (0.2, 0.45)), _arc((0.45, 0.68), (0.35, 0.3), 230, 490 - 360 + 360, 20)]),
    ]


def jitter(strokes, rng, rotation=15.0, shear=0.3, stretch=0.2, wobble=0.01):
    """A random rotation, shear and stretch of the strokes, plus a little wobble along them; normalised again."""
    angle = math.radians(rng.uniform(-rotation, rotation))
    cos, sin = math.cos(angle), math.sin(angle)
    matrix = (np.array([[cos, -sin], [sin, cos]]) @ np.array([[1.0, rng.uniform(-shear, shear)], [0.0, 1.0]])
              @ np.diag(rng.uniform(1 - stretch, 1 + stretch, 2)))
    moved = [stroke @ matrix.T + rng.normal(0, wobble, stroke.shape) for stroke in strokes]
    return _normalized(moved)


def scribble(rng):
    """One to four strokes of random smooth wandering: no letter, no digit."""
    strokes = []
    for _ in range(rng.integers(1, 5)):
        steps = int(rng.integers(8, 40))
        heading = rng.uniform(0, 2 * math.pi)
        turn = rng.normal(0, 0.6, steps).cumsum() * rng.uniform(0.2, 1.0)
        step = rng.uniform(0.02, 0.08)
        deltas = np.stack([np.cos(heading + turn), np.sin(heading + turn)], 1) * step
        strokes.append(rng.uniform(0, 1, 2) + deltas.cumsum(0))
    return _normalized(strokes)


def arc_fragment(rng):
    """A bit of a curve, as a stray partial stroke: too open to be a 0, 6 or 9."""
    start = rng.uniform(0, 360)
    return _normalized([_arc((0.0, 0.0), (1.0, rng.uniform(0.5, 1.5)), start, start + rng.uniform(120, 220))])


def place(strokes, rng, fill=(0.5, 0.85)):
    """Strokes (0..1) placed on the pad as a person would draw them: filling most of it, somewhere near the middle."""
    size = rng.uniform(*fill)
    offset = rng.uniform(0.5 - size / 2 - 0.05, 0.5 - size / 2 + 0.05, 2)
    extent = np.concatenate(strokes).max(0)
    centring = (1.0 - extent) * size / 2
    return [np.clip(stroke * size + offset + centring, 0.0, 1.0) for stroke in strokes]
