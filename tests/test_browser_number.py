"""Number mode in real Chromium against the real server: the switch, the wide pad, numbers read in the page and
by POST /number on the same pixels, offline, and the keypad that corrects a number."""

import base64
import io
import json

import numpy as np
import onnxruntime
import pytest
from PIL import Image

from reader.contract import NUMBER_PAD_HEIGHT, NUMBER_PAD_WIDTH, PAD_PEN_WIDTH
from tests.browser_fixtures import (
    CLEAR,
    DIGITS,
    OFFLINE_READY,
    PAD,
    PREDICT,
    RESULT,
    RUNTIME_FAILED,
    RUNTIME_READY,
    SETTLED_ANSWER,
    draw,
    number_strokes,
)
from tests.server_fixtures import post
from tests.conftest import ARTIFACTS_DIR
from tests.feedback_helpers import export
from tests.test_browser_faults import BLOCKED_RESOURCE, stoppable_server  # noqa: F401 (a fixture)
from tests.test_browser_feedback import ALL_SENT, feedback_server  # noqa: F401 (a fixture)

MODE_DIGIT = '[data-testid="mode-digit"]'
MODE_NUMBER = '[data-testid="mode-number"]'
PAD_ASPECT = NUMBER_PAD_WIDTH / NUMBER_PAD_HEIGHT
# Every file of the shipped number reader runs in the page as it does in onnxruntime.
NUMBER_VARIANTS = sorted(json.loads((ARTIFACTS_DIR / "manifest.json").read_text())["numbers"]["variants"])

SHOWN_NUMBER = """() => {
  const result = document.querySelector('[data-testid="result"]');
  return {
    number: result.dataset.number ?? null,
    digit: result.dataset.digit ?? null,
    state: result.dataset.state,
    verdict: result.dataset.verdict ?? null,
    backend: result.dataset.backend ?? null,
    model: result.dataset.model ?? null,
    caption: document.querySelector('#caption').textContent,
    spoken: document.querySelector('#announcer').textContent,
    shown: document.querySelector('#number').textContent,
    positions: [...document.querySelectorAll('[data-testid^="position-"]')].map((position) => ({
      digit: position.dataset.digit,
      doubtful: position.dataset.doubtful === 'true',
      opacity: Number(getComputedStyle(position).opacity),
      readings: [...position.querySelectorAll('li')].map((item) => [item.dataset.digit, Number(item.dataset.probability)]),
      visible: position.checkVisibility(),
    })),
  };
}"""

# The input the page feeds the number reader for what is on the pad, read with the page's own modules.
PAGE_INPUT = """async () => {
  const { readPixels } = await import('/pad.js');
  const { inputFormat } = await import('/classifier.js');
  const manifest = await (await fetch('/model/manifest.json')).json();
  const image = readPixels(document.querySelector('[data-testid="pad"]'), inputFormat(manifest, 'number'));
  return { data: Array.from(image.data), height: image.height, width: image.width };
}"""

PAD_BOX = f"""() => {{
  const canvas = document.querySelector('{PAD}');
  const box = canvas.getBoundingClientRect();
  return {{ width: box.width, height: box.height, inner: [canvas.clientWidth, canvas.clientHeight] }};
}}"""


def shown_number(page):
    return page.evaluate(SHOWN_NUMBER)


def page_input(page):
    image = page.evaluate(PAGE_INPUT)
    return np.array(image["data"], dtype=np.float32).reshape(image["height"], image["width"])


def as_png(pixels):
    buffer = io.BytesIO()
    Image.fromarray(np.round(pixels * 255).astype(np.uint8), "L").save(buffer, "PNG")
    return buffer.getvalue()


def open_number_mode(open_page, base_url, path="/?mode=number&auto=0", **context_options):
    page = open_page(base_url, path, **context_options)
    page.wait_for_selector(RUNTIME_READY)
    return page


def write(page, number, pointer="mouse"):
    draw(page, number_strokes(number, PAD_ASPECT), pointer)


def read_written(page, number, pointer="mouse"):
    write(page, number, pointer)
    page.click(PREDICT)
    page.wait_for_selector(SETTLED_ANSWER)
    return shown_number(page)


