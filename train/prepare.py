"""The training and validation digits, prepared once: distorted, redrawn with the pad's pen, normalised.

Training sees each MNIST training digit three ways (MNIST's own ink with random distortions, and twice
redrawn with a round pen of random width after a random distortion), plus Hershey digits and missing
styles, plus a "not a digit" class: Hershey letters and symbols, scribbles, stray arcs and two digits side
by side. It also sees MNIST training digits as a low-resolution scanner would have seen them (train/scan.py),
since scripts send scans, and the digits and letters of typefaces no evaluation reads (train/typefaces.py).
Validation holds back the last MNIST training digits, as MNIST drew them, redrawn at
the evaluation's pen widths and scanned the same ways, digits and letters of typefaces kept for validation
only, and negatives from the same generators with another
seed. Everything goes through the shipped normalisation graph, in two processes, and is cached as uint8
under build/.
"""

import hashlib
import json
import multiprocessing
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from reader.contract import NOT_DIGIT_CLASS
from train.strokes import DIGIT_FONTS, SYMBOL_FONTS, TRAINING_FONT_FILES, VALIDATION_FONT_FILES

PREPARE_VERSION = 5        # bump when the recipe changes, so stale caches are not reused
WORK_SIDE = 112            # training digits are redrawn on a 112-pixel pad: 4x MNIST, cheap, ample for 28x28
TRAIN_PEN_WIDTHS = (0.03, 0.10)        # uniform, as fractions of the pad's side
VALIDATION_PEN_WIDTHS = (0.035, 0.05, 0.07, 0.09)
REINKED_VIEWS = 2
VALIDATION_DIGITS = 5000
# Extra samples per MNIST training digit used.
STYLE_SHARE = 0.15
SCAN_SHARE = 0.3
TYPEFACE_SHARE = 0.1      # digits of training's typefaces (train/typefaces.py)...
TYPEFACE_LETTER_SHARE = 0.05  # ...and their letters, as non-digits
VALIDATION_TYPEFACE_SAMPLES = 1000
NEGATIVE_SHARES = {"glyph": 0.25, "scribble": 0.1, "arc": 0.04, "pair": 0.1}
VALIDATION_NEGATIVES = 3000
CHUNK = 2000


def _affine_reinked(image, rng):
    """An MNIST digit distorted at random on the work pad, then redrawn with a random round pen."""
    from train.augment import redrawn

    return redrawn(Image.fromarray(image).resize((WORK_SIDE, WORK_SIDE), Image.BILINEAR), rng, TRAIN_PEN_WIDTHS, WORK_SIDE)


def _drawn(strokes, rng):
    from reader.pen import draw_strokes
    from train.strokes import jitter, place

    return draw_strokes(place(jitter(strokes, rng), rng), (rng.uniform(*TRAIN_PEN_WIDTHS),), WORK_SIDE)[0]


def _pair(first, second, rng):
    """Two MNIST digits side by side with a random gap (or a slight overlap): a number, not a digit."""
    gap = int(rng.integers(-3, 8))
    canvas = np.zeros((28, 56 + gap), np.float32)
    canvas[:, :28] = first
    canvas[:, 28 + gap: 56 + gap] = np.maximum(canvas[:, 28 + gap: 56 + gap], second)
    return canvas / 255.0


