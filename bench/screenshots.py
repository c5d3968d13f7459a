"""Pictures of the kiosk page for the README, from the real page: `python -m bench.screenshots [--out docs/img]`.

Our server (`python -m serve`) serves the page; headless Chromium shows it on the Raspberry Pi touchscreen's 800x480
(and on a 1024x600 one), a 7 drawn in digit mode and a number written in number mode with the mouse, once the
in-browser reader answers. The launcher's own screenshots, full screen under Xvfb, come from `make check-launcher`
(tests/test_launcher.py, LAUNCHER_SHOTS=docs/img).
"""

import argparse
from pathlib import Path

from bench.models import pad_image, png_bytes, mnist_test
from bench.report import ROOT
from bench.servers import SERVE_ENVIRONMENT, ServerProcess

SCREENS = {"800x480": {"width": 800, "height": 480}, "1024x600": {"width": 1024, "height": 600}}
NUMBER = "1870"
SETTLED = '[data-testid="result"][data-verdict][data-backend="browser"]:not(.stale):not(.busy)'


def shoot(browser, fixtures, base_url, viewport, mode, path):
    context = browser.new_context(base_url=base_url, viewport=viewport)
    try:
        context.set_default_timeout(120_000)
        page = context.new_page()
        page.goto(f"/?mode={mode}")
        page.wait_for_selector(fixtures.RUNTIME_READY)
        page.wait_for_selector(fixtures.OFFLINE_READY)
        if mode == "number":
            box = page.locator(fixtures.PAD).bounding_box()
            fixtures.draw(page, fixtures.number_strokes(NUMBER, box["width"] / box["height"]))
        else:
            fixtures.draw(page, fixtures.DIGITS["7"])
        page.wait_for_selector(SETTLED)
        page.mouse.move(0, 0)
        page.wait_for_timeout(300)  # the bars' transition
        page.screenshot(path=path)
    finally:
        context.close()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img", help="folder for the PNGs")
    parser.add_argument("--work-dir", type=Path, default=ROOT / "bench" / "out", help="where the server's log goes")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    from tests import browser_fixtures as fixtures  # Chromium's path and flags, and how to draw, defined once

    args.out.mkdir(parents=True, exist_ok=True)
    images, _ = mnist_test(1)
    server = ServerProcess("ours", ["-m", "serve", "--port", "0"], args.work_dir / "logs" / "screenshots-serve.log", SERVE_ENVIRONMENT)
    with server.start(png_bytes(pad_image(images[0]))), sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=fixtures.CHROMIUM, args=fixtures.CHROMIUM_ARGS)
        for screen, viewport in SCREENS.items():
            for mode in ("digit", "number"):
                path = args.out / f"kiosk-{mode}-{screen}.png"
                shoot(browser, fixtures, f"http://127.0.0.1:{server.port}", viewport, mode, path)
                print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
        browser.close()


if __name__ == "__main__":
    main()
