"""The HTTP contract of docs/API.md, checked against a real waitress server over real HTTP."""

import base64
import io
import json
import threading

import numpy as np
import onnxruntime
import pytest
from PIL import Image, ImageOps

from tests.server_fixtures import encode, enlarge, post, post_json, request

CONTENT_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "BMP": "image/bmp", "GIF": "image/gif"}


@pytest.fixture(scope="session")
def seven(confident_digits):
    return dict(confident_digits)[7]


def assert_prediction(answer, label, manifest):
    assert answer.status == 200, answer.body
    assert answer.headers["Content-Type"] == "application/json"
    result = answer.json()
    assert set(result) == {"digit", "confidence", "probabilities", "verdict", "not_digit", "model"}
    assert result["verdict"] == "digit" and 0 <= result["not_digit"] < manifest["verdict"]["not_digit_at_least"]
    assert result["model"] == manifest["model_id"]
    assert len(result["probabilities"]) == len(manifest["labels"])
    assert sum(result["probabilities"]) == pytest.approx(1, abs=1e-4)
    assert result["confidence"] == max(result["probabilities"])
    assert result["digit"] == label, result


def data_url(image_bytes, content_type="image/png"):
    return f"data:{content_type};base64," + base64.b64encode(image_bytes).decode()


@pytest.mark.parametrize("image_format", CONTENT_TYPES)
def test_raw_image_bytes_of_each_type(live_server, manifest, confident_digits, image_format):
    for label, digit in confident_digits:
        image = enlarge(digit)
        options = {"quality": 95} if image_format in ("JPEG", "WEBP") else {}
        answer = post(live_server, encode(image, image_format, **options), CONTENT_TYPES[image_format])
        assert_prediction(answer, label, manifest)


def test_multipart_file_field(live_server, manifest, seven):
    boundary = "digit-boundary"
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"seven.png\"\r\n"
        "Content-Type: image/png\r\n\r\n"
    ).encode() + encode(enlarge(seven), "PNG") + f"\r\n--{boundary}--\r\n".encode()
    answer = post(live_server, body, f"multipart/form-data; boundary={boundary}")
    assert_prediction(answer, 7, manifest)


@pytest.mark.parametrize("as_data_url", [False, True])
def test_json_base64_image(live_server, manifest, seven, as_data_url):
    png = encode(enlarge(seven), "PNG")
    text = data_url(png) if as_data_url else base64.b64encode(png).decode()
    assert_prediction(post_json(live_server, {"image": text}), 7, manifest)


def test_pixels_of_real_mnist_digits_give_their_labels(live_server, manifest, model_path, confident_digits):
    session = onnxruntime.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    for label, digit in confident_digits:
        answer = post_json(live_server, {"pixels": digit.tolist()})
        assert_prediction(answer, label, manifest)
        # The server hands the model exactly the MNIST convention scaled to [0, 1].
        expected = session.run(
            [manifest["outputs"]["probabilities"]["name"]],
            {manifest["input"]["name"]: digit.astype(np.float32) / np.iinfo(digit.dtype).max},
        )[0]
        np.testing.assert_allclose(answer.json()["probabilities"], expected, atol=1e-6)


def test_pixels_accept_floats(live_server, manifest, seven):
    pixels = (seven.astype(float) * 0.999).tolist()
    assert_prediction(post_json(live_server, {"pixels": pixels}), 7, manifest)


def test_batch_answers_in_order(live_server, manifest, confident_digits):
    images = [base64.b64encode(encode(enlarge(digit), "PNG")).decode() for _, digit in confident_digits]
    answer = post_json(live_server, {"images": images[::-1]})
    assert answer.status == 200, answer.body
    predictions = answer.json()["predictions"]
    assert [p["digit"] for p in predictions] == [label for label, _ in confident_digits][::-1]
    assert all(p["model"] == manifest["model_id"] for p in predictions)


def test_batch_of_one(live_server, manifest, seven):
    answer = post_json(live_server, {"images": [data_url(encode(enlarge(seven), "PNG"))]})
    assert answer.status == 200
    assert [p["digit"] for p in answer.json()["predictions"]] == [7]


def test_dark_ink_on_light_paper(live_server, manifest, confident_digits):
    for label, digit in confident_digits:
        paper = ImageOps.invert(enlarge(digit))
        assert_prediction(post(live_server, encode(paper, "PNG"), "image/png"), label, manifest)


def test_photo_of_paper_with_grey_background(live_server, manifest, seven):
    # Paper photographed in poor light: background mid-grey, ink darker grey, colour JPEG.
    ink = np.asarray(enlarge(seven), dtype=np.float32) / 255
    grey = (170 - 110 * ink).astype(np.uint8)
    photo = Image.fromarray(grey, "L").convert("RGB")
    assert_prediction(post(live_server, encode(photo, "JPEG", quality=85), "image/jpeg"), 7, manifest)


