"""The number reader's training and validation lines: composed from glyph pools, normalised, cached.

Pools (cached as uint8 under build/numbers/): MNIST training digits as MNIST drew them, the same digits
distorted and redrawn with the pad's round pen at random widths (train/prepare.py's recipe), and non-digits
(Hershey letters and symbols, scribbles, stray arcs). A line is 1-8 glyphs of one style; some lines hold a
non-digit, which the reader learns to report as NOT_DIGIT_CLASS. Validation composes the held-out training
digits, redrawn at the evaluation's pen widths. Every line goes through the shipped normalisation graph.
"""

import hashlib
import json
import multiprocessing
import sys
import time
from pathlib import Path

import numpy as np

from reader.contract import MAX_NUMBER_DIGITS, NOT_DIGIT_CLASS, NUMBER_FRAME_STRIDE

POOL_VERSION = 1
LINES_VERSION = 1
REINKED_DIGITS = 30000          # training digits redrawn once each for the pen-drawn pool
NEGATIVE_GLYPHS = 6000
VALIDATION_PEN_WIDTHS = (0.035, 0.05, 0.07, 0.09)
MNIST_INK_SHARE = 0.4           # lines in MNIST's own ink; the rest are redrawn with the pad's pen
NEGATIVE_LINE_SHARE = 0.08      # lines that are only non-digits
MIXED_LINE_SHARE = 0.08         # numbers with one non-digit among the digits
CHUNK = 2000


def _pool_job(job):
    """One chunk of pool rasters: ("reinked", seed, digits) or ("negative", seed, count) -> uint8 [N, 56, 56]."""
    from train.compose import pad_glyph
    from train.prepare import _affine_reinked, _drawn
    from train.strokes import arc_fragment, hershey_glyphs, scribble

    kind, seed, payload = job
    rng = np.random.default_rng(seed)
    if kind == "reinked":
        glyphs = [pad_glyph(_affine_reinked(image, rng)) for image in payload]
    elif kind == "validation":
        from reader.pen import reink
        glyphs = [pad_glyph(drawn) for image in payload for drawn in reink(image.astype(np.float32) / 255.0, VALIDATION_PEN_WIDTHS, 112)]
    else:
        _, others = hershey_glyphs()
        makers = [lambda: others[rng.integers(len(others))][2], lambda: scribble(rng), lambda: arc_fragment(rng)]
        glyphs = [pad_glyph(_drawn(makers[rng.choice(3, p=[0.6, 0.3, 0.1])](), rng)) for _ in range(payload)]
    return np.round(np.stack(glyphs) * 255).astype(np.uint8)


def _run(function, jobs, processes):
    context = multiprocessing.get_context("spawn")  # TensorFlow's threads must not be forked
    with context.Pool(processes) as pool:
        return pool.map(function, jobs, chunksize=1)


