"""Feedback in real Chromium: one tap stores a confirmation or a correction, offline taps wait in IndexedDB."""

import base64
import io

import pytest
from PIL import Image

from tests.browser_fixtures import (CHROMIUM, CHROMIUM_ARGS, CLEAR, DIGITS, KIOSK_VIEWPORT, PAD, PREDICT, RESULT, RUNTIME_READY,
                                    SETTLED_ANSWER, draw)
from tests.feedback_helpers import TOKEN, bearer, export
from tests.server_fixtures import request

FEEDBACK = "#feedback"
RIGHT = '[data-testid="right"]'
WRONG = '[data-testid="wrong"]'
THANKS = "#feedback-thanks"
ALL_SENT = '#feedback[data-queued="0"]'
NETWORK_FAILURE = r"Failed to load resource"


@pytest.fixture
def feedback_server(start_server, tmp_path):
    return start_server(FEEDBACK_DB=str(tmp_path / "feedback.sqlite"), ADMIN_TOKEN=TOKEN)


def answer_a_drawing(page, digit="7"):
    """Draw, predict, wait for the answer; returns what the page showed."""
    page.wait_for_selector(RUNTIME_READY)
    draw(page, DIGITS[digit])
    page.click(PREDICT)
    page.wait_for_selector(SETTLED_ANSWER)
    return page.eval_on_selector(RESULT, "(result) => ({...result.dataset})")


def shown_label(shown):
    return "not_digit" if shown["verdict"] == "not_digit" else int(shown["digit"])


def another_label(shown):
    label = shown_label(shown)
    return 3 if label == "not_digit" else (label + 1) % 10


def test_a_correction_made_in_chromium_reaches_the_store_the_export_and_stats(open_page, feedback_server):
    page = open_page(feedback_server, "/?auto=0")
    shown = answer_a_drawing(page)
    assert page.is_visible(RIGHT) and page.is_visible(WRONG) and not page.is_visible('[data-testid="label-0"]')
    label = another_label(shown)
    page.click(WRONG)
    assert page.get_attribute(WRONG, "aria-expanded") == "true"
    page.click(f'[data-testid="label-{label}"]')
    page.wait_for_selector(ALL_SENT)
    assert page.text_content(THANKS) == "Thank you!" and not page.is_visible(WRONG)
    [entry] = export(feedback_server)
    assert entry["id"] == page.get_attribute(FEEDBACK, "data-last-id")
    assert (entry["label"], entry["model"], entry["verdict"]) == (label, shown["model"], shown["verdict"])
    assert entry["predicted"] == int(shown["digit"] if "digit" in shown else entry["predicted"])
    assert entry["correct"] is False
    image = Image.open(io.BytesIO(base64.b64decode(entry["image"])))
    assert image.format == "PNG" and max(image.size) <= 280 and image.convert("L").getextrema()[1] == 255
    [stroke] = entry["strokes"]  # the 7 of DIGITS is one stroke, in pad units and ms
    assert len(stroke) > 10 and all(0 <= x <= 1 and 0 <= y <= 1 for x, y, _ in stroke)
    assert stroke[0][2] == 0 and [t for _, _, t in stroke] == sorted(t for _, _, t in stroke)
    assert stroke[0][:2] == pytest.approx(DIGITS["7"][0][0], abs=0.02)
    stats = request(feedback_server, "GET", "/stats", headers=bearer()).body.decode()
    assert "1 entries waiting in the store (1 corrections" in stats
    assert entry["image"] in stats  # the thumbnail is the drawing


def test_right_stores_a_confirmation_and_one_answer_takes_one_entry(open_page, feedback_server):
    page = open_page(feedback_server, "/?auto=0")
    shown = answer_a_drawing(page, "1")
    page.click(RIGHT)
    page.wait_for_selector(ALL_SENT)
    assert not page.is_visible(RIGHT)  # no second tap on the same answer
    [entry] = export(feedback_server)
    assert entry["label"] == shown_label(shown) and entry["correct"] is True


