"""Numbers as people write them: lines of 1-8 digits from glyph sources that no training set holds.

Glyph sources, each held out of training by construction (the functions below take what training reads and
leave it out, and tests/test_people_numbers.py checks it):
- "MNIST test": MNIST *test* digits redrawn with the pad's pen (training composes MNIST *training* digits);
- "handwriting fonts": the handwriting fonts of bench/drawn_sets.py, redrawn with the pad's pen, less any font
  file training reads (train.strokes.TRAINING_FONT_FILES);
- "plotter fonts": the Hershey fonts that train/strokes.py never loads (the gothic ones), drawn with the pad's
  pen; a glyph identical to one of training's digits is dropped;
- "UCI scans": the UCI handwritten digits that ship with scikit-learn (other writers, scanned at 8x8), upscaled
  as a line is composed; training never reads them (the digit reader's UCI figure is a report, never a choice);
- "printed": numbers typeset in common typefaces (DejaVu, Liberation, FreeFont, Croscore, Noto), as scripts send
  scans of printed numbers, less any font file training reads.
Pen-drawn lines are written with one pen width (bench/drawn_sets.PEN_WIDTHS, a share of the pad's side, as the
pad draws) and in one hand (one font, or MNIST test digits), in one of LAYOUTS; UCI lines likewise, as scanned.
Printed lines are typeset by the font itself. Lines are drawn from seeded generators, so a run reads the very same
lines every time.
"""

from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from bench.drawn_sets import FONT_FILES, FONT_ROOT, PEN_WIDTHS, MissingFonts, glyph
from reader.contract import MAX_NUMBER_DIGITS
from reader.normalization import INK_THRESHOLD
from reader.pen import draw_strokes, redraw, reink
from train.strokes import DIGIT_FONTS, SYMBOL_FONTS, TRAINING_FONT_FILES

LENGTHS = tuple(range(1, MAX_NUMBER_DIGITS + 1))
SOURCES = ("MNIST test", "handwriting fonts", "plotter fonts", "UCI scans", "printed")
PEN_SOURCES = SOURCES[:3]        # drawn with the pad's pen
COMPOSED_SOURCES = SOURCES[:4]   # composed glyph by glyph in LAYOUTS
PRINTED = "printed"
SCAN = "scan"                    # a scanned line's "pen"
LAYOUTS = ("separate", "touching", "slanted", "sizes", "baseline")
TYPESET = "typeset"              # printed lines' only layout: the font's own spacing
SEED = 20261207
GLYPH_SIDE = 140                 # glyphs are drawn on a pad this many pixels square before a line is composed
DIGIT_HEIGHT = (40, 90)          # a pen-drawn line's digit height in pixels
PRINTED_HEIGHT = (24, 160)       # a printed line's digit height: small scans to large photos
GAP = (0.1, 0.3)                 # empty space between neighbours' ink, in digit heights
SLANT = (0.2, 0.45)              # shear of a slanted line (x per y), leaning right four times in five
SIZES = (0.6, 1.4)               # each digit's height in a line of mixed sizes, times the line's
BASELINE_STEP = 0.15             # a wandering baseline moves up to this many digit heights per digit...
BASELINE_REACH = 0.35            # ...and stays within this many of where it started
TOUCH_OVERLAP = (0, 3)           # touching neighbours' ink overlaps by this many pixels beyond meeting
MARGIN = 6

# Printed typefaces (Debian packages: PRINTED_PACKAGES), under FONT_ROOT.
PRINTED_FILES = (
    *(f"truetype/dejavu/DejaVu{name}.ttf" for name in ("Sans", "Sans-Bold", "Serif", "Serif-Bold", "SansMono", "SansCondensed")),
    *(f"truetype/liberation/Liberation{name}.ttf" for name in ("Sans-Regular", "Sans-Bold", "Serif-Regular", "Serif-Italic", "Mono-Regular", "SansNarrow-Regular")),
    *(f"truetype/freefont/Free{name}.ttf" for name in ("Sans", "Serif", "Mono", "SerifBold")),
    *(f"truetype/croscore/{name}.ttf" for name in ("Arimo-Regular", "Tinos-Regular", "Cousine-Regular")),
    "truetype/noto/NotoSansMono-Regular.ttf", "truetype/noto/NotoMono-Regular.ttf",
)
PRINTED_PACKAGES = "fonts-dejavu-core fonts-liberation fonts-freefont-ttf fonts-croscore fonts-noto-mono"


