"""A plain numpy implementation of the normalisation graph: the oracle the ONNX graph is tested against.

It follows the ONNX Resize specification (linear, antialias, half_pixel, exclude_outside) rather
than onnxruntime's code, so an agreement means the graph computes what the specification says.
"""

import numpy as np

from reader.contract import CANVAS_SIZE
from reader.normalization import BOX_SIZE, CENTRE, INK_THRESHOLD, MASS_EPSILON


def resize_weights(in_size, scale, out_size):
    """[out_size, in_size] matrix of antialiased linear interpolation weights along one axis."""
    support_scale = min(scale, 1.0)  # when shrinking, the triangle filter widens to 1/scale pixels
    source = (np.arange(out_size) + 0.5) / scale - 0.5
    distance = np.abs(np.arange(in_size)[None, :] - source[:, None])
    weights = np.clip(1.0 - distance * support_scale, 0.0, None)
    return weights / weights.sum(axis=1, keepdims=True)


def normalize_reference(image):
    """float [H, W] (ink = 1) -> float32 [28, 28], as the shipped model's `normalized` output."""
    image = np.clip(np.asarray(image, np.float64), 0.0, 1.0)
    ink = np.where(image > INK_THRESHOLD, image, 0.0)
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if len(rows) == 0:
        crop = ink
    else:
        crop = ink[rows[0]: rows[-1] + 1, cols[0]: cols[-1] + 1]
    height, width = crop.shape
    out_h, out_w = (max(1, int(np.round(np.float32(side) * np.float32(BOX_SIZE / max(height, width))))) for side in (height, width))
    boxed = resize_weights(height, out_h / height, out_h) @ crop @ resize_weights(width, out_w / width, out_w).T
    boxed = boxed / max(boxed.max(), MASS_EPSILON)

    mass = max(boxed.sum(), MASS_EPSILON)
    centre_row = (boxed.sum(axis=1) * np.arange(out_h)).sum() / mass
    centre_col = (boxed.sum(axis=0) * np.arange(out_w)).sum() / mass
    pad_top = int(np.clip(np.round(CENTRE - centre_row), 0, CANVAS_SIZE - out_h))
    pad_left = int(np.clip(np.round(CENTRE - centre_col), 0, CANVAS_SIZE - out_w))
    canvas = np.zeros((CANVAS_SIZE, CANVAS_SIZE), np.float32)
    canvas[pad_top: pad_top + out_h, pad_left: pad_left + out_w] = boxed
    return canvas