@pytest.mark.parametrize("ink_colour", [(0, 0, 0), (255, 255, 255), (30, 60, 200)])
@pytest.mark.parametrize("hidden_colour", [(0, 0, 0), (255, 255, 255)])
def test_transparent_canvas_carries_ink_in_alpha(live_server, manifest, seven, ink_colour, hidden_colour):
    """A canvas export: ink of any colour, a transparent background whose hidden colour is arbitrary."""
    coverage = enlarge(seven)
    canvas = Image.new("RGBA", coverage.size, (*hidden_colour, 0))
    canvas.paste(Image.new("RGBA", coverage.size, (*ink_colour, 255)), mask=coverage)
    canvas.putalpha(coverage)
    assert_prediction(post(live_server, encode(canvas, "PNG"), "image/png"), 7, manifest)


def test_opaque_rgba_and_palette_with_transparency(live_server, manifest, seven):
    paper = ImageOps.invert(enlarge(seven)).convert("RGBA")
    assert_prediction(post(live_server, encode(paper, "PNG"), "image/png"), 7, manifest)
    palette = enlarge(seven).convert("P")
    palette.info["transparency"] = 0
    assert_prediction(post(live_server, encode(palette, "PNG", transparency=0), "image/png"), 7, manifest)
    assert_prediction(post(live_server, encode(palette, "GIF", transparency=0), "image/gif"), 7, manifest)


def test_sixteen_bit_greyscale_png(live_server, manifest, seven):
    deep = Image.fromarray(np.asarray(enlarge(seven), dtype=np.uint16) * 257)
    assert deep.mode.startswith("I")
    assert_prediction(post(live_server, encode(deep, "PNG"), "image/png"), 7, manifest)


# EXIF orientation -> how the camera stored an upright picture (viewers undo it).
STORED_TURNED = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}


@pytest.mark.parametrize("orientation", STORED_TURNED)
def test_exif_orientation_is_applied(live_server, manifest, confident_digits, orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    misread_without_exif = 0
    for label, digit in confident_digits:
        stored = ImageOps.invert(enlarge(digit)).convert("RGB").transpose(STORED_TURNED[orientation])
        with_exif = post(live_server, encode(stored, "JPEG", quality=95, exif=exif.tobytes()), "image/jpeg")
        assert_prediction(with_exif, label, manifest)
        without_exif = post(live_server, encode(stored, "JPEG", quality=95), "image/jpeg")
        misread_without_exif += without_exif.json()["digit"] != label
    assert misread_without_exif > 0  # so the EXIF tag, not luck, made the answers right


def test_large_photo_is_read(live_server, manifest, seven):
    photo = ImageOps.invert(enlarge(seven, side=3000)).convert("RGB")
    assert_prediction(post(live_server, encode(photo, "JPEG", quality=70), "image/jpeg"), 7, manifest)
    huge_png = enlarge(seven, side=2500)
    assert_prediction(post(live_server, encode(huge_png, "PNG"), "image/png"), 7, manifest)


def test_only_the_first_gif_frame_is_read(live_server, manifest, confident_digits):
    digits = dict(confident_digits)
    frames = [enlarge(digits[3]).convert("P")] + [enlarge(digits[label]).convert("P") for label in (1, 8)]
    animation = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50)
    assert_prediction(post(live_server, animation, "image/gif"), 3, manifest)


def test_small_and_odd_shaped_images(live_server, manifest, seven):
    assert_prediction(post(live_server, encode(Image.fromarray(seven), "PNG"), "image/png"), 7, manifest)
    wide = Image.new("L", (600, 280))
    wide.paste(enlarge(seven), (160, 0))
    assert_prediction(post(live_server, encode(wide, "PNG"), "image/png"), 7, manifest)


@pytest.mark.parametrize("blank", [
    Image.new("L", (280, 280), 0), Image.new("L", (280, 280), 255), Image.new("RGBA", (280, 280), (0, 0, 0, 0)),
    Image.new("RGB", (280, 280), (90, 120, 200)), Image.new("L", (1, 1), 255),
], ids=["black", "white", "transparent", "blue", "one-pixel"])
def test_blank_canvas_is_not_a_digit(live_server, blank):
    answer = post(live_server, encode(blank, "PNG"), "image/png")
    assert answer.status == 422
    assert "no ink" in answer.json()["error"]


def doodle_png(strokes, side=280):
    """Strokes in pad units drawn as the pad draws them: a white round pen on black."""
    from reader.pen import draw_strokes

    return encode(Image.fromarray(np.round(draw_strokes(strokes, side=side)[0] * 255).astype(np.uint8), "L"), "PNG")


NON_DIGITS = {
    "hash": [[(0.38, 0.15), (0.33, 0.85)], [(0.66, 0.15), (0.61, 0.85)], [(0.15, 0.38), (0.85, 0.38)], [(0.15, 0.63), (0.85, 0.63)]],
    "star": [[(0.5, 0.12), (0.62, 0.85), (0.15, 0.38), (0.85, 0.38), (0.38, 0.85), (0.5, 0.12)]],
    "letter_M": [[(0.2, 0.85), (0.25, 0.15), (0.5, 0.6), (0.75, 0.15), (0.8, 0.85)]],
    "two_digits": [[(0.2, 0.2), (0.2, 0.8)], [(0.45, 0.25), (0.75, 0.25), (0.55, 0.8)]],
}