def test_nothing_is_stored_without_a_tap_and_a_new_stroke_withdraws_the_question(open_page, feedback_server):
    page = open_page(feedback_server, "/?auto=0")
    answer_a_drawing(page)
    draw(page, [[(0.2, 0.9), (0.3, 0.95)]])
    assert page.is_hidden(FEEDBACK)
    page.click(PREDICT)
    page.wait_for_selector(SETTLED_ANSWER)
    assert page.is_visible(RIGHT)
    page.click(CLEAR)
    assert page.is_hidden(FEEDBACK)
    assert export(feedback_server) == []


def test_the_keyboard_and_a_screen_reader_can_give_feedback(open_page, feedback_server):
    page = open_page(feedback_server, "/?auto=0")
    shown = answer_a_drawing(page)
    page.get_by_role("button", name="Wrong: choose what I drew").focus()
    page.keyboard.press("Enter")
    focused = page.evaluate("document.activeElement.dataset.testid")
    assert focused == "label-0" and page.get_by_role("group", name="What did you draw?").is_visible()
    assert page.get_by_role("button", name="It is not a digit").count() == 1
    page.keyboard.press("Tab")
    page.keyboard.press("Space")  # label-1
    page.wait_for_selector(ALL_SENT)
    assert page.get_by_role("status").text_content() == "Thank you!"
    [entry] = export(feedback_server)
    assert (entry["label"], entry["model"]) == (1, shown["model"])


def test_touch_targets_are_large_and_never_cover_the_pad(open_page, feedback_server):
    page = open_page(feedback_server, "/?auto=0", has_touch=True)
    answer_a_drawing(page)
    page.click(WRONG)
    pad = page.locator(PAD).bounding_box()
    buttons = [RIGHT, WRONG, *(f'[data-testid="label-{label}"]' for label in [*range(10), "not-digit"])]
    for selector in buttons:
        box = page.locator(selector).bounding_box()
        assert box["width"] >= 44 and box["height"] >= 44, (selector, box)
        assert box["x"] >= pad["x"] + pad["width"] or box["y"] >= pad["y"] + pad["height"], selector
        assert box["x"] + box["width"] <= 800 and box["y"] + box["height"] <= 480, (selector, box)


def test_feedback_0_in_the_address_hides_the_buttons(open_page, feedback_server):
    page = open_page(feedback_server, "/?auto=0&feedback=0")
    answer_a_drawing(page)
    assert page.is_hidden(FEEDBACK) and page.get_attribute(RESULT, "data-feedback") == "off"


def test_a_server_with_feedback_off_hides_the_buttons(start_server, open_page, tmp_path):
    base_url = start_server(FEEDBACK="off", FEEDBACK_DB=str(tmp_path / "feedback.sqlite"))
    page = open_page(base_url, "/?auto=0")
    page.wait_for_selector(f'{RESULT}[data-feedback="off"]')
    answer_a_drawing(page)
    assert page.is_hidden(FEEDBACK)


@pytest.mark.console_errors(NETWORK_FAILURE)
def test_feedback_given_offline_survives_a_reload_and_is_sent_once_the_server_answers(open_page, feedback_server):
    page = open_page(feedback_server, None)
    page.route("**/feedback", lambda route: route.abort() if route.request.method == "POST" else route.continue_())
    page.goto("/?auto=0")
    answer_a_drawing(page)
    page.click(RIGHT)
    page.wait_for_selector('#feedback[data-queued="1"]')
    assert page.text_content(THANKS) == "Thank you!"
    page.reload()
    page.wait_for_selector(RUNTIME_READY)
    queued = page.evaluate("""async () => {
      const { createFeedbackQueue } = await import('/feedback-queue.js');
      return createFeedbackQueue({ url: '/nowhere' }).count();
    }""")
    assert queued == 1 and export(feedback_server) == []
    page.unroute("**/feedback")
    page.wait_for_selector(ALL_SENT, state="attached", timeout=20_000)  # the queue's next attempt
    assert len(export(feedback_server)) == 1


