"""Kiosk lock-down: no long press or right click anywhere on the page opens Chromium's menu, and the page still works."""

import time

import pytest

from tests.browser_fixtures import CLEAR, DIGITS, PAD, PREDICT, RESULT, RUNTIME_READY, SETTLED_ANSWER, draw
from tests.test_browser import shown_answer

HOLD_SECONDS = 1.0
# Everything a finger can rest on: each control, the answer panel, and the page around them.
TARGETS = {
    "pad": PAD,
    "clear": CLEAR,
    "predict": PREDICT,
    "auto-predict switch": ".toggle",
    "answer panel": RESULT,
    "big digit": "#digit",
    "status line": "#status",
    "page background": None,
}

# Every contextmenu event that reaches the window, once the page's own listeners have run.
RECORD_MENUS = """() => {
  window.menus = [];
  window.addEventListener('contextmenu', (event) => window.menus.push({ prevented: event.defaultPrevented }));
}"""

# Each element of the page that lets a contextmenu event dispatched straight at it go unprevented.
ELEMENTS_ALLOWING_A_MENU = """() => [...document.querySelectorAll('html, body, body *')]
  .filter((element) => element.dispatchEvent(new MouseEvent('contextmenu', { bubbles: true, cancelable: true, button: 2 })))
  .map((element) => element.outerHTML.slice(0, 80))"""


def target_point(page, selector):
    """The middle of the element, or for the background a point in the page's margin, outside every control."""
    if selector is None:
        return 2, 2
    box = page.locator(selector).bounding_box()
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def long_press(page, point):
    """A finger down on `point`, held still, then lifted (CDP touch events, as a touchscreen sends them)."""
    session = page.context.new_cdp_session(page)
    try:
        x, y = point
        session.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y, "id": 1}]})
        time.sleep(HOLD_SECONDS)
        session.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    finally:
        session.detach()


@pytest.fixture
def kiosk(open_page, live_server):
    page = open_page(live_server, "/?auto=0", has_touch=True)
    page.wait_for_selector(RUNTIME_READY)
    page.evaluate(RECORD_MENUS)
    return page


def test_right_click_anywhere_opens_no_menu(kiosk):
    for name, selector in TARGETS.items():
        kiosk.mouse.click(*target_point(kiosk, selector), button="right")
        assert kiosk.evaluate("window.menus.splice(0)") == [{"prevented": True}], name


def test_every_element_prevents_its_contextmenu(kiosk):
    assert kiosk.evaluate(ELEMENTS_ALLOWING_A_MENU) == []


def test_long_press_everywhere_leaves_a_working_page(kiosk):
    for name, selector in TARGETS.items():
        long_press(kiosk, target_point(kiosk, selector))
    kiosk.click(CLEAR)
    menus = kiosk.evaluate("window.menus")
    assert all(menu["prevented"] for menu in menus), menus
    draw(kiosk, DIGITS["7"], "touch")
    kiosk.click(PREDICT)
    kiosk.wait_for_selector(SETTLED_ANSWER)
    assert shown_answer(kiosk)["digit"] == "7"
    assert kiosk.evaluate("getSelection().toString()") == ""


def test_page_text_cannot_be_selected(kiosk):
    for selector in ("#caption", "#status-text", CLEAR):
        kiosk.click(selector, click_count=3)
        assert kiosk.evaluate("getSelection().toString()") == "", selector
