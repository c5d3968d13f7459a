"""Turn what a client sends into the model's input: float32 [H, W] in [0, 1], ink = 1, background = 0.

Images may be any size and mode (grey, RGB, palette, with alpha), either polarity, and photos carry
their EXIF orientation. The model does the MNIST normalisation itself, so this module only decodes,
composites alpha, rotates, and flips polarity. Errors are ValueError subclasses naming the problem.
"""

import base64
import binascii
import io
import math

import numpy as np
from PIL import Image, ImageOps

# Formats Pillow may open: the ones the API accepts, so no other (larger, riskier) decoder ever runs.
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF")
# The model shrinks the digit to 20x20 anyway; bigger images are box-reduced first to bound memory.
MAX_DECODED_SIDE = 1024
EXIF_ORIENTATION = 0x0112


class InputError(ValueError):
    """The input cannot be read (HTTP 400)."""


class TooLargeError(ValueError):
    """The input is over a size limit (HTTP 413)."""


class NoInkError(ValueError):
    """The image is blank, so there is no digit to read (HTTP 422)."""


def set_pixel_limit(max_pixels):
    """Make Pillow's own decompression-bomb guard match ours (it errors at twice its limit)."""
    Image.MAX_IMAGE_PIXELS = max_pixels


def open_image(data, max_pixels):
    """Decode the first frame of an image, refusing it from its header alone if it has too many pixels."""
    try:
        image = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
    except Image.DecompressionBombError as error:
        raise TooLargeError(f"image too large: {error}") from None
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
    except Image.DecompressionBombError as error:
        raise TooLargeError(f"image too large: {error}") from None
    except MemoryError:
        raise TooLargeError("image too large to decode") from None
    except Exception as error:
        raise InputError(f"cannot decode image: {describe(error)}") from None
    return image


def describe(error):
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


def luminance_and_alpha(image):
    """Grey levels in [0, 1] and, if the image has transparency, its alpha in [0, 1]."""
    mode = image.mode
    if mode in ("I", "I;16", "I;16L", "I;16B", "I;16N", "F"):
        # 16-bit greyscale PNGs arrive as integer modes.
        grey = np.asarray(image, dtype=np.float32)
        top = 65535.0 if mode != "F" else 1.0
        return np.clip(grey / top, 0.0, 1.0), None
    if mode == "P" and "transparency" in image.info or mode == "PA":
        image = image.convert("RGBA")
        mode = "RGBA"
    elif mode in ("RGBa", "La"):
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA"):
        alpha = np.asarray(image.getchannel("A"), dtype=np.float32) / np.float32(255)
        grey = np.asarray(image.convert("L"), dtype=np.float32) / np.float32(255)
        return grey, alpha
    if mode != "L":
        image = image.convert("L")
    return np.asarray(image, dtype=np.float32) / np.float32(255), None


def border_of(values):
    return np.concatenate([values[0], values[-1], values[1:-1, 0], values[1:-1, -1]])


def composite(grey, alpha):
    """Put transparent pixels on a background that contrasts with the ink.

    A canvas export with a transparent background carries its ink in the alpha channel, and its
    hidden colour is arbitrary (often black), so a fixed backdrop could hide black or white ink.
    With a transparent border the backdrop is the opposite of the ink's mean grey; otherwise the
    image has its own opaque background and transparent pixels take that colour.
    """
    if alpha.min() >= 1.0:
        return grey
    if np.median(border_of(alpha)) < 0.5:
        weight = alpha.sum()
        ink_grey = float((grey * alpha).sum() / weight) if weight > 0 else 0.0
        backdrop = 0.0 if ink_grey > 0.5 else 1.0
    else:
        backdrop = float(np.median(border_of(grey)))
    return grey * alpha + np.float32(backdrop) * (1.0 - alpha)


def to_ink(grey):
    """Map the background (the border's median grey) to 0 and full contrast ink to 1, in place."""
    background = float(np.median(border_of(grey)))
    if background > 0.5:
        # Dark ink on light paper: flip so that ink is bright as the model expects.
        np.subtract(np.float32(1), grey, out=grey)
        background = 1.0 - background
    if background > 0.0:
        grey -= np.float32(background)
        grey *= np.float32(1.0 / (1.0 - background))
        np.clip(grey, 0.0, 1.0, out=grey)
    return grey


def image_to_array(data, max_pixels):
    """Image bytes -> float32 [H, W] in [0, 1], ink = 1."""
    if not data:
        raise InputError("empty image")
    image = reduce_large(orient(open_image(data, max_pixels)))
    grey, alpha = luminance_and_alpha(image)
    if alpha is not None:
        grey = composite(grey, alpha)
    if not grey.flags.writeable:
        grey = grey.copy()
    return np.ascontiguousarray(to_ink(grey), dtype=np.float32)


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
    """MNIST-convention rows (0 background .. 255 ink) -> float32 [side, side] in [0, 1]."""
    if not isinstance(pixels, list) or len(pixels) != side:
        raise InputError(f"pixels must be a list of {side} rows of {side} numbers 0..255")
    for row in pixels:
        if not isinstance(row, list) or len(row) != side:
            raise InputError(f"pixels must be a list of {side} rows of {side} numbers 0..255")
        for value in row:
            # bool is an int in Python, but true/false are not pixel values.
            if type(value) not in (int, float):
                raise InputError(f"pixel values must be numbers 0..255, found {json_type(value)}")
    try:
        values = np.array(pixels, dtype=np.float64)
    except OverflowError:
        raise InputError("pixel values must be finite numbers from 0 to 255") from None
    if not np.isfinite(values).all() or values.min() < 0 or values.max() > 255:
        raise InputError("pixel values must be finite numbers from 0 to 255")
    return (values / 255.0).astype(np.float32)


def json_type(value):
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def check_ink(image, ink_threshold, where=""):
    """Refuse a blank image: the model would otherwise invent a digit from nothing."""
    if image.size == 0 or float(image.max()) <= ink_threshold:
        raise NoInkError(f"{where}no ink: the image is blank, draw a digit")
