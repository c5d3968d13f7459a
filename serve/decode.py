"""Turn what a client sends into the model's input: float32 [H, W] in [0, 1], ink = 1, background = 0.

Images may be any size and mode (grey, RGB, palette, with alpha), either polarity, and photos carry
their EXIF orientation. The model does the MNIST normalisation itself, so this module only decodes,
composites alpha, rotates, and flips polarity. Errors are ValueError subclasses naming the problem.
"""

import base64
import binascii
import io
import math
import warnings

import numpy as np
from PIL import Image, ImageOps

# Formats Pillow may open: the ones the API accepts, so no other (larger, riskier) decoder ever runs.
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF")
# The model shrinks the digit to 20x20 anyway; bigger images are box-reduced first to bound memory.
MAX_DECODED_SIDE = 1024
# Width x height read from an image's header; more is refused before decoding (HTTP 413).
DEFAULT_MAX_IMAGE_PIXELS = 4096 * 4096
EXIF_ORIENTATION = 0x0112
ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
# The "pixels" input follows MNIST: 0 is background, PIXELS_INK is full ink.
PIXELS_INK = 255


class InputError(ValueError):
    """The input cannot be read (HTTP 400)."""


class TooLargeError(ValueError):
    """The input is over a size limit (HTTP 413)."""


class NoInkError(ValueError):
    """The image is blank, so there is no digit to read (HTTP 422)."""


_largest_pixel_limit = 0


def set_pixel_limit(max_pixels):
    """Set Pillow's own decompression-bomb guard explicitly, refusing rather than warning.

    Pillow's limit is process-wide, so it is the largest any app in this process asked for; each
    app's own, possibly smaller, limit is enforced from the image header in open_image.
    """
    global _largest_pixel_limit
    _largest_pixel_limit = max(_largest_pixel_limit, max_pixels)
    Image.MAX_IMAGE_PIXELS = _largest_pixel_limit
    # Pillow only warns between its limit and twice that; a server must refuse instead.
    warnings.simplefilter("error", Image.DecompressionBombWarning)


def open_image(data, max_pixels):
    """Decode the first frame of an image, refusing it from its header alone if it has too many pixels."""
    try:
        image = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise TooLargeError(f"image too large: {describe(error)}") from None
    except Exception as error:  # Pillow signals unreadable data with many exception types
        raise InputError(f"cannot decode image: {describe(error)}") from None
    width, height = image.size
    if width * height > max_pixels:
        raise TooLargeError(f"image too large: {width}x{height} pixels, the limit is {max_pixels}")
    if image.format == "JPEG" and max(width, height) > MAX_DECODED_SIDE:
        # JPEG can decode at 1/2, 1/4 or 1/8 scale for free: a phone photo never needs full size.
        image.draft(image.mode, (MAX_DECODED_SIDE, MAX_DECODED_SIDE))
    try:
        image.load()  # only the first frame of an animated GIF/WebP
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise TooLargeError(f"image too large: {describe(error)}") from None
    except MemoryError:
        raise TooLargeError("image too large to decode") from None
    except Exception as error:
        raise InputError(f"cannot decode image: {describe(error)}") from None
    return image


def describe(error):
    """The first line of an exception's message, short enough for a JSON error."""
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return text[:200]


def orient(image):
    """Apply the EXIF orientation a camera recorded, so the digit stands upright."""
    if image.format in ("JPEG", "WEBP", "PNG") and image.getexif().get(EXIF_ORIENTATION, 1) != 1:
        return ImageOps.exif_transpose(image)
    return image


def reduce_large(image):
    factor = math.ceil(max(image.size) / MAX_DECODED_SIDE)
    return image.reduce(factor) if factor > 1 else image


