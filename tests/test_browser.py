"""The kiosk page in real Chromium against the real server: drawing, answers, browser vs server, keyboard."""

import io

import numpy as np
import pytest
from PIL import Image

from tests.browser_fixtures import (
    CLEAR,
    DIGITS,
    PAD,
    PREDICT,
    RESULT,
    RUNTIME_READY,
    SETTLED_ANSWER,
    draw,
)
from tests.server_fixtures import post
from tests.test_api import NON_DIGITS

SHOWN_ANSWER = """() => {
  const result = document.querySelector('[data-testid="result"]');
  const bars = [...document.querySelectorAll('[data-testid^="bar-"]')];
  return {
    digit: result.dataset.digit ?? null,
    state: result.dataset.state,
    verdict: result.dataset.verdict ?? null,
    caption: document.querySelector('#caption').textContent,
    spoken: document.querySelector('#announcer').textContent,
    backend: result.dataset.backend ?? null,
    model: result.dataset.model ?? null,
    probabilities: bars.map((bar) => Number(bar.dataset.probability)),
    predicted: bars.filter((bar) => bar.classList.contains('predicted')).map((bar) => bar.dataset.testid),
  };
}"""

# The input the page feeds the model for what is on the pad, read with the page's own modules.
PAGE_INPUT = """async () => {
  const { readPixels } = await import('/pad.js');
  const { inputFormat } = await import('/classifier.js');
  const manifest = await (await fetch('/model/manifest.json')).json();
  const image = readPixels(document.querySelector('[data-testid="pad"]'), inputFormat(manifest));
  return { data: Array.from(image.data), height: image.height, width: image.width };
}"""


def shown_answer(page):
    return page.evaluate(SHOWN_ANSWER)


def page_input(page):
    image = page.evaluate(PAGE_INPUT)
    return np.array(image["data"], dtype=np.float32).reshape(image["height"], image["width"])


def open_ready(open_page, live_server, path="/?auto=0", **context_options):
    page = open_page(live_server, path, **context_options)
    page.wait_for_selector(RUNTIME_READY)
    return page


@pytest.mark.parametrize("digit", ["0", "1", "7", "4", "3"])
def test_mouse_drawn_digit_is_recognised_on_predict(open_page, live_server, digit):
    page = open_ready(open_page, live_server)
    draw(page, DIGITS[digit], "mouse")
    page.click(PREDICT)
    page.wait_for_selector(SETTLED_ANSWER)
    answer = shown_answer(page)
    assert (answer["digit"], answer["backend"]) == (digit, "browser")
    assert answer["predicted"] == [f"bar-{digit}"]
    assert sum(answer["probabilities"]) == pytest.approx(1, abs=1e-3)


@pytest.mark.parametrize("digit", ["0", "1", "7", "4", "3", "8"])
def test_finger_drawn_digit_is_recognised_by_auto_predict(open_page, live_server, digit):
    # No tap on Predict: right after a fast stroke Chromium may swallow it, so the page answers by itself.
    page = open_ready(open_page, live_server, "/", has_touch=True)
    draw(page, DIGITS[digit], "touch")
    page.wait_for_selector(SETTLED_ANSWER)
    assert shown_answer(page)["digit"] == digit


def test_browser_answer_equals_server_answer_for_the_same_drawing(start_server, open_page, live_server, manifest):
    # The page runs the manifest's browser_variant (the faster file in onnxruntime-web); a server running that file
    # must give the very same answer.
    same_file_server = start_server(MODEL_VARIANT=manifest.get("browser_variant", manifest["default_variant"]))
    page = open_ready(open_page, live_server)
    draw(page, DIGITS["3"])
    page.click(PREDICT)
    page.wait_for_selector(SETTLED_ANSWER)
    in_browser = shown_answer(page)

    pixels = page_input(page)
    png = io.BytesIO()
    Image.fromarray(np.round(pixels * 255).astype(np.uint8), "L").save(png, "PNG")
    answer = post(same_file_server, png.getvalue(), "image/png")
    assert answer.status == 200, (answer.status, answer.body[:300], float(pixels.max()))
    on_server = answer.json()

    assert in_browser["backend"] == "browser"
    assert on_server["model"] == in_browser["model"]
    assert str(on_server["digit"]) == in_browser["digit"]
    assert on_server["verdict"] == in_browser["verdict"] == "digit"
    np.testing.assert_allclose(in_browser["probabilities"], on_server["probabilities"], atol=1e-5)


