"""People's numbers on the kiosk pad in real Chromium: 4-digit numbers in held-out hands, written as separate digits
with the mouse (bench/people_pad.py), are read by the page, as onnxruntime reads the very same pixels."""

import numpy as np
import pytest

from bench.people_pad import PAGE, pad_numbers, stroke_hands, write_and_read
from tests import browser_fixtures
from tests.browser_fixtures import RUNTIME_READY
from tests.conftest import ARTIFACTS_DIR

# Three numbers each from MNIST test digits and from handwriting fonts (seeded). The page shows five of the six
# right; the floor is that.
PER_SOURCE = {4: 3}
SOURCES = ("MNIST test", "handwriting fonts")
SHOWN_RIGHT_AT_LEAST = 5


@pytest.fixture(scope="module")
def written():
    return [number for number in pad_numbers(stroke_hands(60), PER_SOURCE) if number[0] in SOURCES]


def test_held_out_numbers_written_on_the_pad_are_read_by_the_page(open_page, live_server, manifest, written):
    import onnxruntime

    numbers = manifest["numbers"]
    variant = numbers.get("browser_variant", numbers["default_variant"])
    session = onnxruntime.InferenceSession(str(ARTIFACTS_DIR / numbers["variants"][variant]["file"]), providers=["CPUExecutionProvider"])
    fetch = [numbers["outputs"]["digits"]["name"], numbers["outputs"]["verdict"]["name"]]
    page = open_page(live_server, PAGE)
    page.wait_for_selector(RUNTIME_READY)
    shown_right = 0
    for _, hand, number, strokes in written:
        shown, read, pixels = write_and_read(page, browser_fixtures, strokes)
        assert shown["backend"] == read["backend"] == "browser"
        digits, verdict = session.run(fetch, {numbers["input"]["name"]: pixels})
        # The page's reader answers as onnxruntime does on the pixels it read.
        assert read["number"] == "".join(numbers["labels"][digit] for digit in digits), (hand, number)
        assert read["verdict"] == numbers["outputs"]["verdict"]["values"][int(verdict[0])]
        # What the page shows is its reader's answer, unless it refuses.
        assert shown["number"] == (read["number"] if read["verdict"] != "not_number" else ""), (hand, number)
        assert np.count_nonzero(pixels) > 0
        shown_right += shown["number"] == number
    assert len(written) == 6 and shown_right >= SHOWN_RIGHT_AT_LEAST, shown_right
