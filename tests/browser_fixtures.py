"""Browser fixtures (owned by the web engineer): Debian's Chromium driven by Playwright.

- `browser`: one headless Chromium (/usr/bin/chromium) for the whole session.
- `open_page(base_url, path="/", **context_options)`: a page in a fresh browser context (fresh caches, no
  service worker yet), opened at `path` and, for the kiosk page, wired (PAGE_WIRED; path=None: not yet, so routes can be set first). Any console error or uncaught exception fails the test, except those a test
  expects with `@pytest.mark.console_errors("regex", ...)`.
- `page`: `open_page` on the live server's kiosk page.
- `draw(page, strokes, pointer="mouse" | "touch")`: real multi-point strokes on the pad; `DIGITS` has
  strokes for a few digits, in pad units (0..1 of the pad's box); `number_strokes(number, pad_aspect)` writes
  several of them side by side on the wide pad of number mode.
"""

import math
import re

import pytest
from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
# The official Raspberry Pi touchscreen.
KIOSK_VIEWPORT = {"width": 800, "height": 480}
TIMEOUT_MS = 30_000

PAD = '[data-testid="pad"]'
PREDICT = '[data-testid="predict"]'
CLEAR = '[data-testid="clear"]'
RESULT = '[data-testid="result"]'
# The answer on screen belongs to the drawing on the pad (no stroke since it was computed).
SETTLED_ANSWER = f"{RESULT}[data-verdict]:not(.stale)"
RUNTIME_READY = '#status[data-runtime="ready"]'
RUNTIME_FAILED = '#status[data-runtime="failed"]'
OFFLINE_READY = '#status[data-offline="ready"]'
# main.js has wired the pad and the buttons: the pad knows its size and pen (the manifest's, fetched on a first
# visit, kept by the page for a reload) and takes ink; the buttons answer (their work waits for kiosk.js).
PAGE_WIRED = 'html[data-page="wired"]'


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "console_errors(*patterns): console errors matching these regexes are expected, not failures"
    )


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def open_page(browser, request):
    expected = [re.compile(pattern) for marker in request.node.iter_markers("console_errors") for pattern in marker.args]
    contexts, errors = [], []

    def record(kind, text):
        if not any(pattern.search(text) for pattern in expected):
            errors.append(f"{kind}: {text}")

    def open_page(base_url, path="/", **context_options):
        options = {"viewport": KIOSK_VIEWPORT, **context_options}
        context = browser.new_context(base_url=base_url, **options)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        page.on("console", lambda message: message.type == "error" and record("console error", message.text))
        page.on("pageerror", lambda error: record("uncaught exception", str(error)))
        if path is not None:
            page.goto(path)
            page.wait_for_function(f"() => !document.querySelector('.kiosk') || document.querySelector('{PAGE_WIRED}')")
        return page

    yield open_page
    for context in contexts:
        context.close()
    if errors:
        pytest.fail("the page logged errors:\n" + "\n".join(errors))


@pytest.fixture
def page(open_page, live_server):
    return open_page(live_server)


def draw(page, strokes, pointer="mouse"):
    """Draw `strokes` (lists of (x, y) in pad units) with the mouse, or with a finger through CDP touch events."""
    box = page.locator(PAD).bounding_box()

    def to_screen(point):
        return box["x"] + point[0] * box["width"], box["y"] + point[1] * box["height"]

    if pointer == "mouse":
        for stroke in strokes:
            page.mouse.move(*to_screen(stroke[0]))
            page.mouse.down()
            for point in densify(stroke)[1:]:
                page.mouse.move(*to_screen(point))
            page.mouse.up()
        return
    session = page.context.new_cdp_session(page)
    try:
        for stroke in strokes:
            points = [to_screen(point) for point in densify(stroke)]
            touch(session, "touchStart", points[0])
            for point in points[1:]:
                touch(session, "touchMove", point)
            session.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    finally:
        session.detach()


def touch(session, kind, point):
    x, y = point
    session.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [{"x": x, "y": y, "id": 1}]})


def densify(stroke, step=0.05):
    """The stroke with extra points so no two successive samples are more than `step` apart, like a real pointer."""
    points = [stroke[0]]
    for (x0, y0), (x1, y1) in zip(stroke, stroke[1:]):
        count = max(1, math.ceil(math.dist((x0, y0), (x1, y1)) / step))
        points += [(x0 + (x1 - x0) * i / count, y0 + (y1 - y0) * i / count) for i in range(1, count + 1)]
    return points


def arc(cx, cy, rx, ry, start_degrees, end_degrees, count=24):
    angles = [math.radians(start_degrees + (end_degrees - start_degrees) * i / (count - 1)) for i in range(count)]
    return [(cx + rx * math.cos(angle), cy + ry * math.sin(angle)) for angle in angles]


# Each digit as a person would draw it: strokes of points in pad units.
DIGITS = {
    "0": [arc(0.5, 0.5, 0.2, 0.3, -90, 270, 32)],
    "1": [[(0.52, 0.18), (0.5, 0.82)]],
    "2": [arc(0.5, 0.36, 0.18, 0.16, 200, 360, 14)[:-1] + [(0.68, 0.36), (0.32, 0.8), (0.7, 0.8)]],
    "3": [arc(0.48, 0.34, 0.17, 0.15, -160, 90, 18) + arc(0.48, 0.65, 0.19, 0.16, -90, 160, 18)],
    "4": [[(0.55, 0.18), (0.3, 0.6), (0.72, 0.6)], [(0.6, 0.38), (0.6, 0.84)]],
    "7": [[(0.3, 0.2), (0.7, 0.2), (0.45, 0.85)]],
    "8": [arc(0.5, 0.33, 0.14, 0.14, 90, 450, 20) + arc(0.5, 0.65, 0.17, 0.17, -90, 270, 22)],
}


def number_strokes(number, pad_aspect):
    """The strokes of `number` written left to right on a pad `pad_aspect` times as wide as high, in pad units.

    Each digit of DIGITS (drawn for a square pad) goes into a square cell, the cells side by side and centred, shrunk
    when the number would not fit; the digits' ink keeps about the middle 40% of each cell, so neighbours stay apart.
    """
    cell_width = min(1 / pad_aspect, 0.95 / len(number))  # of the pad's width
    cell_height = cell_width * pad_aspect  # of the pad's height: the cell is square on screen
    left = (1 - cell_width * len(number)) / 2
    top = (1 - cell_height) / 2
    return [
        [(left + (index + x) * cell_width, top + y * cell_height) for x, y in stroke]
        for index, digit in enumerate(number)
        for stroke in DIGITS[digit]
    ]