def _render(job):
    """One chunk of samples: job = (kind, seed, payload); returns normalised uint8 digits [N, 28, 28]."""
    from reader.normalization import Normalizer
    from train.augment import augment_digit
    from train.strokes import arc_fragment, hershey_glyphs, scribble, style_templates

    kind, seed, payload = job
    rng = np.random.default_rng(seed)
    normalizer = Normalizer()
    images = []
    if kind == "classic":
        images = [augment_digit(image, rng) for image in payload]
    elif kind == "reinked":
        images = [_affine_reinked(image, rng) for image in payload]
    elif kind == "validation_reinked":
        from reader.pen import reink

        images = [drawn for image in payload for drawn in reink(image.astype(np.float32) / 255.0, VALIDATION_PEN_WIDTHS, WORK_SIDE)]
    elif kind in ("scan", "validation_scan"):
        from train.scan import scanned

        images = [scanned(image, rng, distort=kind == "scan") for image in payload]
    elif kind in ("typeface", "validation_typeface", "typeface_letter", "validation_typeface_letter"):
        from train.typefaces import drawn, glyphs

        pool = [entry for entry in glyphs("validation" if kind.startswith("validation") else "train")
                if (entry[0] is None) == kind.endswith("letter")]
        widths = VALIDATION_PEN_WIDTHS if kind.startswith("validation") else TRAIN_PEN_WIDTHS
        picks = rng.integers(len(pool), size=payload)
        images = [drawn(pool[pick][1], pool[pick][2], rng, (min(widths), max(widths)), WORK_SIDE) for pick in picks]
        labels = [NOT_DIGIT_CLASS if pool[pick][0] is None else pool[pick][0] for pick in picks]
        return _finish(normalizer, images), np.array(labels, np.uint8)
    elif kind == "plain":
        images = [image.astype(np.float32) / 255.0 for image in payload]
    elif kind == "style":
        digits, _ = hershey_glyphs()
        pool = [(digit, strokes) for digit, _, _, strokes in digits] + style_templates()
        picks = rng.integers(len(pool), size=payload)
        images = [_drawn(pool[pick][1], rng) for pick in picks]
        return _finish(normalizer, images), np.array([pool[pick][0] for pick in picks], np.uint8)
    elif kind == "glyph":
        _, others = hershey_glyphs()
        images = [_drawn(others[pick][2], rng) for pick in rng.integers(len(others), size=payload)]
    elif kind in ("scribble", "arc"):
        make = scribble if kind == "scribble" else arc_fragment
        images = [_drawn(make(rng), rng) for _ in range(payload)]
    elif kind == "pair":
        images = [_pair(first, second, rng) for first, second in payload]
    else:
        raise ValueError(kind)
    return _finish(normalizer, images), None


def _finish(normalizer, images):
    return np.stack([np.round(normalizer.normalize(image) * 255) for image in images]).astype(np.uint8) if images else \
        np.zeros((0, 28, 28), np.uint8)


KINDS = ("classic", "reinked", "validation_reinked", "plain", "style", "glyph", "scribble", "arc", "pair", "scan", "validation_scan",
         "typeface", "validation_typeface", "typeface_letter", "validation_typeface_letter")


def _chunks(kind, seed, items, labels):
    """Jobs over `items` in chunks, each with its own seed and its slice of `labels`."""
    return [((kind, [*seed, KINDS.index(kind), index], items[start: start + CHUNK]), labels[start: start + CHUNK])
            for index, start in enumerate(range(0, len(items), CHUNK))]


def _generated(kind, seed, total, label=None):
    """Jobs that make `total` samples from nothing; label None means the job returns its own labels."""
    return [((kind, [*seed, KINDS.index(kind), index], min(CHUNK, total - start)),
             None if label is None else np.full(min(CHUNK, total - start), label, np.uint8))
            for index, start in enumerate(range(0, total, CHUNK))]


