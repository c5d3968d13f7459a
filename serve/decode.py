"""Turn what a client sends into the model's input: float32 [H, W] in [0, 1], ink = 1, background = 0.

Images may be any size and mode (grey, RGB, palette, with alpha), either polarity, and photos carry
their EXIF orientation. The model does the MNIST normalisation itself, so this module only decodes,
composites alpha, rotates, and flips polarity. Errors are ValueError subclasses naming the problem.

An image larger than MAX_DECODED_SIDE (for a number, MAX_NUMBER_DECODED_SIDE) is never held at full size:
the decode reports the integer factor it reduced by, so answers can point into the sent image. PNGs are decoded a band of rows at a
time (serve/png_bands.py), other formats whole only when that is small (JPEG decodes at reduced scale),
and each band is composited and box-reduced before the next. At most a few such decodes run at once.
"""

import base64
import binascii
import ctypes
import ctypes.util
import io
import math
import threading
import warnings
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageChops

from feedback.images import (
    ALPHA_MODES, EXIF_ORIENTATION, SIXTEEN_BIT_MODES, grey_image, ink_source, orient, sixteen_bit_to_grey, to_ink,
)
from serve import png_bands

# Formats Pillow may open: the ones the API accepts, so no other (larger, riskier) decoder ever runs.
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF")
# The model fits the digit's ink into a 20 px box; the kiosk's pad is 280 px. Larger images are
# box-reduced by an integer factor to at most this side while they are decoded: a pad drawing is never
# touched, a digit filling a tenth of a photo still keeps twice the model's box, and the float32 array
# the model gets stays under 0.8 MB.
MAX_DECODED_SIDE = 448
# A number is a wide line of digits: the kiosk's number pad (reader.contract.NUMBER_PAD_WIDTH, which serve/
# does not import; a test holds them equal) is read unreduced, as the page reads it. The input stays under 2.9 MB.
MAX_NUMBER_DECODED_SIDE = 840
# Rows are decoded, composited and reduced in bands of about this many pixels (1 MB as RGBA).
BAND_PIXELS = 256 * 1024
# A large image that cannot be decoded in bands (GIF, BMP, WebP, interlaced or 16-bit colour PNG) is
# decoded whole if that holds at most this many bytes (2896x2896 palette pixels, 1024x1024 WebP), else
# refused (413): together with the rest of a request, this keeps it within 30 MB.
MAX_WHOLE_DECODE_BYTES = 8 * 1024 * 1024
# Large decodes at once per process; each may take up to about MAX_WHOLE_DECODE_BYTES while it runs.
DEFAULT_MAX_LARGE_DECODES = 2
# Width x height read from an image's header; more is refused before decoding (HTTP 413).
DEFAULT_MAX_IMAGE_PIXELS = 4096 * 4096
# Modes Pillow holds in 1 byte per pixel (colour takes 4, 16-bit grey 2).
ONE_BYTE_MODES = ("1", "L", "P")
# EXIF orientation -> the transpose that stands the picture upright (as ImageOps.exif_transpose does).
UPRIGHT = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
           5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
           8: Image.Transpose.ROTATE_90}
QUARTER_TURNS = (5, 6, 7, 8)  # the orientations that swap width and height
# The "pixels" input follows MNIST: 0 is background, PIXELS_INK is full ink.
PIXELS_INK = 255


class Decoded(NamedTuple):
    """A decoded image and how it maps back onto the image the client sent."""

    image: np.ndarray  # float32 [H, W] in [0, 1], ink = 1
    factor: int        # the sent image, stood upright, is this many times larger on each side
    width: int         # the sent image's size, upright (after its EXIF orientation)
    height: int

    @classmethod
    def full_size(cls, image):
        """An image the decode did not reduce."""
        return cls(image, 1, image.shape[1], image.shape[0])

    def original_box(self, box):
        """A box (x0, y0, x1, y1; x1, y1 exclusive) in the decoded image's pixels -> in the sent image's."""
        x0, y0, x1, y1 = (int(value) * self.factor for value in box)
        return [min(x0, self.width), min(y0, self.height), min(x1, self.width), min(y1, self.height)]


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
    """Open an image from its header, refusing it if it has too many pixels; nothing is decoded yet."""
    try:
        image = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise TooLargeError(f"image too large: {describe(error)}") from None
    except Exception as error:  # Pillow signals unreadable data with many exception types
        raise InputError(f"cannot decode image: {describe(error)}") from None
    width, height = image.size
    if width * height > max_pixels:
        raise TooLargeError(f"image too large: {width}x{height} pixels, the limit is {max_pixels}")
    return image