@dataclass
class PeopleLine:
    image: np.ndarray            # float32 [H, W], ink = 1
    number: str                  # the digits written, left to right
    boxes: list                  # each digit's ink box (x0, y0, x1, y1), x1/y1 exclusive
    glyphs: list                 # each digit's own ink, alone, as it stands in the line
    source: str
    layout: str
    pen: str                     # "pen 0.07", "scan" or "printed"
    hand: str = ""               # the font, "MNIST test" or "UCI scans"
    touching: list = field(default_factory=list)  # indices of the digits whose ink meets the one before


def held_out_font_files(names):
    """Font files (relative to FONT_ROOT) less any training reads: the split is made here, not by convention."""
    return tuple(name for name in names if name not in TRAINING_FONT_FILES)


def handwriting_font_files():
    return held_out_font_files(FONT_FILES)


def printed_font_files():
    return held_out_font_files(PRINTED_FILES)


def plotter_font_names():
    """Hershey fonts training never loads (train/strokes.py reads DIGIT_FONTS and SYMBOL_FONTS)."""
    from HersheyFonts import HersheyFonts

    return tuple(name for name in HersheyFonts().default_font_names if name not in DIGIT_FONTS + SYMBOL_FONTS)


def existing(names):
    paths = [FONT_ROOT / name for name in names]
    missing = [str(path) for path in paths if not path.exists()]
    if missing:
        raise MissingFonts(f"missing fonts ({', '.join(missing[:3])}...): run `make fonts`")
    return paths


def ink_box(image, threshold=INK_THRESHOLD):
    rows, cols = np.nonzero(image > threshold)
    if not len(rows):
        return None
    return int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1


def cropped(image):
    box = ink_box(image)
    return image[box[1]:box[3], box[0]:box[2]]


@dataclass
class Hand:
    """One writer's digits: for each digit value, its variants as [len(pens), side, side] float32."""
    name: str
    digits: dict                 # value -> list of arrays
    pens: tuple = tuple(f"pen {width}" for width in PEN_WIDTHS)


def mnist_hand(images, labels):
    """MNIST test digits (float32 [N, 28, 28], ink = 1) redrawn with the pad's pen at every width."""
    digits = {}
    for image, label in zip(images, labels):
        digits.setdefault(int(label), []).append(reink(image, PEN_WIDTHS, GLYPH_SIDE))
    return Hand("MNIST test", digits)


def uci_hand():
    """The UCI digits (8x8, ink = 1) as scanned: upscaled only when a line is composed."""
    from convert.evaluate import load_uci_digits

    images, labels = load_uci_digits()
    digits = {}
    for image, label in zip(images, labels):
        digits.setdefault(int(label), []).append(image[None])
    return Hand("UCI scans", digits, (SCAN,))


def font_hands():
    hands = []
    for path in existing(handwriting_font_files()):
        font = ImageFont.truetype(str(path), 200)
        hands.append(Hand(path.stem, {value: [redraw(glyph(font, str(value), GLYPH_SIDE), PEN_WIDTHS, GLYPH_SIDE)] for value in range(10)}))
    return hands


def stroke_key(strokes):
    return tuple(np.round(np.concatenate(strokes), 3).ravel())


def plotter_hands():
    """Digits of the Hershey fonts training never loads, less any glyph identical to one of training's digits."""
    from HersheyFonts import HersheyFonts

    from train.strokes import _normalized, hershey_glyphs

    trained = {stroke_key(strokes) for *_, strokes in hershey_glyphs()[0]}
    font, hands = HersheyFonts(), []
    for name in plotter_font_names():
        font.load_default_font(name)
        digits = {}
        for value in range(10):
            strokes = [stroke for stroke in font.strokes_for_text(str(value)) if len(stroke) > 1]
            if not strokes or stroke_key(_normalized(strokes)) in trained:
                continue
            strokes = _normalized(strokes)
            extent = np.concatenate(strokes).max(0)
            placed = [stroke * 0.7 + (1 - 0.7 * extent) / 2 for stroke in strokes]
            digits[value] = [draw_strokes(placed, PEN_WIDTHS, GLYPH_SIDE)]
        if digits:
            hands.append(Hand(name, digits))
    return hands


