"""Hostile input: hypothesis throws random and mutated bodies at /predict; every answer is a 4xx JSON error
or a well-formed 200, never a 5xx or a hang. FUZZ_EXAMPLES=N runs N examples per test (default 60)."""

import base64
import json
import os
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from tests.server_fixtures import encode, post, request

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "60"))
FUZZ_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
CONTENT_TYPES = [
    "image/png", "image/jpeg", "image/webp", "image/bmp", "image/gif", "application/json",
    "multipart/form-data; boundary=fuzz", "multipart/form-data", "text/plain", "application/octet-stream",
    "image/tiff", "image/png; charset=binary", "", "application/json; charset=utf-16",
]
ERROR_STATUSES = {400, 413, 415, 422}


def drawn_seven(mode, side=64):
    """A small synthetic '7' in the given mode, ink light on dark."""
    image = Image.new("L", (side, side), 0)
    ImageDraw.Draw(image).line([(12, 12), (52, 12), (28, 56)], fill=255, width=6)
    if mode == "RGBA":
        rgba = Image.new("RGBA", image.size, (0, 0, 0, 0))
        rgba.putalpha(image)
        return rgba
    return image.convert(mode)


def animated_gif(frames):
    images = [drawn_seven("P")] + [Image.new("P", (64, 64), index % 7) for index in range(frames - 1)]
    return encode(images[0], "GIF", save_all=True, append_images=images[1:], duration=10)


def exif_jpeg():
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(drawn_seven("RGB"), "JPEG", exif=exif.tobytes())


SEEDS = {
    "png grey": encode(drawn_seven("L"), "PNG"),
    "png rgba": encode(drawn_seven("RGBA"), "PNG"),
    "png palette": encode(drawn_seven("P"), "PNG", transparency=0),
    "png interlaced": encode(drawn_seven("RGB"), "PNG", interlace=1),
    "png 16-bit": encode(Image.fromarray(np.asarray(drawn_seven("L"), dtype=np.uint16) * 257), "PNG"),
    "jpeg": encode(drawn_seven("RGB"), "JPEG", quality=80),
    "jpeg progressive": encode(drawn_seven("L"), "JPEG", progressive=True),
    "jpeg exif": exif_jpeg(),
    "gif": encode(drawn_seven("P"), "GIF"),
    "gif animated": animated_gif(5),
    "webp lossy": encode(drawn_seven("RGB"), "WEBP", quality=60),
    "webp lossless": encode(drawn_seven("RGBA"), "WEBP", lossless=True),
    "bmp": encode(drawn_seven("RGB"), "BMP"),
    "bmp palette": encode(drawn_seven("P"), "BMP"),
}


@st.composite
def mutated_files(draw):
    """A valid image file with a few bytes flipped, inserted, deleted, or the tail cut off."""
    data = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(0, 6))):
        if not data:
            break
        position = draw(st.integers(0, len(data) - 1))
        operation = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        if operation == "flip":
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif operation == "set":
            data[position] = draw(st.sampled_from([0, 1, 0x7F, 0x80, 0xFF]))
        elif operation == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=16))
        elif operation == "delete":
            del data[position:position + draw(st.integers(1, 16))]
        else:
            del data[position:]
    return bytes(data)


seed_files = st.sampled_from(sorted(SEEDS)).map(SEEDS.get)
image_bodies = st.one_of(mutated_files(), st.binary(max_size=2048), seed_files)


def b64(data):
    return base64.b64encode(data).decode()


json_leaves = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
)
json_values = st.recursive(json_leaves, lambda children: st.lists(children, max_size=6)
                           | st.dictionaries(st.text(max_size=8), children, max_size=4), max_leaves=30)
pixel_values = st.one_of(st.integers(0, 255), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
                         st.booleans(), st.none(), st.text(max_size=3), st.just([]))


@st.composite
def pixel_grids(draw):
    """28x28 grids (from the manifest's canvas size) with a few cells, rows or sizes broken."""
    side = json.loads(open("artifacts/manifest.json").read())["normalization"]["canvas_size"]
    grid = [[draw(st.integers(0, 255)) if (row + column) % 7 == 0 else 0 for column in range(side)] for row in range(side)]
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["cell", "drop row", "add row", "short row", "row type"]))
        row = draw(st.integers(0, len(grid) - 1)) if grid else 0
        if kind == "cell" and grid and isinstance(grid[row], list) and grid[row]:
            grid[row][draw(st.integers(0, len(grid[row]) - 1))] = draw(pixel_values)
        elif kind == "drop row" and grid:
            del grid[row]
        elif kind == "add row":
            grid.append([0] * side)
        elif kind == "short row" and grid and isinstance(grid[row], list):
            grid[row] = grid[row][:-1]
        elif grid:
            grid[row] = draw(json_leaves)
    return grid


