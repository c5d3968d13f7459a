"""POST /number and `serve.predict --number` against the committed number reader, over real HTTP."""

import base64
import json
import math
import re
import shutil

import numpy as np
import onnxruntime
import pytest
from PIL import Image

from serve.app import create_app
from reader.contract import NUMBER_PAD_HEIGHT, NUMBER_PAD_WIDTH
from serve.decode import MAX_DECODED_SIDE, MAX_NUMBER_DECODED_SIDE, decode_image
from serve.model import ModelError
from tests.conftest import ARTIFACTS_DIR
from tests.server_fixtures import encode, enlarge, post, post_json, request
from tests.test_api_errors import BAD_INPUTS
from tests.test_serve import run_python

NUMBER_FIELDS = {"number", "digits", "confidence", "verdict", "not_number", "model"}
DIGIT_FIELDS = {"digit", "confidence", "probabilities", "doubtful", "box"}
# MNIST digits are 28 pixels with their ink in the middle 20: side by side, neighbours stay 8 * SCALE apart.
SCALE = 6
MARGIN = 40


@pytest.fixture(scope="session")
def numbers(manifest):
    return manifest["numbers"]


def compose(confident_digits, number, scale=SCALE):
    """(a pad-like PIL image of `number` in real MNIST test digits, white on black; each digit's ink box in it)."""
    digits = dict(confident_digits)
    cell = 28 * scale
    image = Image.new("L", (2 * MARGIN + cell * len(number), 2 * MARGIN + cell), 0)
    boxes = []
    for index, character in enumerate(number):
        digit = Image.fromarray(digits[int(character)], "L").resize((cell, cell), Image.Resampling.BILINEAR)
        left = MARGIN + index * cell
        image.paste(digit, (left, MARGIN))
        x0, y0, x1, y1 = digit.point(lambda value: 255 if value > 25 else 0).getbbox()
        boxes.append((left + x0, MARGIN + y0, left + x1, MARGIN + y1))
    return image, boxes


def post_number(base_url, body, content_type):
    return post(base_url, body, content_type, path="/number")


def png_of(image):
    return encode(image, "PNG")


def b64(data):
    return base64.b64encode(data).decode()


def assert_number_shape(answer, numbers):
    """The documented fields, each of its documented type and range."""
    assert set(answer) == NUMBER_FIELDS
    assert answer["model"] == numbers["model_id"]
    assert answer["verdict"] in numbers["outputs"]["verdict"]["values"]
    assert 0 <= answer["not_number"] <= 1 and 0 <= answer["confidence"] <= 1
    assert answer["number"] == "".join(str(digit["digit"]) for digit in answer["digits"])
    # A guessed digit is never announced as a sure number.
    assert answer["verdict"] != "number" or not any(digit["doubtful"] for digit in answer["digits"])
    for digit in answer["digits"]:
        assert set(digit) == DIGIT_FIELDS and 0 <= digit["digit"] <= 9
        assert len(digit["probabilities"]) == 10 and sum(digit["probabilities"]) == pytest.approx(1, abs=1e-3)
        assert 0 <= digit["confidence"] <= 1 and isinstance(digit["doubtful"], bool)
        x0, y0, x1, y1 = digit["box"]
        assert all(isinstance(value, int) for value in digit["box"]) and x0 < x1 and y0 < y1


def assert_boxes_on_the_digits(answer, boxes, tolerance):
    """Each digit's box covers the middle of the digit drawn there, and its edges are within `tolerance` of the ink's."""
    assert len(answer["digits"]) == len(boxes)
    for digit, (x0, y0, x1, y1) in zip(answer["digits"], boxes):
        left, top, right, bottom = digit["box"]
        assert left <= (x0 + x1) / 2 <= right and top <= (y0 + y1) / 2 <= bottom, (digit["box"], (x0, y0, x1, y1))
        assert max(abs(left - x0), abs(top - y0), abs(right - x1), abs(bottom - y1)) <= tolerance, (digit["box"], (x0, y0, x1, y1))


@pytest.mark.parametrize("number", ["7890", "7", "31", "904", "58"])
def test_a_clear_number_is_read_with_each_digit_in_its_box(live_server, numbers, confident_digits, number):
    image, boxes = compose(confident_digits, number)
    answer = post_number(live_server, png_of(image), "image/png")
    assert answer.status == 200, answer.body
    assert answer.headers["Content-Type"] == "application/json"
    result = answer.json()
    assert_number_shape(result, numbers)
    assert result["number"] == number and result["verdict"] == "number", result
    assert_boxes_on_the_digits(result, boxes, tolerance=2 * SCALE)