@pytest.mark.parametrize("number", ["47", "308", "2024"])
def test_number_written_with_the_mouse_is_read_on_predict(open_page, live_server, number):
    page = open_number_mode(open_page, live_server)
    answer = read_written(page, number)
    assert (answer["number"], answer["backend"], answer["verdict"]) == (number, "browser", "number"), answer
    assert answer["digit"] is None and answer["state"] == "sure"
    assert [position["digit"] for position in answer["positions"]] == list(number)


@pytest.mark.parametrize("number", ["71", "4380"])
def test_number_written_with_a_finger_is_read_by_auto_predict(open_page, live_server, number):
    page = open_number_mode(open_page, live_server, "/?mode=number", has_touch=True)
    write(page, number, "touch")
    page.wait_for_selector(SETTLED_ANSWER)
    assert shown_number(page)["number"] == number


def test_each_position_shows_its_top_readings(open_page, live_server):
    page = open_number_mode(open_page, live_server)
    answer = read_written(page, "307")
    assert answer["shown"].startswith("3") and all(position["visible"] for position in answer["positions"])
    for position in answer["positions"]:
        digits = [digit for digit, _ in position["readings"]]
        probabilities = [probability for _, probability in position["readings"]]
        assert len(digits) == 3 and digits[0] == position["digit"] and len(set(digits)) == 3
        assert probabilities == sorted(probabilities, reverse=True) and 0 < sum(probabilities) <= 1 + 1e-6


def test_browser_answer_equals_server_answer_for_the_same_pixels(start_server, open_page, live_server, manifest):
    # The page runs the numbers section's browser_variant; a server running that file must give the very same answer.
    numbers = manifest["numbers"]
    same_file_server = start_server(MODEL_VARIANT=numbers.get("browser_variant", numbers["default_variant"]))
    page = open_number_mode(open_page, live_server)
    write(page, "2024")
    page.click(PREDICT)
    page.wait_for_selector(SETTLED_ANSWER)
    in_browser = page.evaluate("""async () => {
      const { createClassifier } = await import('/classifier.js');
      const { readPixels } = await import('/pad.js');
      const classifier = createClassifier({ mode: 'number' });
      await classifier.started;
      const { normalized, ...answer } = await classifier.classify(readPixels(document.querySelector('[data-testid="pad"]'),
                                                                              classifier.inputFormat));
      return answer;
    }""")
    pixels = page_input(page)
    answer = post(same_file_server, as_png(pixels), "image/png", path="/number")
    assert answer.status == 200, (answer.status, answer.body[:300])
    on_server = answer.json()

    # What the page shows: the number, and under each digit its readings with the server's probabilities.
    shown = shown_number(page)
    assert (shown["backend"], shown["number"]) == ("browser", on_server["number"])
    for position, digit in zip(shown["positions"], on_server["digits"], strict=True):
        assert position["readings"][0][0] == str(digit["digit"])
        for label, probability in position["readings"]:
            assert probability == pytest.approx(digit["probabilities"][int(label)], abs=1e-5)

    # All the page's classifier answers, for the very pixels the server read.
    assert in_browser["backend"] == "browser"
    assert {key: on_server[key] for key in ("number", "verdict", "model")} == {
        key: in_browser[key] for key in ("number", "verdict", "model")}
    assert [digit["box"] for digit in in_browser["digits"]] == [digit["box"] for digit in on_server["digits"]]
    np.testing.assert_allclose([digit["probabilities"] for digit in in_browser["digits"]],
                               [digit["probabilities"] for digit in on_server["digits"]], atol=1e-5)
    np.testing.assert_allclose([in_browser["confidence"], in_browser["not_number"]],
                               [on_server["confidence"], on_server["not_number"]], atol=1e-5)