def load(image):
    """Decode the first frame of an opened image (an animated GIF/WebP's others are never read)."""
    try:
        image.load()
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


def reduced_grey(image, data, max_side=MAX_DECODED_SIDE):
    """A large image as upright 8-bit grey, box-reduced to at most max_side a side, decoded in bands.

    Returns the grey image, the whole factor it was reduced by (a JPEG's draft scale included) and the
    full-size image's upright (width, height).
    The result is what grey_image, Image.reduce and orient would give at full size, except that an
    opaque-bordered image with transparent holes is composited after reduction (the same up to rounding).
    """
    orientation = exif_orientation(image, data)
    upright_size = image.size[::-1] if orientation in QUARTER_TURNS else image.size
    draft_scale = 1
    if image.format == "PNG" and png_bands.is_bandable(data):
        factor = reduction_factor(image.size, max_side)
        bands = png_bands.png_bands(data, band_rows(image.width, factor))
    else:
        if image.format == "JPEG":
            # JPEG decodes at 1/2, 1/4 or 1/8 scale for free: a phone photo never needs full size.
            factor = reduction_factor(image.size, max_side)
            full_width = image.width
            draft = image.draft(image.mode, (math.ceil(image.width / factor), math.ceil(image.height / factor)))
            if draft is not None:  # (mode, (0, 0, full width / scale, full height / scale))
                draft_scale = round(full_width / draft[1][2])
        needed = whole_decode_bytes(image)
        if needed > MAX_WHOLE_DECODE_BYTES:
            raise TooLargeError(
                f"image too large to decode: a {image.width}x{image.height} {image.format} needs {needed / 2**20:.0f} MiB "
                f"at once; at most {MAX_WHOLE_DECODE_BYTES // 2**20} MiB (a PNG that is not interlaced has no such limit)")
        load(image)
        factor = reduction_factor(image.size, max_side)
        rows = band_rows(image.width, factor)
        bands = (image.crop((0, top, image.width, min(top + rows, image.height))) for top in range(0, image.height, rows))
    grey = Image.fromarray(reduce_bands(bands, factor), "L")
    grey = grey.transpose(UPRIGHT[orientation]) if orientation in UPRIGHT else grey
    return grey, draft_scale * factor, upright_size


def whole_decode_bytes(image):
    """Bytes a full-size decode of this image holds at once: Pillow's pixels, and libwebp's own copy of them."""
    bytes_per_pixel = 1 if image.mode in ONE_BYTE_MODES else 2 if image.mode.startswith("I;16") else 4
    copies = 2 if image.format == "WEBP" else 1
    return image.width * image.height * bytes_per_pixel * copies


def reduction_factor(size, max_side=MAX_DECODED_SIDE):
    """The integer factor that brings the longest side to at most max_side."""
    return max(1, math.ceil(max(size) / max_side))


