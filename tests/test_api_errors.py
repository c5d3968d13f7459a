"""Bad input is a table: each case gets its 4xx status and a JSON error, and the next good request succeeds."""

import base64
import json

import pytest
from PIL import Image

from tests.server_fixtures import encode, enlarge, post, request

PNG_HEADER = b"\x89PNG\r\n\x1a\n"


def png_of(side, colour=0):
    return encode(Image.new("L", (side, side), colour), "PNG")


def b64(data):
    return base64.b64encode(data).decode()


def json_body(document):
    return json.dumps(document).encode()


def multipart(*parts, boundary="b0undary"):
    """(content type, body) of a form with parts (field name, filename or None, bytes)."""
    body = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data + b"\r\n"
    return f"multipart/form-data; boundary={boundary}", body + f"--{boundary}--\r\n".encode()


def side():
    return json.loads(open("artifacts/manifest.json").read())["normalization"]["canvas_size"]


# (id, method, content type, body, expected status, words expected in the error)
BAD_INPUTS = [
    ("empty png body", "POST", "image/png", b"", 400, "empty"),
    ("random bytes as png", "POST", "image/png", b"not an image at all", 400, "cannot decode"),
    ("png header only", "POST", "image/png", PNG_HEADER, 400, "cannot decode"),
    ("truncated png", "POST", "image/png", png_of(100, 255)[:60], 400, "cannot decode"),
    ("jpeg bytes that are text", "POST", "image/jpeg", b"\xff\xd8\xff garbage", 400, "cannot decode"),
    ("tiff is not accepted", "POST", "image/png", encode(Image.new("L", (8, 8)), "TIFF"), 400, "cannot decode"),
    ("text/plain", "POST", "text/plain", b"hello", 415, "unsupported content-type"),
    ("no content type", "POST", None, b"\x89PNG", 415, "unsupported content-type"),
    ("image/svg+xml", "POST", "image/svg+xml", b"<svg/>", 415, "unsupported content-type"),
    ("form-urlencoded", "POST", "application/x-www-form-urlencoded", b"image=abc", 415, "unsupported"),
    ("gzip content-encoding", "POST", "image/png", b"\x1f\x8b", 415, "content-encoding"),
    ("malformed json", "POST", "application/json", b'{"image": ', 400, "malformed json"),
    ("json not utf-8", "POST", "application/json", b'{"image": "\xff\xfe"}', 400, "malformed json"),
    ("json array", "POST", "application/json", b"[1, 2]", 400, "must be an object"),
    ("json string", "POST", "application/json", b'"abc"', 400, "must be an object"),
    ("json empty object", "POST", "application/json", b"{}", 400, "exactly one of"),
    ("json unknown key", "POST", "application/json", b'{"picture": "abc"}', 400, "exactly one of"),
    ("image and pixels", "POST", "application/json", json_body({"image": "", "pixels": []}), 400, "exactly one"),
    ("image is a number", "POST", "application/json", b'{"image": 5}', 400, "base64 string"),
    ("image is null", "POST", "application/json", b'{"image": null}', 400, "base64 string"),
    ("image not base64", "POST", "application/json", b'{"image": "%%%not base64%%%"}', 400, "invalid base64"),
    ("data url not base64", "POST", "application/json", b'{"image": "data:image/png,abc"}', 400, "base64"),
    ("base64 of garbage", "POST", "application/json", json_body({"image": b64(b"garbage")}), 400, "cannot decode"),
    ("pixels not a list", "POST", "application/json", b'{"pixels": "abc"}', 400, "rows"),
    ("pixels wrong rows", "POST", "application/json", json_body({"pixels": [[0] * 28] * 27}), 400, "rows"),
    ("pixels ragged", "POST", "application/json", json_body({"pixels": [[0] * 28] * 27 + [[0] * 27]}), 400, "rows"),
    ("pixels flat", "POST", "application/json", json_body({"pixels": [0] * 784}), 400, "rows"),
    ("pixels 3d", "POST", "application/json", json_body({"pixels": [[[0]] * 28] * 28}), 400, "numbers"),
    ("pixels strings", "POST", "application/json", json_body({"pixels": [["1"] * 28] * 28}), 400, "numbers"),
    ("pixels booleans", "POST", "application/json", json_body({"pixels": [[True] * 28] * 28}), 400, "numbers"),
    ("pixels null", "POST", "application/json", json_body({"pixels": [[None] * 28] * 28}), 400, "numbers"),
    ("pixels negative", "POST", "application/json", json_body({"pixels": [[-1] * 28] * 28}), 400, "0 to 255"),
    ("pixels over 255", "POST", "application/json", json_body({"pixels": [[256] * 28] * 28}), 400, "0 to 255"),
    ("pixels NaN", "POST", "application/json", b'{"pixels": [[NaN]]}', 400, "nan"),
    ("pixels Infinity", "POST", "application/json", b'{"pixels": [[-Infinity]]}', 400, "infinity"),
    ("pixels 1e400", "POST", "application/json",
     b'{"pixels": [' + b",".join([b"[" + b",".join([b"1e400"] * 28) + b"]"] * 28) + b"]}", 400, "0 to 255"),
    ("pixels huge int", "POST", "application/json",
     b'{"pixels": [' + b",".join([b"[" + b",".join([b"9" * 400] * 28) + b"]"] * 28) + b"]}", 400, "0 to 255"),
    ("int too long to parse", "POST", "application/json", b'{"pixels": [[' + b"9" * 5000 + b"]]}", 400, "malformed"),
    ("deep nesting", "POST", "application/json", b'{"pixels": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", 400, "nested"),
    ("images not a list", "POST", "application/json", b'{"images": "abc"}', 400, "non-empty array"),
    ("images empty", "POST", "application/json", b'{"images": []}', 400, "non-empty array"),
    ("images item not a string", "POST", "application/json", b'{"images": [1]}', 400, "images[0]"),
    ("images item garbage", "POST", "application/json", json_body({"images": [b64(b"xx")]}), 400, "images[0]"),
    ("batch over the cap", "POST", "application/json", json_body({"images": [b64(png_of(4))] * 33}), 413, "limit"),
    ("multipart missing field", "POST", *multipart(("other", "a.png", png_of(8))), 400, "named 'image'"),
    ("multipart field not a file", "POST", *multipart(("image", None, png_of(8))), 400, "named 'image'"),
    ("multipart duplicate field", "POST", *multipart(("image", "a.png", png_of(8)), ("image", "b.png", png_of(8))),
     400, "found 2"),
    ("multipart too many parts", "POST", *multipart(*[(f"field{index}", None, b"x") for index in range(20)]), 413,
     "multipart form too large"),
    ("multipart no boundary", "POST", "multipart/form-data", b"--x\r\n\r\n", 400, "named 'image'"),
    ("multipart garbage", "POST", "multipart/form-data; boundary=zz", b"\x00" * 500, 400, "named 'image'"),
    ("body over the limit", "POST", "image/png", PNG_HEADER + b"\x00" * (5 * 1024 * 1024), 413, "too large"),
    ("too many pixels (bomb)", "POST", "image/png", png_of(5000), 413, "too large"),
    ("GET /predict", "GET", None, None, 405, "method is not allowed"),
    ("PUT /predict", "PUT", "image/png", png_of(8), 405, "method is not allowed"),
    ("DELETE /predict", "DELETE", None, None, 405, "method is not allowed"),
]


@pytest.mark.parametrize(
    "method, content_type, body, status, words", [case[1:] for case in BAD_INPUTS], ids=[case[0] for case in BAD_INPUTS]
)
def test_bad_input_is_a_json_error_and_the_server_stays_up(
    live_server, confident_digits, method, content_type, body, status, words
):
    headers = {"Content-Type": content_type} if content_type else {}
    if "content-encoding" in words:
        headers["Content-Encoding"] = "gzip"
    answer = request(live_server, method, "/predict", body, headers)
    assert answer.status == status, answer.body[:300]
    assert answer.headers["Content-Type"] == "application/json"
    error = answer.json()["error"]
    assert isinstance(error, str) and words.lower() in error.lower(), error
    assert "Traceback" not in error
    if status == 405:
        assert "POST" in answer.headers["Allow"]

    label, digit = confident_digits[0]
    good = post(live_server, encode(enlarge(digit), "PNG"), "image/png")
    assert good.status == 200 and good.json()["digit"] == label


def test_pixels_table_uses_the_manifest_canvas(manifest):
    assert side() == manifest["normalization"]["canvas_size"] == 28  # the literal rows in BAD_INPUTS


def test_limits_are_configurable(start_server, confident_digits):
    base_url = start_server(MAX_CONTENT_LENGTH=2000, MAX_IMAGE_PIXELS=100 * 100, MAX_BATCH=2)
    label, digit = confident_digits[0]
    small = encode(enlarge(digit, side=90), "PNG")
    assert len(small) < 2000
    assert post(base_url, small, "image/png").json()["digit"] == label
    assert post(base_url, encode(enlarge(digit, side=280), "PNG"), "image/png").status == 413
    assert post(base_url, png_of(101), "image/png").status == 413
    three = json_body({"images": [b64(png_of(4))] * 3})
    assert post(base_url, three, "application/json").status == 413