@pytest.mark.parametrize("variant", NUMBER_VARIANTS)
def test_every_output_in_the_page_equals_onnxruntime_on_the_same_float_image(open_page, live_server, manifest, variant):
    numbers = manifest["numbers"]
    page = open_number_mode(open_page, live_server)
    write(page, "1870")
    in_browser = page.evaluate("""async (variant) => {
      const { createClassifier } = await import('/classifier.js');
      const { readPixels } = await import('/pad.js');
      const classifier = createClassifier({ mode: 'number', variant });
      await classifier.started;
      const image = readPixels(document.querySelector('[data-testid="pad"]'), classifier.inputFormat);
      const answer = await classifier.classify(image);
      const normalized = { ...answer.normalized, data: Array.from(answer.normalized.data) };
      return { ...answer, normalized, image: { ...image, data: Array.from(image.data) } };
    }""", variant)
    pixels = np.array(in_browser["image"]["data"], dtype=np.float32).reshape(in_browser["image"]["height"], in_browser["image"]["width"])
    session = onnxruntime.InferenceSession(str(ARTIFACTS_DIR / numbers["variants"][variant]["file"]), providers=["CPUExecutionProvider"])
    outputs = numbers["outputs"]
    expected = dict(zip(outputs, session.run([output["name"] for output in outputs.values()], {numbers["input"]["name"]: pixels})))

    assert in_browser["number"] == "".join(numbers["labels"][digit] for digit in expected["digits"])
    assert in_browser["verdict"] == outputs["verdict"]["values"][int(expected["verdict"][0])]
    assert [digit["box"] for digit in in_browser["digits"]] == expected["boxes"].tolist()
    np.testing.assert_allclose([digit["probabilities"] for digit in in_browser["digits"]], expected["probabilities"], atol=1e-5)
    np.testing.assert_allclose([digit["confidence"] for digit in in_browser["digits"]], expected["confidences"], atol=1e-5)
    np.testing.assert_allclose([in_browser["confidence"], in_browser["not_number"]],
                               [expected["confidence"][0], expected["not_number"][0]], atol=1e-5)
    normalized = in_browser["normalized"]
    assert [normalized["height"], normalized["width"]] == list(expected["normalized"].shape)
    np.testing.assert_allclose(np.reshape(normalized["data"], expected["normalized"].shape), expected["normalized"], atol=1e-5)


def test_numbers_are_read_offline_on_a_visit_after_one_online_load_in_digit_mode(open_page, stoppable_server):
    server = stoppable_server()
    page = open_page(server.base_url, "/?auto=0")
    page.wait_for_selector(OFFLINE_READY)
    server.stop()
    page.goto("/?mode=number&auto=0")
    page.wait_for_selector(RUNTIME_READY)
    answer = read_written(page, "47")
    assert (answer["number"], answer["backend"]) == ("47", "browser")


@pytest.mark.console_errors(BLOCKED_RESOURCE)
def test_page_asks_post_number_when_the_runtime_cannot_load(open_page, live_server):
    page = open_page(live_server, None, service_workers="block")
    page.route("**/*.wasm", lambda route: route.abort())
    page.goto("/?mode=number&auto=0")
    page.wait_for_selector(RUNTIME_FAILED)
    with page.expect_request("**/number") as sent:
        answer = read_written(page, "308")
    assert (answer["number"], answer["backend"]) == ("308", "server")
    assert sent.value.method == "POST" and sent.value.headers["content-type"] == "image/png"
    assert [position["digit"] for position in answer["positions"]] == list("308")


def test_the_switch_changes_the_pad_and_the_address_and_a_reload_keeps_it(open_page, live_server):
    page = open_page(live_server, "/?auto=0")
    square = page.evaluate(PAD_BOX)
    assert square["width"] == pytest.approx(square["height"], abs=1)
    assert page.get_attribute(MODE_DIGIT, "aria-pressed") == "true"

    page.click(MODE_NUMBER)
    assert page.url.endswith("/?auto=0&mode=number")
    assert (page.get_attribute(MODE_NUMBER, "aria-pressed"), page.get_attribute(MODE_DIGIT, "aria-pressed")) == ("true", "false")
    wide = page.evaluate(PAD_BOX)
    assert wide["width"] / wide["height"] == pytest.approx(PAD_ASPECT, rel=0.02)
    assert page.text_content("#caption") == "Write a number"

    page.reload()
    page.wait_for_selector(RUNTIME_READY)
    assert page.get_attribute(MODE_NUMBER, "aria-pressed") == "true"
    assert shown_number(page)["number"] is None
    assert read_written(page, "71")["number"] == "71"

    page.click(MODE_DIGIT)
    assert page.url.endswith("/?auto=0")
    page.wait_for_selector(RUNTIME_READY)
    draw(page, DIGITS["7"])
    page.click(PREDICT)
    page.wait_for_selector(SETTLED_ANSWER)
    answer = shown_number(page)
    assert (answer["digit"], answer["number"]) == ("7", None)