def resized(image, height, width):
    picture = Image.fromarray(np.ascontiguousarray(image, np.float32), "F").resize((max(1, width), max(1, height)), Image.BILINEAR)
    return np.clip(np.asarray(picture, np.float32), 0.0, 1.0)


def sheared(layer, slant, middle):
    """The layer sheared about row `middle`: the top leans right for a positive slant; widened to keep the ink."""
    reach = int(np.ceil(abs(slant) * layer.shape[0])) + 1
    wide = np.zeros((layer.shape[0], layer.shape[1] + 2 * reach), np.float32)
    wide[:, reach:reach + layer.shape[1]] = layer
    picture = Image.fromarray(wide, "F").transform(
        (wide.shape[1], wide.shape[0]), Image.AFFINE, (1, slant, -slant * middle, 0, 1, 0), resample=Image.BILINEAR)
    return np.clip(np.asarray(picture, np.float32), 0.0, 1.0), reach


def compose(shapes, layout, rng, height):
    """Cropped glyphs (ink = 1) written in a line of `layout`, digits `height` pixels high: one layer per glyph, and
    the indices of the glyphs made to touch the one before."""
    count = len(shapes)
    scales = rng.uniform(*SIZES, count) if layout == "sizes" else rng.uniform(0.95, 1.05, count)
    scaled = [resized(shape, round(height * scale), round(shape.shape[1] * height * scale / shape.shape[0] * rng.uniform(0.95, 1.05)))
              for shape, scale in zip(shapes, scales)]
    if layout == "baseline":
        offsets = np.clip(np.cumsum(rng.uniform(-BASELINE_STEP, BASELINE_STEP, count)), -BASELINE_REACH, BASELINE_REACH) * height
    else:
        offsets = rng.uniform(-0.03, 0.03, count) * height
    bottoms = [int(round(offset)) for offset in offsets]
    top = min(bottom - shape.shape[0] for bottom, shape in zip(bottoms, scaled))
    canvas_height = max(bottoms) - top + 2 * MARGIN
    canvas_width = sum(shape.shape[1] for shape in scaled) + int(GAP[1] * height) * count + 2 * MARGIN
    touching = set()
    if layout == "touching" and count > 1:
        touching = {pair for pair in range(1, count) if rng.random() < 0.5} or {int(rng.integers(1, count))}
    layers, ink = [], np.zeros((canvas_height, canvas_width), np.float32)
    right = MARGIN
    for index, (shape, bottom) in enumerate(zip(scaled, bottoms)):
        row = bottom - shape.shape[0] - top + MARGIN
        if index in touching:
            left = max(0, touching_left(ink, shape, row) - int(rng.integers(TOUCH_OVERLAP[0], TOUCH_OVERLAP[1] + 1)))
        else:
            left = right + (int(round(rng.uniform(*GAP) * height)) if index else 0)
        layer = np.zeros_like(ink)
        layer[row:row + shape.shape[0], left:left + shape.shape[1]] = shape
        layers.append(layer)
        np.maximum(ink, layer, out=ink)
        right = max(right, left + shape.shape[1])
    if layout == "slanted":
        slant = rng.uniform(*SLANT) * (1 if rng.random() < 0.8 else -1)
        middle = canvas_height / 2
        layers = [sheared(layer, slant, middle)[0] for layer in layers]
    return layers, sorted(touching)


def touching_left(ink, shape, row):
    """The leftmost column where `shape`, its top at `row`, sits right of the ink so far and meets it on some row."""
    rows = range(row, row + shape.shape[0])
    left = None
    for offset, line_row in enumerate(rows):
        inked = np.flatnonzero(ink[line_row] > INK_THRESHOLD)
        mine = np.flatnonzero(shape[offset] > INK_THRESHOLD)
        if len(inked) and len(mine):
            candidate = inked[-1] + 1 - mine[0]
            left = candidate if left is None else max(left, candidate)
    if left is None:  # no row in common: the neighbours' boxes meet instead
        left = max(int(np.flatnonzero((ink > INK_THRESHOLD).any(0))[-1]) + 1, 0)
    return int(left)