@pytest.mark.parametrize("image_format, content_type", [("PNG", "image/png"), ("JPEG", "image/jpeg")])
def test_boxes_of_a_large_image_are_in_its_own_pixels(live_server, numbers, confident_digits, image_format, content_type):
    enlarge = 3
    image, boxes = compose(confident_digits, "7890", scale=SCALE * enlarge)
    assert max(image.size) > MAX_NUMBER_DECODED_SIDE * 2  # decoded at a fraction of its size
    options = {"quality": 95} if image_format == "JPEG" else {}
    answer = post_number(live_server, encode(image, image_format, **options), content_type)
    assert answer.status == 200, answer.body
    result = answer.json()
    assert_number_shape(result, numbers)
    assert result["number"] == "7890", result
    factor = decode_image(encode(image, image_format, **options), image.width * image.height, MAX_NUMBER_DECODED_SIDE).factor
    assert factor >= 3
    assert_boxes_on_the_digits(result, boxes, tolerance=2 * SCALE * enlarge + factor)
    for digit in result["digits"]:
        x0, y0, x1, y1 = digit["box"]
        assert x1 <= image.width and y1 <= image.height


@pytest.mark.parametrize("max_side", [MAX_DECODED_SIDE, MAX_NUMBER_DECODED_SIDE])
@pytest.mark.parametrize("image_format", ["PNG", "JPEG", "GIF", "BMP"])
def test_decode_reports_how_it_reduced_each_format(confident_digits, image_format, max_side):
    image, _ = compose(confident_digits, "7890", scale=SCALE * 3)
    decoded = decode_image(encode(image, image_format), image.width * image.height, max_side)
    assert (decoded.width, decoded.height) == image.size and decoded.factor > 1
    assert decoded.image.shape == (math.ceil(image.height / decoded.factor), math.ceil(image.width / decoded.factor))
    assert max(decoded.image.shape) <= max_side
    assert decoded.original_box([0, 0, decoded.image.shape[1], decoded.image.shape[0]]) == [0, 0, *image.size]


def test_the_number_pad_is_read_unreduced(confident_digits):
    image = Image.new("L", (NUMBER_PAD_WIDTH, NUMBER_PAD_HEIGHT), 0)
    image.paste(compose(confident_digits, "7890", scale=3)[0], (20, 20))
    decoded = decode_image(encode(image, "PNG"), image.width * image.height, MAX_NUMBER_DECODED_SIDE)
    assert decoded.factor == 1 and np.array_equal(decoded.image, np.asarray(image, np.float32) * np.float32(1 / 255))


def test_a_quarter_turned_photo_reports_its_upright_size(confident_digits):
    image, _ = compose(confident_digits, "7890", scale=SCALE * 3)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored on its side: turn 90 degrees clockwise to stand it up
    stored = image.transpose(Image.Transpose.ROTATE_90)
    decoded = decode_image(encode(stored, "JPEG", exif=exif.tobytes()), image.width * image.height)
    assert (decoded.width, decoded.height) == image.size
    assert decoded.image.shape[1] > decoded.image.shape[0]


@pytest.mark.parametrize("scale", [SCALE, 3 * SCALE])
def test_the_answer_is_the_graphs_own(live_server, numbers, confident_digits, scale):
    image, _ = compose(confident_digits, "7890", scale)
    png = png_of(image)
    session = onnxruntime.InferenceSession(str(ARTIFACTS_DIR / numbers["variants"][numbers["default_variant"]]["file"]),
                                           providers=["CPUExecutionProvider"])
    keys = ["digits", "probabilities", "confidences", "boxes", "confidence", "not_number", "verdict"]
    decoded = decode_image(png, image.width * image.height, MAX_NUMBER_DECODED_SIDE)
    outputs = dict(zip(keys, session.run([numbers["outputs"][key]["name"] for key in keys],
                                         {numbers["input"]["name"]: decoded.image})))
    result = post_number(live_server, png, "image/png").json()
    assert decoded.factor == (1 if scale == SCALE else 3)
    assert [digit["digit"] for digit in result["digits"]] == outputs["digits"].tolist()
    np.testing.assert_allclose([digit["probabilities"] for digit in result["digits"]], outputs["probabilities"], atol=1e-6)
    np.testing.assert_allclose([digit["confidence"] for digit in result["digits"]], outputs["confidences"], atol=1e-6)
    assert [digit["box"] for digit in result["digits"]] == [[int(value) * decoded.factor for value in box] for box in outputs["boxes"]]
    assert result["confidence"] == pytest.approx(float(outputs["confidence"][0]), abs=1e-6)
    assert result["not_number"] == pytest.approx(float(outputs["not_number"][0]), abs=1e-6)
    assert result["verdict"] == numbers["outputs"]["verdict"]["values"][int(outputs["verdict"][0])]