@pytest.mark.parametrize("name", ["hash", "star"])
def test_a_doodle_is_answered_calmly_as_not_a_digit(start_server, open_page, live_server, manifest, name):
    page = open_ready(open_page, live_server)
    draw(page, NON_DIGITS[name], "mouse")
    page.click(PREDICT)
    page.wait_for_selector(SETTLED_ANSWER)
    answer = shown_answer(page)
    assert answer["state"] == "not-digit" and answer["verdict"] == "not_digit", answer
    assert answer["digit"] is None and answer["predicted"] == []
    assert "doesn’t look like a digit" in answer["caption"] and "That is a" not in answer["spoken"]

    # A server running the same file, sent the very pixels the page read, comes to the same verdict.
    same_file_server = start_server(MODEL_VARIANT=manifest.get("browser_variant", manifest["default_variant"]))
    png = io.BytesIO()
    Image.fromarray(np.round(page_input(page) * 255).astype(np.uint8), "L").save(png, "PNG")
    assert post(same_file_server, png.getvalue(), "image/png").json()["verdict"] == "not_digit"


def test_clear_empties_the_pad_and_the_answer(open_page, live_server):
    page = open_ready(open_page, live_server)
    draw(page, DIGITS["7"])
    page.click(PREDICT)
    page.wait_for_selector(SETTLED_ANSWER)
    page.click(CLEAR)
    answer = shown_answer(page)
    assert answer["digit"] is None and answer["state"] == "empty"
    assert answer["probabilities"] == [0] * 10 and answer["predicted"] == []
    assert page_input(page).max() == 0


def test_predict_on_a_blank_pad_asks_for_a_digit(page):
    page.wait_for_selector(RUNTIME_READY)
    page.click(PREDICT)
    assert shown_answer(page)["state"] == "empty"
    assert page.locator("#caption").text_content() == "Draw a digit"
    assert "draw a digit" in page.locator("#announcer").text_content()


def test_predict_runs_again_for_an_answered_drawing(open_page, live_server):
    page = open_ready(open_page, live_server, "/")
    draw(page, DIGITS["1"])
    page.wait_for_selector(SETTLED_ANSWER)  # auto-predict answered
    page.evaluate(f"document.querySelector('{RESULT}').removeAttribute('data-digit')")
    page.click(PREDICT)
    page.wait_for_selector(SETTLED_ANSWER)
    assert shown_answer(page)["digit"] == "1"


def test_auto_predict_can_be_switched_off(open_page, live_server):
    page = open_ready(open_page, live_server, "/?delay=100")
    page.click(".toggle")
    assert not page.is_checked("#auto-predict")
    draw(page, DIGITS["7"])
    page.wait_for_timeout(1000)  # ten times the auto-predict delay
    assert shown_answer(page)["digit"] is None


def test_idle_pad_is_cleared(open_page, live_server):
    page = open_ready(open_page, live_server, "/?idle=2")
    draw(page, DIGITS["7"])
    page.wait_for_selector(SETTLED_ANSWER)
    page.wait_for_selector(f'{RESULT}[data-state="empty"]')
    assert page_input(page).max() == 0


def test_idle_clear_waits_at_least_30_seconds_by_default(page):
    assert page.evaluate("import('/settings.js').then((settings) => settings.readSettings('').idleClearSeconds)") >= 30