def line_from_layers(layers, number, **labels):
    image = np.max(layers, axis=0)
    box = ink_box(image)
    x0, y0 = max(0, box[0] - MARGIN), max(0, box[1] - MARGIN)
    image = np.ascontiguousarray(image[y0:box[3] + MARGIN, x0:box[2] + MARGIN])
    boxes = []
    for layer in layers:
        own = ink_box(layer)
        boxes.append((own[0] - x0, own[1] - y0, own[2] - x0, own[3] - y0))
    return PeopleLine(image, number, boxes, [np.ascontiguousarray(cropped(layer)) for layer in layers], **labels)


def pen_lines(hands, source, layout, length, count, seed):
    """`count` lines of `length` digits in `layout`, each in one hand and with one pen (cycling through the hand's)."""
    rng = np.random.default_rng(seed)
    for index in range(count):
        hand = hands[index % len(hands)] if len(hands) > 1 else hands[0]
        values = sorted(hand.digits)
        number = [int(rng.choice(values)) for _ in range(length)]
        width_index = index % len(hand.pens)
        shapes = [cropped(hand.digits[value][rng.integers(len(hand.digits[value]))][width_index]) for value in number]
        layers, touching = compose(shapes, layout, rng, int(rng.integers(*DIGIT_HEIGHT)))
        yield line_from_layers(layers, "".join(map(str, number)), source=source, layout=layout,
                               pen=hand.pens[width_index], hand=hand.name, touching=touching)


def printed_lines(paths, length, count, seed):
    """`count` numbers of `length` digits, each typeset in one typeface (cycling), at sizes from PRINTED_HEIGHT."""
    rng = np.random.default_rng(seed)
    for index in range(count):
        path = paths[index % len(paths)]
        number = "".join(str(digit) for digit in rng.integers(0, 10, length))
        height = int(rng.integers(*PRINTED_HEIGHT))
        font = ImageFont.truetype(str(path), size=8)
        # Size the font so a digit's ink is `height` pixels high.
        left, top, right, bottom = font.getbbox("0123456789")
        font = ImageFont.truetype(str(path), size=max(4, round(8 * height / max(1, bottom - top))))
        ascent, descent = font.getmetrics()
        size = (int(font.getlength(number)) + 2 * MARGIN + 4, ascent + descent + 2 * MARGIN)
        layers = []
        for position, char in enumerate(number):
            canvas = Image.new("L", size)
            ImageDraw.Draw(canvas).text((MARGIN + font.getlength(number[:position]), MARGIN), char, font=font, fill=255)
            layers.append(np.asarray(canvas, np.float32) / 255.0)
        yield line_from_layers(layers, number, source=PRINTED, layout=TYPESET, pen=PRINTED, hand=path.stem)


@dataclass
class Plan:
    """How many lines of each kind a run reads."""
    per_cell: int                # composed lines per (source, layout, length)
    separate_short: int          # separate-digit lines of 2-4 digits per (source, length), the target's lines
    printed_per_length: int
    mnist_digits: int            # MNIST test digits in the pool


FULL = Plan(per_cell=24, separate_short=120, printed_per_length=120, mnist_digits=2000)
QUICK = Plan(per_cell=2, separate_short=4, printed_per_length=4, mnist_digits=100)


def glyph_sources(plan, seed=SEED):
    """{source: [Hand, ...]} for the composed sources, and the printed typefaces' paths."""
    from bench.models import mnist_test

    images, labels = mnist_test()
    chosen = np.sort(np.random.default_rng([seed, 0]).choice(len(labels), plan.mnist_digits, replace=False))
    return {"MNIST test": [mnist_hand(images[chosen], labels[chosen])], "handwriting fonts": font_hands(),
            "plotter fonts": plotter_hands(), "UCI scans": [uci_hand()]}, existing(printed_font_files())


def people_lines(plan, sources=None, seed=SEED):
    """Every line of the evaluation, one (source, layout, length) at a time, seeded."""
    hands, printed = sources or glyph_sources(plan, seed)
    for source_index, source in enumerate(COMPOSED_SOURCES):
        for layout_index, layout in enumerate(LAYOUTS):
            for length in LENGTHS:
                count = plan.per_cell
                if layout == "separate" and 2 <= length <= 4:
                    count = max(count, plan.separate_short)
                yield from pen_lines(hands[source], source, layout, length, count, [seed, 1, source_index, layout_index, length])
    for length in LENGTHS:
        yield from printed_lines(printed, length, plan.printed_per_length, [seed, 2, length])