def test_every_input_form_gives_the_same_answer(live_server, confident_digits):
    image, _ = compose(confident_digits, "31")
    png = png_of(image)
    raw = post_number(live_server, png, "image/png").json()
    boundary = "number-boundary"
    form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"n.png\"\r\n"
            "Content-Type: image/png\r\n\r\n").encode() + png + f"\r\n--{boundary}--\r\n".encode()
    assert post_number(live_server, form, f"multipart/form-data; boundary={boundary}").json() == raw
    for text in (b64(png), "data:image/png;base64," + b64(png)):
        assert post_json(live_server, {"image": text}, path="/number").json() == raw
    pixels = np.asarray(image).tolist()
    by_pixels = post_json(live_server, {"pixels": pixels}, path="/number").json()
    assert by_pixels["number"] == raw["number"]


def test_pixels_are_any_rectangle_read_as_mnist_rows(live_server, confident_digits, numbers):
    digits = dict(confident_digits)
    row = np.concatenate([digits[4], digits[2]], axis=1)  # 28 x 56, the MNIST convention
    assert post_json(live_server, {"pixels": np.zeros((28, NUMBER_PAD_WIDTH), int).tolist()}, path="/number").status == 422
    answer = post_json(live_server, {"pixels": row.tolist()}, path="/number")
    assert answer.status == 200, answer.body
    result = answer.json()
    assert_number_shape(result, numbers)
    assert result["number"] == "42"
    assert all(box[2] <= 56 and box[3] <= 28 for box in (digit["box"] for digit in result["digits"]))


def test_a_batch_answers_in_order(live_server, numbers, confident_digits):
    images = [png_of(compose(confident_digits, number)[0]) for number in ("7890", "58", "7")]
    answer = post_json(live_server, {"images": [b64(png) for png in images]}, path="/number")
    assert answer.status == 200, answer.body
    predictions = answer.json()["predictions"]
    assert [prediction["number"] for prediction in predictions] == ["7890", "58", "7"]
    for prediction in predictions:
        assert_number_shape(prediction, numbers)


def test_a_scribble_gets_a_verdict_from_the_list(live_server, numbers):
    rng = np.random.default_rng(0)
    noise = (rng.random((120, 400)) > 0.7).astype(np.uint8) * 255
    answer = post_number(live_server, png_of(Image.fromarray(noise, "L")), "image/png")
    assert answer.status == 200, answer.body
    assert_number_shape(answer.json(), numbers)


@pytest.mark.parametrize("body, content_type, words", [
    (png_of(Image.new("L", (840, 280), 0)), "image/png", "no ink: the image is blank, draw a number"),
    (png_of(Image.new("RGB", (600, 200), (255, 255, 255))), "image/png", "no ink"),
    (json.dumps({"pixels": [[0] * 100] * 28}).encode(), "application/json", "no ink"),
])
def test_a_blank_image_is_422(live_server, body, content_type, words):
    answer = post_number(live_server, body, content_type)
    assert answer.status == 422 and words in answer.json()["error"]


def test_a_blank_image_in_a_batch_is_422_naming_it(live_server, confident_digits):
    good = png_of(compose(confident_digits, "7")[0])
    blank = png_of(Image.new("L", (300, 100), 0))
    answer = post_json(live_server, {"images": [b64(good), b64(blank)]}, path="/number")
    assert answer.status == 422 and answer.json()["error"].startswith("images[1]: no ink")


# /number takes any rectangle of pixels, so the square-only case of /predict's table is a good request here.
NUMBER_PIXELS_CASES = [
    ("pixels no rows", "POST", "application/json", b'{"pixels": []}', 400, "rows"),
    ("pixels empty row", "POST", "application/json", b'{"pixels": [[]]}', 400, "rows"),
    ("pixels too many rows", "POST", "application/json", json.dumps({"pixels": [[0]] * 841}).encode(), 400, "rows"),
    ("pixels too wide", "POST", "application/json", json.dumps({"pixels": [[0] * 841] * 28}).encode(), 400, "rows"),
    ("pixels ragged rows", "POST", "application/json", json.dumps({"pixels": [[0] * 56] * 27 + [[0] * 55]}).encode(), 400, "rows"),
]
NUMBER_BAD_INPUTS = [case for case in BAD_INPUTS if case[0] != "pixels wrong rows"] + NUMBER_PIXELS_CASES