@pytest.mark.console_errors(NETWORK_FAILURE)
def test_an_entry_stored_but_unanswered_is_resent_and_still_stored_once(open_page, feedback_server):
    page = open_page(feedback_server, None)
    seen = []

    def store_then_lose_the_answer(route):
        if route.request.method != "POST":
            return route.continue_()
        seen.append(route.request.post_data_json["id"])
        if len(seen) == 1:
            route.fetch()  # the server stores it...
            return route.abort()  # ...but the answer never reaches the page
        route.continue_()

    page.route("**/feedback", store_then_lose_the_answer)
    page.goto("/?auto=0")
    answer_a_drawing(page)
    page.click(WRONG)
    page.click('[data-testid="label-not-digit"]')
    page.wait_for_selector(ALL_SENT, timeout=20_000)
    assert len(seen) == 2 and seen[0] == seen[1]
    [entry] = export(feedback_server)
    assert entry["id"] == seen[0] and entry["label"] == "not_digit"


def test_feedback_given_offline_survives_a_chromium_restart(browser, feedback_server, tmp_path):
    profile = tmp_path / "profile"

    def launch():
        context = browser.browser_type.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=CHROMIUM_ARGS, viewport=KIOSK_VIEWPORT, base_url=feedback_server)
        context.set_default_timeout(30_000)
        return context, context.pages[0] if context.pages else context.new_page()

    context, page = launch()
    page.route("**/feedback", lambda route: route.abort() if route.request.method == "POST" else route.continue_())
    page.goto("/?auto=0")
    answer_a_drawing(page)
    page.click(WRONG)
    page.click('[data-testid="label-5"]')
    page.wait_for_selector('#feedback[data-queued="1"]')
    context.close()  # the whole Chromium process ends
    assert export(feedback_server) == []
    context, page = launch()
    try:
        page.goto("/?auto=0")
        page.wait_for_selector(ALL_SENT, state="attached", timeout=20_000)
        assert [entry["label"] for entry in export(feedback_server)] == [5]
    finally:
        context.close()


@pytest.mark.console_errors(r"status of 401")
def test_the_operator_signs_in_with_the_token_form_and_sees_the_correction(open_page, feedback_server):
    page = open_page(feedback_server, "/?auto=0")
    shown = answer_a_drawing(page)
    page.click(WRONG)
    page.click(f'[data-testid="label-{another_label(shown)}"]')
    page.wait_for_selector(ALL_SENT)
    stats = open_page(feedback_server, "/stats")
    stats.fill("#token", "not the token")
    stats.click("button[type=submit]")
    assert stats.is_visible('[data-testid="login-error"]')
    stats.fill("#token", TOKEN)
    stats.click("button[type=submit]")
    stats.wait_for_selector('[data-testid="confusion"]')
    assert "1 entries waiting" in stats.text_content('[data-testid="pending"]')
    thumbnail = stats.locator('[data-testid="corrections"] img')
    assert thumbnail.count() == 1 and thumbnail.evaluate("(image) => image.complete && image.naturalWidth") > 0
    assert stats.locator('[data-testid="confusion"]').evaluate("(image) => image.naturalWidth") > 300
    assert stats.evaluate("getComputedStyle(document.body).margin") == "0px"  # the stylesheet loaded under the CSP
    assert stats.evaluate("document.cookie") == ""  # HttpOnly: the page's scripts never see the session
    # The correction awaits review: accepting it from its thumbnail is one click; signing out ends the session.
    assert "1 await review" in stats.text_content('[data-testid="pending"]')
    stats.click('[data-testid="accept"]')
    stats.wait_for_selector('text=Nothing awaits review.')
    assert "1 accepted" in stats.text_content('[data-testid="pending"]')
    assert [entry["review"] for entry in export(feedback_server)] == ["accepted"]
    stats.click('[data-testid="sign-out"]')
    stats.wait_for_selector("#token")
    assert stats.context.cookies() == []