@pytest.mark.parametrize("name", NON_DIGITS)
def test_a_doodle_is_not_answered_as_a_digit(live_server, manifest, name):
    answer = post(live_server, doodle_png(NON_DIGITS[name]), "image/png")
    assert answer.status == 200, answer.body
    result = answer.json()
    assert result["verdict"] in ("not_digit", "unsure"), result
    assert len(result["probabilities"]) == 10 and result["digit"] == int(np.argmax(result["probabilities"]))


def test_verdict_is_the_models_own_output(live_server, manifest, model_path):
    """The server adds nothing of its own: verdict and not_digit are the graph's outputs, named by the manifest."""
    session = onnxruntime.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    outputs = manifest["outputs"]
    for strokes in NON_DIGITS.values():
        png = doodle_png(strokes)
        pixels = np.asarray(Image.open(io.BytesIO(png)), np.float32) / 255.0
        not_digit, verdict = session.run([outputs["not_digit"]["name"], outputs["verdict"]["name"]], {manifest["input"]["name"]: pixels})
        result = post(live_server, png, "image/png").json()
        assert result["verdict"] == outputs["verdict"]["values"][int(verdict[0])]
        assert result["not_digit"] == pytest.approx(float(not_digit[0]), abs=1e-6)


def test_blank_pixels_and_batch_item_are_not_digits(live_server, manifest, seven):
    side = manifest["normalization"]["canvas_size"]
    answer = post_json(live_server, {"pixels": [[0] * side] * side})
    assert answer.status == 422 and "no ink" in answer.json()["error"]
    good = base64.b64encode(encode(enlarge(seven), "PNG")).decode()
    blank = base64.b64encode(encode(Image.new("L", (50, 50)), "PNG")).decode()
    answer = post_json(live_server, {"images": [good, blank]})
    assert answer.status == 422 and answer.json()["error"].startswith("images[1]: no ink")


def test_many_threads_posting_at_once_all_get_their_answers(live_server, manifest, confident_digits):
    bodies = [(label, encode(enlarge(digit), "PNG")) for label, digit in confident_digits]
    failures = []

    def client(offset):
        for round_number in range(8):
            label, body = bodies[(offset + round_number) % len(bodies)]
            answer = post(live_server, body, "image/png")
            if answer.status != 200 or answer.json()["digit"] != label:
                failures.append((label, answer.status, answer.body[:200]))

    threads = [threading.Thread(target=client, args=(offset,)) for offset in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_healthz(live_server, manifest):
    answer = request(live_server, "GET", "/healthz")
    assert answer.status == 200
    numbers = manifest["numbers"]
    assert answer.json() == {"status": "ok", "model": manifest["model_id"], "variant": manifest["default_variant"],
                             "numbers": {"model": numbers["model_id"], "variant": numbers["default_variant"]}}


def test_manifest_is_served_verbatim_and_revalidated(live_server, manifest):
    answer = request(live_server, "GET", "/model/manifest.json")
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "application/json"
    assert json.loads(answer.body) == manifest
    assert answer.headers["Cache-Control"] == "no-cache"
    again = request(live_server, "GET", "/model/manifest.json", headers={"If-None-Match": answer.headers["ETag"]})
    assert again.status == 304


@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_model_files_are_content_addressed_and_cached_for_a_year(live_server, manifest, variant):
    entry = manifest["variants"][variant]
    answer = request(live_server, "GET", f"/model/{entry['file']}")
    assert answer.status == 200
    assert len(answer.body) == entry["bytes"]
    assert answer.headers["ETag"] == f'"{entry["sha256"]}"'
    assert answer.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    again = request(live_server, "GET", f"/model/{entry['file']}", headers={"If-None-Match": answer.headers["ETag"]})
    assert again.status == 304 and again.body == b""


def test_unknown_model_file_is_404_json(live_server):
    answer = request(live_server, "GET", "/model/digits-fp32-000000000000.onnx")
    assert answer.status == 404
    assert "error" in answer.json()


def test_int8_variant_server(start_server, manifest, seven):
    base_url = start_server(MODEL_VARIANT="int8")
    assert request(base_url, "GET", "/healthz").json()["variant"] == "int8"
    answer = post(base_url, encode(enlarge(seven), "PNG"), "image/png")
    assert answer.status == 200 and answer.json()["digit"] == 7
    assert answer.json()["model"] == f"{manifest['model_id']}-int8"


def test_a_small_pixel_limit_on_one_server_does_not_shrink_another(start_server, live_server, seven, manifest):
    # Pillow's guard is process-wide; one app's stricter limit must not leak into the others.
    strict = start_server(MAX_IMAGE_PIXELS=100)
    image = encode(enlarge(seven), "PNG")
    assert post(strict, image, "image/png").status == 413
    assert_prediction(post(live_server, image, "image/png"), 7, manifest)