def test_buttons_work_from_the_keyboard(open_page, live_server):
    page = open_ready(open_page, live_server)
    draw(page, DIGITS["4"])
    page.focus(PREDICT)
    page.keyboard.press("Enter")
    page.wait_for_selector(SETTLED_ANSWER)
    assert shown_answer(page)["digit"] == "4"
    assert "4" in page.locator("#announcer").text_content()
    page.keyboard.press("Tab")  # Predict -> the auto-predict switch
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")  # -> Clear
    page.keyboard.press("Space")
    assert shown_answer(page)["digit"] is None


def test_preview_shows_what_the_model_saw(open_page, live_server, manifest):
    page = open_ready(open_page, live_server)
    draw(page, DIGITS["0"])
    page.click(PREDICT)
    page.wait_for_selector(SETTLED_ANSWER)
    preview = page.evaluate("""() => {
      const canvas = document.querySelector('#preview');
      const rgba = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
      return { height: canvas.height, width: canvas.width, ink: rgba.filter((_, index) => index % 4 === 0 && rgba[index] > 0).length,
               visible: canvas.checkVisibility() };
    }""")
    assert [preview["height"], preview["width"]] == manifest["outputs"]["normalized"]["shape"]
    assert preview["visible"] and preview["ink"] > 0


def test_low_confidence_is_shown_as_not_sure(page):
    page.wait_for_selector(RUNTIME_READY)
    page.evaluate("""async () => {
      const { createAnswer } = await import('/answer.js');
      const answer = createAnswer(document.querySelector('[data-testid="result"]'));
      const probabilities = [0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.4, 0.2, 0.05];
      answer.showResult({ index: 7, label: '7', confidence: 0.4, probabilities, labels: [...'0123456789'], verdict: 'unsure',
                          normalized: null, backend: 'browser', model: 'm', milliseconds: 1 });
    }""")
    assert shown_answer(page)["state"] == "unsure"
    assert page.locator("#caption").text_content().startswith("Not sure")


@pytest.mark.parametrize("scale", [1, 2])
def test_pad_is_drawn_in_device_pixels_with_ink_proportional_to_its_size(open_page, live_server, scale):
    page = open_ready(open_page, live_server, device_scale_factor=scale)
    draw(page, DIGITS["1"])
    pad = page.evaluate(f"""() => {{
      const canvas = document.querySelector('{PAD}');
      const box = canvas.getBoundingClientRect();  // the border excluded below
      const border = canvas.offsetWidth - canvas.clientWidth;
      return {{ canvas: [canvas.width, canvas.height], box: [box.width - border, box.height - border] }};
    }}""")
    assert pad["canvas"] == pytest.approx([side * scale for side in pad["box"]], abs=1)
    # A vertical stroke's width, measured across the middle row of the model's input, is a fixed
    # fraction of the pad whatever its pixel density.
    pixels = page_input(page)
    width_fraction = (pixels[pixels.shape[0] // 2] > 0.5).sum() / pixels.shape[1]
    assert 0.05 < width_fraction < 0.09


def test_page_fills_portrait_and_landscape_screens(open_page, live_server):
    for viewport in ({"width": 800, "height": 480}, {"width": 720, "height": 1280}):
        page = open_page(live_server, "/", viewport=viewport)
        boxes = {
            name: page.locator(selector).bounding_box()
            for name, selector in {"pad": PAD, "predict": PREDICT, "clear": CLEAR, "answer": RESULT}.items()
        }
        for name, box in boxes.items():
            assert box["x"] >= 0 and box["y"] >= 0, name
            assert box["x"] + box["width"] <= viewport["width"] and box["y"] + box["height"] <= viewport["height"], name
        assert min(boxes["predict"]["height"], boxes["clear"]["height"], boxes["predict"]["width"]) >= 48
        assert boxes["pad"]["width"] >= 0.45 * min(viewport.values())
