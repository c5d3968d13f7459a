"""Drawings as the reader sees them: image -> float32 [H, W] in [0, 1], ink = 1, background = 0.

One definition for the server, which decodes what clients send (serve/decode.py adds formats, limits and
large images around it), and for training, which decodes the drawings the feedback store keeps.
"""

import io

import numpy as np
from PIL import Image, ImageOps

EXIF_ORIENTATION = 0x0112
ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
SIXTEEN_BIT_MODES = ("I", "I;16", "I;16L", "I;16B", "I;16N", "F")


def drawing_to_array(png):
    """A stored drawing (a PNG the server checked when it took it) as the server hands it to the model."""
    image = Image.open(io.BytesIO(png), formats=["PNG"])
    image.load()
    return to_ink(grey_image(orient(image)))


def orient(image):
    """Apply the EXIF orientation a camera recorded, so the digit stands upright."""
    if image.format in ("JPEG", "WEBP", "PNG") and image.getexif().get(EXIF_ORIENTATION, 1) != 1:
        return ImageOps.exif_transpose(image)
    return image


def grey_image(image):
    """The image as 8-bit grey ("L"), with any transparency resolved by composite()."""
    mode = image.mode
    if mode in SIXTEEN_BIT_MODES:
        return sixteen_bit_to_grey(image)
    if mode in ALPHA_MODES or "transparency" in image.info:
        return composite(image.convert("RGBA"))
    return image if mode == "L" else image.convert("L")


def sixteen_bit_to_grey(image):
    """16-bit greyscale (PNGs arrive in Pillow's integer modes) as 8-bit: plenty for a digit."""
    top = 1.0 if image.mode == "F" else 65535.0
    values = np.clip(np.asarray(image, dtype=np.float32) * np.float32(255 / top), 0, 255)
    return Image.fromarray(np.round(values).astype(np.uint8), "L")


def composite(image):
    """Flatten RGBA so that the ink stays visible (see ink_source)."""
    alpha = image.getchannel("A")
    grey = image.convert("L")
    source = ink_source(alpha.getextrema()[0], border(np.asarray(alpha)), border(np.asarray(grey)))
    if source == "grey":
        return grey
    if source == "alpha":
        return alpha
    flat = Image.new("RGBA", image.size, (source, source, source, 255))
    return Image.alpha_composite(flat, image).convert("L")


def ink_source(min_alpha, alpha_border, grey_border):
    """Where the ink of an image with alpha is: "grey", "alpha", or the grey level to composite onto.

    A canvas export with a transparent background carries its ink in the alpha channel, and the
    colour under transparent pixels is arbitrary (often black), so compositing onto any one colour
    would hide black or white ink. So with a transparent border the alpha channel itself is the ink;
    with an opaque border, transparent holes take the border's own colour.
    """
    if min_alpha == 255:
        return "grey"
    if np.median(alpha_border) < 128:
        return "alpha"
    return round(float(np.median(grey_border)))


def border(values):
    """The outermost pixels of a 2-D array, each once."""
    return np.concatenate([values[0], values[-1], values[1:-1, 0], values[1:-1, -1]])


def border_median(values):
    """The median of the outermost pixels: the background level of a drawing or a photo of paper."""
    return float(np.median(border(values)))


def to_ink(grey):
    """8-bit grey -> float32 in [0, 1] with the background (the border's median) at 0 and ink at 1.

    Either polarity: dark ink on light paper is flipped so that ink is bright, as the model expects.
    The flip and the background shift are one affine map, applied in a single pass.
    """
    values = np.asarray(grey)
    background = border_median(values) / 255
    scale, offset = np.float32(1 / 255), np.float32(0)
    if background > 0.5:
        scale, offset, background = -scale, np.float32(1), 1 - background
    image = values.astype(np.float32)
    if background > 0:
        stretch = np.float32(1 / (1 - background))
        scale, offset = scale * stretch, (offset - np.float32(background)) * stretch
    image *= scale
    if offset:
        image += offset
    if background > 0:
        np.clip(image, 0, 1, out=image)
    return image