image_strings = st.one_of(
    image_bodies.map(b64),
    image_bodies.map(lambda data: "data:image/png;base64," + b64(data)),
    st.text(max_size=50),
    st.sampled_from(["data:", "data:image/png;base64,", "data:,abc", "====", "A", " \n\t"]),
)
json_documents = st.one_of(
    json_values,
    st.fixed_dictionaries({"image": st.one_of(image_strings, json_values)}),
    st.fixed_dictionaries({"pixels": st.one_of(pixel_grids(), json_values)}),
    st.fixed_dictionaries({"images": st.one_of(st.lists(image_strings, max_size=5), json_values)}),
    st.fixed_dictionaries({"image": image_strings, "pixels": pixel_grids()}),
    st.dictionaries(st.sampled_from(["image", "pixels", "images", "extra"]), json_values, max_size=4),
)


def serialise(document):
    return json.dumps(document, allow_nan=True).encode()


@st.composite
def multipart_bodies(draw):
    boundary = draw(st.sampled_from(["fuzz", "x" * 70, "a b", "--", "ßoundary"]))
    declared = draw(st.sampled_from([boundary, boundary, "other", ""]))
    body = b""
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from(["image", "image", "images", "", "IMAGE", 'image"; x="y']))
        filename = draw(st.sampled_from([None, "a.png", "", "../../etc/passwd", "\x00.png"]))
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode("utf-8", "replace")
        body += draw(image_bodies) + b"\r\n"
    if draw(st.booleans()):
        body += f"--{boundary}--\r\n".encode("utf-8", "replace")
    if draw(st.booleans()):
        body = body[: draw(st.integers(0, len(body)))]
    content_type = "multipart/form-data" + (f"; boundary={declared}" if declared else "")
    return content_type, body


def check_answer(answer):
    """A well-formed 200 prediction, or a JSON 4xx error; and always the security headers."""
    assert answer.status < 500, answer.body[:300]
    assert answer.headers["Content-Type"] == "application/json", answer.status
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    document = answer.json()
    if answer.status == 200:
        for prediction in document.get("predictions", [document]):
            assert set(prediction) == {"digit", "confidence", "probabilities", "verdict", "not_digit", "model"}
            assert 0 <= prediction["digit"] <= 9 and len(prediction["probabilities"]) == 10
            assert abs(sum(prediction["probabilities"]) - 1) < 1e-3
    else:
        assert answer.status in ERROR_STATUSES, answer.status
        assert set(document) == {"error"} and isinstance(document["error"], str)


@FUZZ_SETTINGS
@given(content_type=st.sampled_from(CONTENT_TYPES), body=st.one_of(image_bodies, st.binary(max_size=4096)))
def test_random_and_mutated_bytes_under_every_content_type(live_server, content_type, body):
    check_answer(post(live_server, body, content_type))


@FUZZ_SETTINGS
@given(document=json_documents)
def test_random_json_documents(live_server, document):
    check_answer(post(live_server, serialise(document), "application/json"))


@FUZZ_SETTINGS
@given(form=multipart_bodies())
def test_random_multipart_forms(live_server, form):
    content_type, body = form
    check_answer(post(live_server, body, content_type))


@FUZZ_SETTINGS
@given(path=st.text(alphabet=st.sampled_from("/.%2e5cfA\\:~?#"), max_size=24),
       method=st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"]))
def test_random_paths_and_methods(live_server, path, method):
    answer = request(live_server, method, "/" + path.lstrip("/"), b"" if method in ("POST", "PUT", "PATCH") else None)
    assert answer.status < 500
    assert answer.headers["X-Content-Type-Options"] == "nosniff"


def one_colour_png(width, height):
    """A PNG of width x height black pixels, built row by row so the test never holds it decoded."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor = zlib.compressobj(9)
    row = b"\0" * (width + 1)  # filter byte + one grey byte per pixel
    compressed = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", compressed) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def decompression_bomb():
    return one_colour_png(30_000, 30_000)


def test_decompression_bomb_is_refused_from_its_header(live_server, decompression_bomb):
    assert len(decompression_bomb) < 2 * 1024 * 1024  # 900 megapixels in a few hundred KB
    for content_type in ("image/png", "image/gif", "image/jpeg"):  # declared type does not matter
        answer = post(live_server, decompression_bomb, content_type)
        assert answer.status == 413 and "too large" in answer.json()["error"]
    answer = post(live_server, serialise({"image": b64(decompression_bomb)}), "application/json")
    assert answer.status == 413


def test_gif_with_thousands_of_frames_reads_only_the_first(live_server):
    body = animated_gif(3000)
    answer = post(live_server, body, "image/gif")
    assert answer.status == 200 and answer.json()["digit"] == 7


def test_every_seed_file_is_read_as_a_seven(live_server):
    for name, body in SEEDS.items():
        answer = post(live_server, body, "image/png")
        check_answer(answer)
        if name != "jpeg exif":  # that one is stored turned a quarter, so it is not an upright 7
            assert answer.json()["digit"] == 7, name


def test_the_server_still_answers_after_the_fuzzing(live_server):
    answer = post(live_server, SEEDS["png grey"], "image/png")
    assert answer.status == 200 and answer.json()["digit"] == 7