def grey_image(image):
    """The image as 8-bit grey ("L"), with any transparency resolved by composite()."""
    mode = image.mode
    if mode in ("I", "I;16", "I;16L", "I;16B", "I;16N", "F"):
        # 16-bit greyscale PNGs arrive as integer modes; 8 bits are plenty for a digit.
        top = 1.0 if mode == "F" else 65535.0
        values = np.clip(np.asarray(image, dtype=np.float32) * np.float32(255 / top), 0, 255)
        return Image.fromarray(np.round(values).astype(np.uint8), "L")
    if mode in ALPHA_MODES or "transparency" in image.info:
        return composite(image.convert("RGBA"))
    return image if mode == "L" else image.convert("L")


def composite(image):
    """Flatten RGBA so that the ink stays visible.

    A canvas export with a transparent background carries its ink in the alpha channel, and the
    colour under transparent pixels is arbitrary (often black), so compositing onto any one colour
    would hide black or white ink. So with a transparent border the alpha channel itself is the ink;
    with an opaque border, transparent holes take the border's own colour.
    """
    alpha = image.getchannel("A")
    if alpha.getextrema()[0] == 255:
        return image.convert("L")
    if border_median(np.asarray(alpha)) < 128:
        return alpha
    grey = image.convert("L")
    backdrop = round(border_median(np.asarray(grey)))
    flat = Image.new("RGBA", image.size, (backdrop, backdrop, backdrop, 255))
    return Image.alpha_composite(flat, image).convert("L")


def border_median(values):
    """The median of the outermost pixels: the background level of a drawing or a photo of paper."""
    border = np.concatenate([values[0], values[-1], values[1:-1, 0], values[1:-1, -1]])
    return float(np.median(border))


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


def image_to_array(data, max_pixels):
    """Image bytes -> float32 [H, W] in [0, 1], ink = 1."""
    if not data:
        raise InputError("empty image")
    image = open_image(data, max_pixels)
    try:
        return to_ink(reduce_large(grey_image(orient(image))))
    except MemoryError:
        raise TooLargeError("image too large to decode") from None
    except Exception as error:  # a hostile file can upset Pillow after decoding too (EXIF, modes)
        raise InputError(f"cannot decode image: {describe(error)}") from None


def decode_base64(text):
    """Bytes from base64 text or a data: URL (data:image/png;base64,...)."""
    if not isinstance(text, str):
        raise InputError(f"an image must be a base64 string, not {json_type(text)}")
    if text.startswith("data:"):
        header, comma, text = text.partition(",")
        if not comma or not header.endswith(";base64"):
            raise InputError("a data: URL must be base64-encoded (data:image/png;base64,...)")
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as error:
        raise InputError(f"invalid base64: {describe(error)}") from None


def pixels_to_array(pixels, side):
    """MNIST-convention rows (0 background .. PIXELS_INK ink) -> float32 [side, side] in [0, 1]."""
    shape_error = f"pixels must be a list of {side} rows of {side} numbers 0..{PIXELS_INK}"
    if not isinstance(pixels, list) or len(pixels) != side:
        raise InputError(shape_error)
    for row in pixels:
        if not isinstance(row, list) or len(row) != side:
            raise InputError(shape_error)
        for value in row:
            # bool is an int in Python, but true/false are not pixel values.
            if type(value) not in (int, float):
                raise InputError(f"pixel values must be numbers 0..{PIXELS_INK}, found {json_type(value)}")
    range_error = f"pixel values must be finite numbers from 0 to {PIXELS_INK}"
    try:
        values = np.array(pixels, dtype=np.float64)
    except OverflowError:
        raise InputError(range_error) from None
    if not np.isfinite(values).all() or values.min() < 0 or values.max() > PIXELS_INK:
        raise InputError(range_error)
    return (values / PIXELS_INK).astype(np.float32)


def json_type(value):
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def check_ink(image, ink_threshold, where=""):
    """Refuse a blank image: the model would otherwise invent a digit from nothing."""
    if image.size == 0 or float(image.max()) <= ink_threshold:
        raise NoInkError(f"{where}no ink: the image is blank, draw a digit")