def test_while_the_store_cannot_be_opened_the_buttons_hide_and_return_once_it_can(start_server, open_page, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")  # the store's directory cannot be made while a file holds its name
    base_url = start_server(FEEDBACK_DB=str(blocker / "feedback.sqlite"), FEEDBACK_STORE_RETRY_SECONDS=1)
    page = open_page(base_url, "/?auto=0")
    page.wait_for_selector(f'{RESULT}[data-feedback="off"]')
    answer_a_drawing(page)
    assert page.is_hidden(FEEDBACK)
    blocker.unlink()
    page.wait_for_selector(f'{RESULT}[data-feedback="on"]', state="attached", timeout=20_000)  # the page asks again
    answer_a_drawing(page, "1")
    page.click(RIGHT)
    page.wait_for_selector(ALL_SENT, state="attached")
    assert (tmp_path / "not-a-directory" / "feedback.sqlite").exists()


QUEUE_SCRIPT = """async ([url, entries]) => {
  const { createFeedbackQueue } = await import('/feedback-queue.js');
  const queue = createFeedbackQueue({ url });
  for (let index = 0; index < entries; index += 1) await queue.add({ id: `entry-${url}-${index}` });
  await queue.flush();
  return queue.count();
}"""


@pytest.mark.console_errors(NETWORK_FAILURE, r"status of 40[04]")
@pytest.mark.parametrize("status, left", [(400, 0), (413, 0), (404, 0), (503, 3), (429, 3)])
def test_the_queue_drops_what_the_server_refuses_for_good_and_keeps_the_rest(open_page, feedback_server, status, left):
    page = open_page(feedback_server, "/?auto=0&feedback=0", service_workers="block")
    page.wait_for_selector(RUNTIME_READY)  # the page's own loading is done before the context closes
    page.route("**/answers", lambda route: route.fulfill(status=status, json={"error": "no"},
                                                        headers={"Retry-After": "300"}))
    assert page.evaluate(QUEUE_SCRIPT, ["/answers", 3]) == left


@pytest.mark.console_errors(NETWORK_FAILURE)
def test_the_queue_is_bounded_and_lets_the_oldest_go(open_page, feedback_server):
    page = open_page(feedback_server, "/?auto=0&feedback=0", service_workers="block")
    page.wait_for_selector(RUNTIME_READY)
    page.route("**/away", lambda route: route.abort())
    limit = page.evaluate("async () => (await import('/feedback-queue.js')).MAX_QUEUED")
    assert page.evaluate(QUEUE_SCRIPT, ["/away", limit + 5]) == limit
    oldest = page.evaluate("""() => new Promise((resolve) => {
      indexedDB.open('kiosk-feedback').onsuccess = (event) => {
        const all = event.target.result.transaction('queue').objectStore('queue').getAll();
        all.onsuccess = () => resolve(Math.min(...all.result.map((entry) => Number(entry.id.split('-').at(-1)))));
      };
    })""")
    assert oldest == 5


def test_the_page_says_beside_the_buttons_that_a_tap_keeps_the_drawing(open_page, feedback_server):
    page = open_page(feedback_server, "/?auto=0")
    answer_a_drawing(page)
    note = page.locator('[data-testid="feedback-note"]')
    assert note.is_visible() and "keeps your drawing" in note.text_content()
    box, right = note.bounding_box(), page.locator(RIGHT).bounding_box()
    assert box["y"] + box["height"] <= 480 and abs(box["y"] - (right["y"] + right["height"])) < 40  # just below
    page.click(RIGHT)
    page.wait_for_selector(ALL_SENT)
    assert note.is_hidden()