def test_switching_clears_the_drawing_and_the_answer(open_page, live_server):
    page = open_number_mode(open_page, live_server)
    read_written(page, "47")
    page.click(MODE_DIGIT)
    answer = shown_number(page)
    assert answer["state"] == "empty" and answer["number"] is None and answer["positions"] == []
    assert page.evaluate(f"document.querySelector('{RESULT}').classList.contains('stale')") is False


def test_clear_empties_the_number_pad_and_the_answer(open_page, live_server):
    page = open_number_mode(open_page, live_server)
    read_written(page, "308")
    page.click(CLEAR)
    answer = shown_number(page)
    assert (answer["number"], answer["state"], answer["positions"]) == (None, "empty", [])
    assert page_input(page).max() == 0


@pytest.mark.parametrize("viewport", [{"width": 1280, "height": 900}, {"width": 1920, "height": 1080}])
def test_number_pad_has_the_contract_design_size_on_a_large_screen(open_page, live_server, viewport):
    page = open_page(live_server, "/?mode=number", viewport=viewport)
    box = page.evaluate(PAD_BOX)
    assert (box["width"], box["height"]) == pytest.approx((NUMBER_PAD_WIDTH, NUMBER_PAD_HEIGHT), abs=1)


@pytest.mark.parametrize("viewport", [
    {"width": 800, "height": 480},   # the Raspberry Pi touchscreen
    {"width": 480, "height": 800},   # the same, portrait
    {"width": 390, "height": 844},   # a phone
    {"width": 1024, "height": 600},
])
def test_number_pad_and_controls_fit_small_screens_keeping_the_aspect(open_page, live_server, viewport):
    page = open_page(live_server, "/?mode=number", viewport=viewport)
    box = page.evaluate(PAD_BOX)
    assert box["width"] / box["height"] == pytest.approx(PAD_ASPECT, rel=0.02)
    assert box["width"] >= 0.8 * min(viewport["width"], 3 * viewport["height"] / 2)
    for selector in (PAD, PREDICT, CLEAR, MODE_DIGIT, MODE_NUMBER, RESULT):
        element = page.locator(selector).bounding_box()
        assert element["x"] >= 0 and element["y"] >= 0, selector
        assert element["x"] + element["width"] <= viewport["width"] + 0.5, selector
        assert element["y"] + element["height"] <= viewport["height"] + 0.5, selector
    assert min(page.locator(PREDICT).bounding_box()["height"], page.locator(MODE_NUMBER).bounding_box()["height"]) >= 48


