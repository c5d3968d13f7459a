"""Large images are decoded in bands and reduced as they go: same answers, bounded work (serve/decode.py)."""

import io
import math

import numpy as np
import pytest
from PIL import Image, ImageOps

from serve import png_bands
from serve.decode import MAX_DECODED_SIDE, MAX_WHOLE_DECODE_BYTES, TooLargeError, image_to_array
from serve.model import Model
from tests.conftest import ARTIFACTS_DIR
from tests.server_fixtures import encode, enlarge, post

LIMIT = 4096 * 4096
CANVAS = 280  # the kiosk pad
# GIF, BMP and WebP are decoded whole: the largest accepted is at the whole-decode budget, which
# palette pixels take 1 byte of and WebP 8 (RGBA, held by libwebp and by Pillow).
WHOLE_SIDE = math.isqrt(MAX_WHOLE_DECODE_BYTES)
WEBP_SIDE = math.isqrt(MAX_WHOLE_DECODE_BYTES // 8)


@pytest.fixture(scope="module")
def seven(confident_digits):
    return dict(confident_digits)[7]


@pytest.fixture(scope="module")
def model():
    return Model(ARTIFACTS_DIR)


def transparent_canvas(coverage, ink=(30, 60, 200)):
    """A canvas export: ink in the alpha channel, black under the transparent background."""
    canvas = Image.new("RGBA", coverage.size, (0, 0, 0, 0))
    canvas.paste(Image.new("RGBA", coverage.size, (*ink, 255)), mask=coverage)
    canvas.putalpha(coverage)
    return canvas


def palette_with_transparency(coverage):
    image = ImageOps.invert(coverage).convert("P")
    image.info["transparency"] = 255
    return image


def sixteen_bit(coverage):
    return Image.fromarray(np.asarray(coverage, dtype=np.uint16) * 257)


# The same drawing in every PNG layout the band decoder meets.
DRAWINGS = {
    "white on black": lambda coverage: coverage,
    "black on white": ImageOps.invert,
    "transparent canvas": transparent_canvas,
    "opaque RGBA": lambda coverage: ImageOps.invert(coverage).convert("RGBA"),
    "RGB": lambda coverage: ImageOps.invert(coverage).convert("RGB"),
    "grey + alpha": lambda coverage: transparent_canvas(coverage).convert("LA"),
    "palette + transparency": palette_with_transparency,
    "1-bit": lambda coverage: coverage.convert("1", dither=Image.Dither.NONE),
    "16-bit grey": sixteen_bit,
}


@pytest.mark.parametrize("drawing", DRAWINGS)
def test_png_bands_are_the_whole_decode(drawing, seven):
    image = DRAWINGS[drawing](enlarge(seven, side=301))
    data = encode(image, "PNG")
    whole = Image.open(io.BytesIO(data))
    bands = list(png_bands.png_bands(data, 37))
    assert [band.height for band in bands] == [37] * 8 + [5]
    assert {band.mode for band in bands} == {whole.mode}
    assert np.array_equal(np.concatenate([np.asarray(band) for band in bands]), np.asarray(whole))
    assert bands[0].info.get("transparency") == whole.info.get("transparency")


@pytest.mark.parametrize("drawing", ["white on black", "transparent canvas"])
def test_a_pad_drawing_reaches_the_model_untouched(drawing, seven, model, live_server):
    """A 280x280 drawing is never reduced: the model gets its ink / 255, and the server answers exactly that."""
    coverage = enlarge(seven, side=CANVAS)
    body = encode(DRAWINGS[drawing](coverage), "PNG")
    expected = np.asarray(coverage, dtype=np.float32) * np.float32(1 / 255)
    assert np.array_equal(image_to_array(body, LIMIT), expected)
    answer = post(live_server, body, "image/png").json()
    assert answer["probabilities"] == model.probabilities(expected).tolist()


@pytest.mark.parametrize("drawing", DRAWINGS)
def test_a_doubled_pad_drawing_decodes_exactly_as_the_pad_drawing(drawing, seven):
    """Twice the pad's size is over MAX_DECODED_SIDE: decoded in bands and halved, it is the pad drawing again."""
    coverage = enlarge(seven, side=CANVAS)
    assert CANVAS <= MAX_DECODED_SIDE < 2 * CANVAS
    doubled = DRAWINGS[drawing](coverage.resize((2 * CANVAS, 2 * CANVAS), Image.Resampling.NEAREST))
    small = image_to_array(encode(DRAWINGS[drawing](coverage), "PNG"), LIMIT)
    assert np.array_equal(image_to_array(encode(doubled, "PNG"), LIMIT), small)


@pytest.mark.parametrize("drawing, image_format, side, label", [
    ("transparent canvas", "PNG", 4096, 7), ("black on white", "PNG", 4096, 2), ("16-bit grey", "PNG", 4096, 0),
    ("black on white", "JPEG", 4096, 4), ("palette + transparency", "GIF", WHOLE_SIDE, 3), ("1-bit", "BMP", WHOLE_SIDE, 5),
])
def test_a_huge_canvas_reads_the_same_digit_as_the_pad(drawing, image_format, side, label, confident_digits, model):
    digit = dict(confident_digits)[label]
    pad = model.predict(image_to_array(encode(DRAWINGS[drawing](enlarge(digit)), "PNG"), LIMIT))
    options = {"compress_level": 1} if image_format == "PNG" else {}
    array = image_to_array(encode(DRAWINGS[drawing](enlarge(digit, side=side)), image_format, **options), LIMIT)
    assert max(array.shape) <= MAX_DECODED_SIDE
    answer = model.predict(array)
    assert answer["digit"] == pad["digit"] == label
    assert answer["confidence"] == pytest.approx(pad["confidence"], abs=0.02)


def test_exif_orientation_of_a_large_png_is_applied_even_after_the_image_data(seven):
    upright = ImageOps.invert(enlarge(seven, side=2 * MAX_DECODED_SIDE))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned a quarter; viewers rotate it back clockwise
    stored = encode(upright.transpose(Image.Transpose.ROTATE_90), "PNG", exif=exif.tobytes())
    chunks = list(png_bands.read_chunks(stored))
    moved = [chunk for chunk in chunks if chunk[0] != b"eXIf"]
    moved.insert(-1, next(chunk for chunk in chunks if chunk[0] == b"eXIf"))  # just before IEND
    late_exif = png_bands.SIGNATURE + b"".join(png_bands.chunk(kind, bytes(payload)) for kind, payload in moved)
    expected = image_to_array(encode(upright, "PNG"), LIMIT)
    assert np.array_equal(image_to_array(stored, LIMIT), expected)
    assert np.array_equal(image_to_array(late_exif, LIMIT), expected)


@pytest.mark.parametrize("image_format, mode, accepted_side, drawing", [
    ("WEBP", "RGBA", WEBP_SIDE, "transparent canvas"), ("GIF", "P", WHOLE_SIDE, "palette + transparency"),
])
def test_a_huge_image_that_must_be_decoded_whole_is_refused(image_format, mode, accepted_side, drawing, seven, live_server):
    """Without band decoding a 4096x4096 image would be 16-128 MB at once: a 413, not a risk; smaller ones are read."""
    options = {"method": 0} if image_format == "WEBP" else {}  # the fastest WebP encoder
    huge = encode(Image.new(mode, (4096, 4096)), image_format, **options)  # refused before its pixels are decoded
    with pytest.raises(TooLargeError, match="too large to decode"):
        image_to_array(huge, LIMIT)
    content_type = f"image/{image_format.lower()}"
    answer = post(live_server, huge, content_type)
    assert answer.status == 413 and "too large to decode" in answer.json()["error"]
    accepted = encode(DRAWINGS[drawing](enlarge(seven, side=accepted_side)), image_format, **options)
    assert post(live_server, accepted, content_type).json()["digit"] == 7


def test_a_broken_large_png_is_a_400(seven, live_server):
    data = encode(enlarge(seven, side=1000), "PNG")
    answer = post(live_server, data[: len(data) // 2], "image/png")
    assert answer.status == 400 and "cannot decode image" in answer.json()["error"]