@pytest.mark.parametrize(
    "method, content_type, body, status, words", [case[1:] for case in NUMBER_BAD_INPUTS],
    ids=[case[0] for case in NUMBER_BAD_INPUTS],
)
def test_bad_input_is_the_same_json_error_as_predict_and_the_server_stays_up(
    live_server, confident_digits, method, content_type, body, status, words
):
    headers = {"Content-Type": content_type} if content_type else {}
    if "content-encoding" in words:
        headers["Content-Encoding"] = "gzip"
    answer = request(live_server, method, "/number", body, headers)
    assert answer.status == status, answer.body[:300]
    assert answer.headers["Content-Type"] == "application/json"
    error = answer.json()["error"]
    assert words.lower() in error.lower() and "Traceback" not in error
    if status == 405:
        assert "POST" in answer.headers["Allow"]
    good = post_number(live_server, png_of(compose(confident_digits, "7")[0]), "image/png")
    assert good.status == 200 and good.json()["number"] == "7"


def test_without_a_number_reader_number_is_503_and_digits_still_read(start_server, digits_only_artifacts, confident_digits):
    base_url = start_server(ARTIFACTS_DIR=str(digits_only_artifacts))
    image, _ = compose(confident_digits, "7")
    answer = post_number(base_url, png_of(image), "image/png")
    assert answer.status == 503 and "no number reader" in answer.json()["error"]
    label, digit = confident_digits[7]
    assert post(base_url, png_of(enlarge(digit)), "image/png").json()["digit"] == label
    assert "numbers" not in request(base_url, "GET", "/healthz").json()


@pytest.mark.parametrize("damage", ["truncated", "other bytes"])
def test_a_number_file_that_does_not_match_the_manifest_stops_the_server(tmp_path, numbers, damage):
    copy = tmp_path / "artifacts"
    shutil.copytree(ARTIFACTS_DIR, copy)
    path = copy / numbers["variants"][numbers["default_variant"]]["file"]
    data = path.read_bytes()
    path.write_bytes(data[:-10] if damage == "truncated" else data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(ModelError, match=re.escape(path.name)):
        create_app({"ARTIFACTS_DIR": str(copy), "FEEDBACK": "off"})


def test_number_files_are_served_content_addressed(live_server, numbers):
    for variant in numbers["variants"].values():
        answer = request(live_server, "GET", f"/model/{variant['file']}")
        assert answer.status == 200 and answer.body == (ARTIFACTS_DIR / variant["file"]).read_bytes()
        assert answer.headers["ETag"] == f'"{variant["sha256"]}"'
        assert answer.headers["Cache-Control"] == "public, max-age=31536000, immutable"


def test_healthz_names_the_number_reader(live_server, numbers):
    health = request(live_server, "GET", "/healthz").json()
    assert health["numbers"] == {"model": numbers["model_id"], "variant": numbers["default_variant"]}


def test_predict_cli_reads_numbers(tmp_path, confident_digits, numbers):
    good = tmp_path / "number.png"
    compose(confident_digits, "7890")[0].save(good)
    blank = tmp_path / "blank.png"
    Image.new("L", (300, 100), 255).save(blank)
    result = run_python("-m", "serve.predict", "--number", str(good), str(blank))
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert re.fullmatch(rf"{re.escape(str(good))}: 7890 \(\d+\.\d%\)", lines[0]), lines
    assert "no ink: the image is blank, draw a number" in lines[1]

    result = run_python("-m", "serve.predict", "--number", "--json", str(good))
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer.pop("file") == str(good)
    assert_number_shape(answer, numbers)
    assert answer["number"] == "7890"


def test_predict_cli_without_a_number_reader_says_so(tmp_path, digits_only_artifacts, confident_digits):
    good = tmp_path / "number.png"
    compose(confident_digits, "7")[0].save(good)
    result = run_python("-m", "serve.predict", "--number", "--artifacts", str(digits_only_artifacts), str(good))
    assert result.returncode == 2 and "no number reader" in result.stderr


def test_the_digit_variant_picks_the_number_variant_when_there_is_one(start_server, numbers, confident_digits):
    base_url = start_server(MODEL_VARIANT="int8")
    variant = "int8" if "int8" in numbers["variants"] else numbers["default_variant"]
    model_id = numbers["model_id"] + ("-int8" if variant != numbers["default_variant"] else "")
    assert request(base_url, "GET", "/healthz").json()["numbers"] == {"model": model_id, "variant": variant}
    served = json.loads(request(base_url, "GET", "/model/manifest.json").body)["numbers"]
    assert served["default_variant"] == variant and served["model_id"] == model_id
    # The page runs the served manifest's browser variant: with another variant it is the server's own.
    assert variant == numbers["default_variant"] or served["browser_variant"] == variant
    answer = post_number(base_url, png_of(compose(confident_digits, "7")[0]), "image/png").json()
    assert answer["model"] == model_id and answer["number"] == "7"