@pytest.mark.parametrize("mode", ["digit", "number"])
def test_pen_width_is_the_same_share_of_the_pad_height_in_both_modes(open_page, live_server, mode):
    # A digit fills about the same share of either pad's height, so its strokes must be as thick relative to it.
    page = open_page(live_server, f"/?mode={mode}&auto=0")
    page.wait_for_selector(RUNTIME_READY)
    draw(page, [[(0.5, 0.2), (0.5, 0.8)]])
    pixels = page.evaluate(f"""async () => {{
      const {{ readPixels }} = await import('/pad.js');
      const {{ inputFormat }} = await import('/classifier.js');
      const image = readPixels(document.querySelector('{PAD}'), inputFormat(null, '{mode}'));
      return {{ data: Array.from(image.data), height: image.height, width: image.width }};
    }}""")
    image = np.array(pixels["data"]).reshape(pixels["height"], pixels["width"])
    width_share = (image[image.shape[0] // 2] > 0.5).sum() / image.shape[0]
    assert width_share == pytest.approx(PAD_PEN_WIDTH, abs=0.01)


def test_auto_predict_waits_longer_in_number_mode(page):
    delays = page.evaluate("""import('/settings.js').then(({ readSettings }) => {
      const { autoPredictDelayMs, numberAutoPredictDelayMs } = readSettings('?mode=number');
      const explicit = readSettings('?mode=number&delay=250');
      return [autoPredictDelayMs, numberAutoPredictDelayMs, explicit.numberAutoPredictDelayMs];
    })""")
    assert delays[1] >= 1.4 * delays[0] and delays[2] == 250


@pytest.mark.parametrize("query, mode", [("", "digit"), ("?mode=number", "number"), ("?mode=Number", "digit"), ("?mode=", "digit")])
def test_mode_comes_from_the_address(page, query, mode):
    assert page.evaluate(f"import('/settings.js').then(({{ readSettings }}) => readSettings('{query}').mode)") == mode


@pytest.mark.parametrize("verdict, state, caption", [
    ("number", "sure", "90% sure"),
    ("unsure", "unsure", "Not sure. Maybe 2026 (40%)"),
    ("not_number", "not-number", "That doesn’t look like a number — try again"),
])
def test_each_verdict_is_shown_as_in_digit_mode(open_page, live_server, verdict, state, caption):
    page = open_number_mode(open_page, live_server)
    page.evaluate("""([verdict, confidence]) => import('/answer.js').then(({ createAnswer }) => {
      const answer = createAnswer(document.querySelector('[data-testid="result"]'));
      answer.setMode('number');
      const reading = (digit, index) => ({ digit, confidence: 0.9, box: [0, 0, 1, 1], doubtful: verdict === 'unsure' && index === 1,
                                    probabilities: Array.from({ length: 10 }, (_, index) => (index === digit ? 0.91 : 0.01)) });
      answer.showResult({ number: '2026', digits: [2, 0, 2, 6].map(reading), confidence, verdict, not_number: 0.01,
                          labels: [...'0123456789'], model: 'numbers-test', backend: 'server', milliseconds: 3 });
    })""", [verdict, 0.4 if verdict == "unsure" else 0.9])
    answer = shown_number(page)
    assert (answer["state"], answer["verdict"], answer["caption"]) == (state, verdict, caption)
    # The best reading shows even after a refusal, greyed, and is never announced as the number.
    assert [p["digit"] for p in answer["positions"]] == list("2026")
    assert answer["positions"][3]["readings"][0] == ["6", pytest.approx(0.91)]
    assert [p["doubtful"] for p in answer["positions"]] == [False, verdict == "unsure", False, False]
    if verdict == "not_number":
        assert answer["number"] is None and "2026" not in answer["spoken"]
        assert all(p["opacity"] < 1 for p in answer["positions"])
    else:
        assert answer["number"] == "2026" and all(p["opacity"] == 1 for p in answer["positions"])


def test_a_wrong_number_is_corrected_on_the_keypad(open_page, feedback_server, manifest):
    page = open_number_mode(open_page, feedback_server)
    shown = read_written(page, "47")
    page.click('[data-testid="wrong"]')
    assert page.is_disabled('[data-testid="save-number"]')
    for key in "4871":
        page.click(f'[data-testid="key-{key}"]')
    page.click('[data-testid="key-delete"]')
    assert page.text_content('[data-testid="typed-number"]') == "487"
    with page.expect_request(lambda sent: sent.url.endswith("/feedback") and sent.method == "POST") as sent:
        page.click('[data-testid="save-number"]')
    entry = json.loads(sent.value.post_data)
    assert {key: entry[key] for key in ("mode", "model", "predicted", "verdict", "label")} == {
        "mode": "number", "model": shown["model"], "predicted": shown["number"], "verdict": shown["verdict"], "label": "487"}
    assert shown["model"].startswith(manifest["numbers"]["model_id"])
    image = Image.open(io.BytesIO(base64.b64decode(entry["image"].split(",")[-1])))
    assert image.format == "PNG" and image.width / image.height == pytest.approx(PAD_ASPECT, rel=0.02)
    assert image.width == min(NUMBER_PAD_WIDTH, page.evaluate(f"document.querySelector('{PAD}').width"))
    assert len(entry["strokes"]) == sum(len(DIGITS[digit]) for digit in "47")
    assert page.text_content("#feedback-thanks") == "Thank you!"
    page.wait_for_selector(ALL_SENT)
    [stored] = export(feedback_server)
    assert (stored["id"], stored["label"], stored["predicted"]) == (entry["id"], "487", shown["number"])


@pytest.mark.parametrize("button, label", [("right", "47"), ("label-not-number", "not_number")])
def test_right_and_not_a_number_store_the_number_or_not_number(open_page, feedback_server, button, label):
    page = open_number_mode(open_page, feedback_server)
    read_written(page, "47")
    if button != "right":
        page.click('[data-testid="wrong"]')
    with page.expect_request(lambda sent: sent.url.endswith("/feedback") and sent.method == "POST") as sent:
        page.click(f'[data-testid="{button}"]')
    entry = json.loads(sent.value.post_data)
    assert (entry["mode"], entry["label"], entry["predicted"]) == ("number", label, "47")
    page.wait_for_selector(ALL_SENT)
    assert [stored["label"] for stored in export(feedback_server)] == [label]