def band_rows(width, factor):
    """Rows per band: a multiple of the reduction factor, so that no box straddles two bands."""
    return factor * max(1, BAND_PIXELS // (width * factor))


def exif_orientation(image, data):
    """The EXIF orientation, read without decoding pixels (a PNG's eXIf chunk may follow its image data)."""
    if image.format == "PNG":
        payload = png_bands.exif_payload(data)
        if payload is None:
            return 1
        exif = Image.Exif()
        exif.load(payload)
        return exif.get(EXIF_ORIENTATION, 1)
    if image.format in ("JPEG", "WEBP"):
        return image.getexif().get(EXIF_ORIENTATION, 1)
    return 1


def reduce_bands(bands, factor):
    """uint8 grey of the whole image, box-reduced by `factor` (as Image.reduce), from its bands of rows.

    With transparency, each band's grey, alpha and alpha-weighted grey are reduced, and the choice
    that composite() makes from the full-size border is applied to the reduced planes at the end.
    """
    greys, alphas, weighted = [], [], []
    alpha_edges, grey_edges, min_alpha = [], [], 255
    for band in bands:
        grey, alpha = grey_and_alpha(band)
        greys.append(np.asarray(grey.reduce(factor)))
        if alpha is not None:
            alphas.append(np.asarray(alpha.reduce(factor)))
            weighted.append(np.asarray(ImageChops.multiply(grey, alpha).reduce(factor)))
            alpha_edges.append(edges(np.asarray(alpha)))
            grey_edges.append(edges(np.asarray(grey)))
            min_alpha = min(min_alpha, alpha.getextrema()[0])
    if not alphas:
        return np.concatenate(greys)
    source = ink_source(min_alpha, join_edges(alpha_edges), join_edges(grey_edges))
    if source == "grey":
        return np.concatenate(greys)
    if source == "alpha":
        return np.concatenate(alphas)
    plane = np.concatenate(weighted) + source * (1 - np.concatenate(alphas) / np.float32(255))
    return np.clip(np.round(plane), 0, 255).astype(np.uint8)


def grey_and_alpha(band):
    """A band as grey_image reads it: 8-bit grey, and its alpha if it has transparency (else None)."""
    mode = band.mode
    if mode in SIXTEEN_BIT_MODES:
        return sixteen_bit_to_grey(band), None
    if mode in ALPHA_MODES or "transparency" in band.info:
        rgba = band.convert("RGBA")
        return rgba.convert("L"), rgba.getchannel("A")
    return (band if mode == "L" else band.convert("L")), None


def edges(values):
    """Copies of a band's first row, last row, first column and last column (views would keep the band alive)."""
    return values[0].copy(), values[-1].copy(), values[:, 0].copy(), values[:, -1].copy()


def join_edges(band_edges):
    """The whole image's border(), from its bands' edges."""
    first_row, last_row = band_edges[0][0], band_edges[-1][1]
    left = np.concatenate([edge[2] for edge in band_edges])[1:-1]
    right = np.concatenate([edge[3] for edge in band_edges])[1:-1]
    return np.concatenate([first_row, last_row, left, right])


def image_to_array(data, max_pixels):
    """Image bytes -> float32 [H, W] in [0, 1], ink = 1."""
    return decode_image(data, max_pixels).image


def decode_image(data, max_pixels, max_side=MAX_DECODED_SIDE):
    """Image bytes -> Decoded: the model's input, at most max_side a side, and the factor back to the sent image."""
    if not data:
        raise InputError("empty image")
    image = open_image(data, max_pixels)
    try:
        if max(image.size) <= max_side:
            return Decoded.full_size(to_ink(grey_image(orient(load(image)))))
        with _large_decodes:
            try:
                grey, factor, (width, height) = reduced_grey(image, data, max_side)
                return Decoded(to_ink(grey), factor, width, height)
            finally:
                release_memory()
    except (InputError, TooLargeError):
        raise
    except MemoryError:
        raise TooLargeError("image too large to decode") from None
    except Exception as error:  # a hostile file can upset Pillow after decoding too (EXIF, modes)
        raise InputError(f"cannot decode image: {describe(error)}") from None


_large_decodes = threading.BoundedSemaphore(DEFAULT_MAX_LARGE_DECODES)


def set_large_decode_limit(count):
    """How many large images this process decodes at once; more requests wait their turn."""
    global _large_decodes
    if count < 1:
        raise ValueError("MAX_LARGE_DECODES must be at least 1")
    _large_decodes = threading.BoundedSemaphore(count)


def _malloc_trim():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim
    except (OSError, AttributeError, TypeError):  # not glibc
        return None


_trim = _malloc_trim()


def release_memory():
    """Hand freed heap back to the system after a large decode (glibc keeps it for reuse otherwise)."""
    if _trim is not None:
        _trim(0)


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


def pixels_to_array(pixels, side=None, max_side=MAX_DECODED_SIDE):
    """MNIST-convention rows (0 background .. PIXELS_INK ink) -> float32 [H, W] in [0, 1].

    With `side`, exactly side x side; without, any rectangle of 1 to max_side pixels a side.
    """
    if side is None:
        shape_error = (f"pixels must be a list of 1 to {max_side} rows, each of the same number "
                       f"(1 to {max_side}) of numbers 0..{PIXELS_INK}")
        fits = lambda rows: 1 <= len(rows) <= max_side
    else:
        shape_error = f"pixels must be a list of {side} rows of {side} numbers 0..{PIXELS_INK}"
        fits = lambda rows: len(rows) == side
    if not isinstance(pixels, list) or not fits(pixels):
        raise InputError(shape_error)
    width = len(pixels[0]) if isinstance(pixels[0], list) else None
    for row in pixels:
        if not isinstance(row, list) or len(row) != width or not fits(row):
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


def check_ink(image, ink_threshold, where="", wanted="a digit"):
    """Refuse a blank image: the model would otherwise invent a digit from nothing."""
    if image.size == 0 or float(image.max()) <= ink_threshold:
        raise NoInkError(f"{where}no ink: the image is blank, draw {wanted}")