def plan(x, y, seed, validation_digits):
    """Jobs with their labels: {split: [(job, labels or None), ...]}."""
    train_x, train_y = x[:-validation_digits], y[:-validation_digits]
    valid_x, valid_y = x[-validation_digits:], y[-validation_digits:]
    n = len(train_x)
    rng = np.random.default_rng([seed, 99])
    pairs = lambda images, count: list(zip(images[rng.integers(len(images), size=count)], images[rng.integers(len(images), size=count)]))
    not_digit = lambda count: np.full(count, NOT_DIGIT_CLASS, np.uint8)
    train = _chunks("classic", [seed, 0], train_x, train_y)
    for view in range(REINKED_VIEWS):
        train += _chunks("reinked", [seed, 1, view], train_x, train_y)
    train += _generated("style", [seed, 2], int(n * STYLE_SHARE))
    scans = rng.choice(n, size=int(n * SCAN_SHARE), replace=False)
    train += _chunks("scan", [seed, 9], train_x[scans], train_y[scans])
    train += _generated("typeface", [seed, 11], int(n * TYPEFACE_SHARE))
    train += _generated("typeface_letter", [seed, 12], int(n * TYPEFACE_LETTER_SHARE))
    for kind, share in NEGATIVE_SHARES.items():
        count = int(n * share)
        train += (_chunks("pair", [seed, 3], pairs(train_x, count), not_digit(count)) if kind == "pair"
                  else _generated(kind, [seed, 4], count, NOT_DIGIT_CLASS))
    # Validation: the held-out digits as MNIST drew them, and redrawn at each evaluation pen width.
    validation = _chunks("plain", [seed, 5], valid_x, valid_y)
    validation += _chunks("validation_reinked", [seed, 6], valid_x, np.repeat(valid_y, len(VALIDATION_PEN_WIDTHS)).reshape(-1, len(VALIDATION_PEN_WIDTHS)))
    validation += _chunks("validation_scan", [seed, 10], valid_x, valid_y)
    typefaces = max(1, VALIDATION_TYPEFACE_SAMPLES * validation_digits // VALIDATION_DIGITS)
    validation += _generated("validation_typeface", [seed, 13], typefaces)
    validation += _generated("validation_typeface_letter", [seed, 14], typefaces // 2)
    per_kind = max(1, VALIDATION_NEGATIVES * validation_digits // VALIDATION_DIGITS // 4)
    validation += _chunks("pair", [seed, 7], pairs(valid_x, per_kind), not_digit(per_kind))
    for kind in ("glyph", "scribble", "arc"):
        validation += _generated(kind, [seed, 8], per_kind, NOT_DIGIT_CLASS)
    return {"train": train, "validation": validation}


def prepare(x, y, seed, cache_dir, validation_digits=VALIDATION_DIGITS, processes=2):
    """{"x_train", "y_train", "x_validation", "y_validation", "validation_kind"}: uint8 digits and labels, cached."""
    key = hashlib.sha256(json.dumps([PREPARE_VERSION, seed, validation_digits, NEGATIVE_SHARES, STYLE_SHARE, SCAN_SHARE,
                                     DIGIT_FONTS, SYMBOL_FONTS, TRAINING_FONT_FILES, VALIDATION_FONT_FILES,
                                     TYPEFACE_SHARE, TYPEFACE_LETTER_SHARE, VALIDATION_TYPEFACE_SAMPLES]).encode()
                         + x.tobytes() + y.tobytes()).hexdigest()[:16]
    cached = Path(cache_dir) / f"prepared-{key}.npz"
    if cached.exists():
        with np.load(cached, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    started = time.time()
    jobs = plan(x, y, seed, validation_digits)
    flat = [(split, job, None if labels is None else np.ravel(labels)) for split, entries in jobs.items() for job, labels in entries]
    print(f"preparing {len(flat)} chunks of digits in {processes} processes ...", file=sys.stderr, flush=True)
    context = multiprocessing.get_context("spawn")  # TensorFlow's threads must not be forked
    with context.Pool(processes) as pool:
        results = pool.map(_render, [job for _, job, _ in flat], chunksize=1)
    out = {}
    for split in ("train", "validation"):
        parts = [(images, own if labels is None else labels, job[0])
                 for (s, job, labels), (images, own) in zip(flat, results) if s == split]
        out[f"x_{split}"] = np.concatenate([images for images, _, _ in parts])
        out[f"y_{split}"] = np.concatenate([labels for _, labels, _ in parts]).astype(np.uint8)
        out[f"kind_{split}"] = np.concatenate([np.full(len(images), kind) for images, _, kind in parts])
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    np.savez(cached, **out)
    print(f"prepared {len(out['x_train'])} training and {len(out['x_validation'])} validation digits "
          f"in {time.time() - started:.0f} s", file=sys.stderr, flush=True)
    return out