def build_pools(x_train, y_train, x_valid, y_valid, seed, cache_dir, processes=2):
    """{"reinked", "reinked_labels", "negative", "validation", "validation_labels"} uint8 pools, cached."""
    key = hashlib.sha256(json.dumps([POOL_VERSION, seed, REINKED_DIGITS, NEGATIVE_GLYPHS]).encode()
                         + x_train.tobytes() + x_valid.tobytes()).hexdigest()[:16]
    cached = Path(cache_dir) / f"pools-{key}.npz"
    if cached.exists():
        with np.load(cached, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    started = time.time()
    rng = np.random.default_rng([seed, 1])
    chosen = np.sort(rng.choice(len(x_train), size=min(REINKED_DIGITS, len(x_train)), replace=False))
    jobs = [("reinked", [seed, 2, start], x_train[chosen[start:start + CHUNK]]) for start in range(0, len(chosen), CHUNK)]
    jobs += [("validation", [seed, 3, start], x_valid[start:start + CHUNK]) for start in range(0, len(x_valid), CHUNK)]
    jobs += [("negative", [seed, 4, start], min(CHUNK, NEGATIVE_GLYPHS - start)) for start in range(0, NEGATIVE_GLYPHS, CHUNK)]
    print(f"drawing {len(chosen)} + {len(x_valid)} digits and {NEGATIVE_GLYPHS} non-digits in {processes} processes ...",
          file=sys.stderr, flush=True)
    results = _run(_pool_job, jobs, processes)
    pools = {
        "reinked": np.concatenate([r for job, r in zip(jobs, results) if job[0] == "reinked"]),
        "reinked_labels": y_train[chosen].astype(np.uint8),
        "validation": np.concatenate([r for job, r in zip(jobs, results) if job[0] == "validation"]),
        "validation_labels": np.repeat(y_valid, len(VALIDATION_PEN_WIDTHS)).astype(np.uint8),
        "negative": np.concatenate([r for job, r in zip(jobs, results) if job[0] == "negative"]),
    }
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    np.savez(cached, **pools)
    print(f"drew the glyph pools in {time.time() - started:.0f} s", file=sys.stderr, flush=True)
    return pools


def _by_label(labels):
    return [np.flatnonzero(labels == digit) for digit in range(10)]


def fits_ctc(line, tokens):
    """Whether a normalised line has the frames CTC needs for its tokens: one per token and a blank between
    repeats. A line too narrow for that is dropped."""
    repeats = sum(a == b for a, b in zip(tokens, tokens[1:]))
    return line.shape[1] // NUMBER_FRAME_STRIDE >= len(tokens) + repeats


def _lines_job(job):
    """("lines", seed, count, pools_path, split) -> (normalised uint8 lines, label lists)."""
    from reader.number_normalization import LineNormalizer
    from train.compose import compose, mnist_glyph

    _, seed, count, pools_path, split = job
    rng = np.random.default_rng(seed)
    with np.load(pools_path, allow_pickle=False) as archive:
        pools = {name: archive[name] for name in archive.files}
    if split == "train":
        mnist, mnist_labels = pools["mnist"], pools["mnist_labels"]
        drawn, drawn_labels = pools["reinked"], pools["reinked_labels"]
    else:
        mnist, mnist_labels = pools["validation_mnist"], pools["validation_mnist_labels"]
        drawn, drawn_labels = pools["validation"], pools["validation_labels"]
    mnist_index, drawn_index = _by_label(mnist_labels), _by_label(drawn_labels)
    negative = pools["negative"]
    normalizer = LineNormalizer()
    lines, labels = [], []
    while len(lines) < count:
        length = int(rng.integers(1, MAX_NUMBER_DIGITS + 1))
        tokens = list(rng.integers(0, 10, size=length))
        roll = rng.random()
        if roll < NEGATIVE_LINE_SHARE:
            tokens = [NOT_DIGIT_CLASS] * int(rng.integers(1, 3))
        elif roll < NEGATIVE_LINE_SHARE + MIXED_LINE_SHARE:
            tokens.insert(int(rng.integers(0, length + 1)), NOT_DIGIT_CLASS)
        in_mnist_ink = rng.random() < MNIST_INK_SHARE
        glyphs = []
        for token in tokens:
            if token == NOT_DIGIT_CLASS:
                glyphs.append(negative[rng.integers(len(negative))] / 255.0)
            elif in_mnist_ink:
                glyphs.append(mnist_glyph(mnist[rng.choice(mnist_index[token])]))
            else:
                glyphs.append(drawn[rng.choice(drawn_index[token])] / 255.0)
        line = normalizer.normalize(compose(glyphs, rng).image)
        if not fits_ctc(line, tokens):
            continue
        lines.append(np.round(line * 255).astype(np.uint8))
        labels.append(tokens)
    return lines, labels


def compose_lines(pools, count, seed, split, cache_dir, processes=2):
    """`count` normalised lines (uint8 [28, W] each) and their label lists, composed in `processes`, cached."""
    key = hashlib.sha256(json.dumps([LINES_VERSION, seed, count, split, MNIST_INK_SHARE, NEGATIVE_LINE_SHARE,
                                     MIXED_LINE_SHARE]).encode() + pools["reinked"][:64].tobytes()).hexdigest()[:16]
    cached = Path(cache_dir) / f"lines-{split}-{key}.npz"
    if cached.exists():
        with np.load(cached, allow_pickle=False) as archive:
            return _unpack(archive)
    started = time.time()
    pools_path = Path(cache_dir) / f"pools-for-lines-{key}.npz"
    np.savez(pools_path, **pools)
    jobs = [("lines", [seed, 5, start], min(CHUNK, count - start), str(pools_path), split) for start in range(0, count, CHUNK)]
    results = _run(_lines_job, jobs, processes)
    pools_path.unlink()
    lines = [line for chunk, _ in results for line in chunk]
    labels = [label for _, chunk in results for label in chunk]
    np.savez(cached, **_pack(lines, labels))
    print(f"composed {count} {split} lines in {time.time() - started:.0f} s", file=sys.stderr, flush=True)
    return lines, labels


def _pack(lines, labels):
    return {"pixels": np.concatenate([line.T.ravel() for line in lines]), "widths": np.array([line.shape[1] for line in lines]),
            "tokens": np.concatenate([np.asarray(label, np.uint8) for label in labels]),
            "lengths": np.array([len(label) for label in labels])}


def _unpack(archive):
    widths, lengths = archive["widths"], archive["lengths"]
    columns = np.split(archive["pixels"], np.cumsum(widths * 28)[:-1])
    lines = [column.reshape(width, 28).T for column, width in zip(columns, widths)]
    labels = [list(map(int, part)) for part in np.split(archive["tokens"], np.cumsum(lengths)[:-1])]
    return lines, labels
