"""The pad's pen, in numpy: a white round pen of one width drawn along a centre line, anti-aliased.

A finger on glass draws a stroke of constant width whatever the writer's pen was, so evaluation and
training redraw digits the way the pad does: reduce the ink to its centre line (skeleton), then paint
every pixel within half a pen width of that line. Vector strokes (fonts, scribbles) take the same path.
"""

import numpy as np
from PIL import Image, ImageDraw

from reader.contract import PAD_PEN_WIDTH, PAD_SIDE


def skeleton(image, threshold=0.5):
    """The one-pixel centre line of the ink in a float image (ink = 1), as a bool mask."""
    from skimage.morphology import skeletonize

    return skeletonize(np.asarray(image) > threshold)


def centre_distance(centre_line):
    """Distance of every pixel from the nearest centre-line pixel; compute once, then paint any pen width."""
    from scipy.ndimage import distance_transform_edt

    if not centre_line.any():
        return np.full(centre_line.shape, np.inf, np.float32)
    return distance_transform_edt(~centre_line).astype(np.float32)


def paint(distance, pen_width_px):
    """Ink of a round pen `pen_width_px` wide along the centre line, with a one-pixel anti-aliased edge."""
    return np.clip(pen_width_px / 2.0 + 0.5 - distance, 0.0, 1.0).astype(np.float32)


def fit_to_pad(image, side=PAD_SIDE):
    """Scale a square-ish raster (an MNIST digit) up to the pad's size, as if it had been drawn there."""
    image = np.asarray(image, np.float32)
    return np.asarray(Image.fromarray(image, "F").resize((side, side), Image.BILINEAR), np.float32)


def paint_widths(distance, pen_widths, side):
    """The centre line painted at each pen width (fractions of the side): [len(widths), side, side]."""
    return np.stack([paint(distance, width * side) for width in pen_widths])


def redraw(image, pen_widths=(PAD_PEN_WIDTH,), side=PAD_SIDE):
    """A pad-sized raster reduced to its centre line and redrawn at each pen width."""
    return paint_widths(centre_distance(skeleton(image)), pen_widths, side)


def reink(image, pen_widths=(PAD_PEN_WIDTH,), side=PAD_SIDE):
    """A raster digit (an MNIST one) scaled to a side x side pad and redrawn at each pen width."""
    return redraw(fit_to_pad(image, side), pen_widths, side)


def rasterize_strokes(strokes, side):
    """Centre lines of vector strokes (lists of (x, y) in pad units, 0..1) as a bool mask of side x side."""
    canvas = Image.new("1", (side, side))
    draw = ImageDraw.Draw(canvas)
    for stroke in strokes:
        points = [(float(x) * (side - 1), float(y) * (side - 1)) for x, y in stroke]
        if len(points) == 1:
            draw.point(points[0], fill=1)
        else:
            draw.line(points, fill=1, width=1)
    return np.asarray(canvas, bool)


def draw_strokes(strokes, pen_widths=(PAD_PEN_WIDTH,), side=PAD_SIDE):
    """Vector strokes drawn with the pad's pen at each width: [len(widths), side, side]."""
    return paint_widths(centre_distance(rasterize_strokes(strokes, side)), pen_widths, side)
