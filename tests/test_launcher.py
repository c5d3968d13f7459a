"""The kiosk as deployed: deploy/kiosk-browser.sh, with its own flags, in a real X server (Debian's Xvfb at the Pi
touchscreen's 800x480, with Openbox as the X11 session's window manager) against a real `make serve`, with deploy/chromium-policies installed as deploy/README.md says.

Run by `make check-launcher` (as root, CHECK_LAUNCHER=1); `make test` leaves it out. Nothing on the machine is
touched: the launcher runs in a private mount namespace (`unshare --mount`) where a copy of /etc/chromium holding
the policy, its kiosk origin templated to this test's port, is bind-mounted over the real one; it runs as `nobody`,
as a desktop user, with a profile and home in a temporary folder. xdotool moves the mouse (the policies close the
debugging pipe, so no CDP); what the screen shows is compared with the same page in headless Chromium.
"""

import http.server
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageGrab

from tests.browser_fixtures import DIGITS, OFFLINE_READY, PAD, RESULT, RUNTIME_READY, densify, draw
from tests.conftest import ROOT
from tests.feedback_helpers import TOKEN, export
from tests.server_fixtures import request

SCREEN = (800, 480)  # the official Raspberry Pi touchscreen
USER = "nobody"  # an unprivileged desktop user, as on the Pi (Chromium refuses to sandbox itself as root)
POLICY = ROOT / "deploy" / "chromium-policies" / "digit-kiosk.json"
LAUNCHER = ROOT / "deploy" / "kiosk-browser.sh"
START_TIMEOUT_S = 120
# Mean absolute difference (0-255) under which a region of the screen shows what headless Chromium shows.
SAME_PICTURE = 12.0
PAGE_BACKGROUND = (0x0E, 0x11, 0x16)  # style.css's --background, the theme colour of index.html
# Where the two screenshots deploy/README.md shows go (LAUNCHER_SHOTS=docs/img renews them); the others stay in the run's folder.
SHOTS = Path(os.environ["LAUNCHER_SHOTS"]) if os.environ.get("LAUNCHER_SHOTS") else None



@pytest.fixture(autouse=True)
def as_root():
    # Never skipped: `make check-launcher` runs it with sudo; without root it fails and says why.
    assert os.geteuid() == 0, "the launcher check needs root (unshare, mount, runuser): run make check-launcher"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def free_display():
    return next(number for number in range(90, 200) if not Path(f"/tmp/.X11-unix/X{number}").exists()
                and not Path(f"/tmp/.X{number}-lock").exists())


def wait_until(check, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def stop_group(process, timeout=10):
    """End a process we started in a session of its own, with everything it started."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout)


def descendants(pid):
    """(pid, name, parent) of every process below `pid`."""
    table = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except OSError:
            continue
        table[int(fields["Pid"])] = (fields["Name"].strip(), int(fields["PPid"]))
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        for child, (name, ppid) in table.items():
            if ppid == parent:
                found.append((child, name, ppid))
                frontier.append(child)
    return found


class Server:
    """`make serve` on a port of its own, with a feedback store and an operator token, in a session of its own."""

    def __init__(self, port, folder):
        self.port, self.folder = port, folder
        self.process = None

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        environment = {**os.environ, "SERVE_FEEDBACK_DB": str(self.folder / "feedback.sqlite"), "SERVE_ADMIN_TOKEN": TOKEN}
        self.process = subprocess.Popen(["make", "--no-print-directory", "serve", f"ARGS=--port {self.port} --workers 1"],
                                        cwd=ROOT, env=environment, start_new_session=True,
                                        stdout=open(self.folder / "serve.log", "ab"), stderr=subprocess.STDOUT)
        wait_until(self.healthy, START_TIMEOUT_S, "make serve")

    def healthy(self):
        try:
            return request(self.base_url, "GET", "/healthz").status == 200
        except OSError:
            return False

    def stop(self):
        stop_group(self.process)


class Kiosk:
    """Xvfb, and deploy/kiosk-browser.sh in a private mount namespace with the policies installed."""

    def __init__(self, folder, url, origin):
        self.folder, self.url, self.origin = folder, url, origin
        self.display = f":{free_display()}"
        self.home = folder / "home"
        self.profile = self.home / ".local" / "share" / "digit-kiosk" / "chromium"  # the launcher's default
        self.xvfb = self.window_manager = self.launcher = None

    def install_policies(self):
        """A copy of /etc/chromium with the policy installed by deploy/README.md's command, its origin this test's."""
        etc = self.folder / "etc-chromium"
        if Path("/etc/chromium").is_dir():
            shutil.copytree("/etc/chromium", etc, symlinks=True)
        policy = json.loads(POLICY.read_text())
        policy["URLAllowlist"] = [self.origin]
        templated = self.folder / "digit-kiosk.json"
        templated.write_text(json.dumps(policy, indent=2))
        subprocess.run(["install", "-D", "-m", "644", templated, etc / "policies" / "managed" / "digit-kiosk.json"], check=True)
        return etc

    def start(self):
        self.home.mkdir(mode=0o700)
        shutil.chown(self.home, USER)
        etc = self.install_policies()
        self.xvfb = subprocess.Popen(["Xvfb", self.display, "-screen", "0", f"{SCREEN[0]}x{SCREEN[1]}x24", "-nolisten", "tcp"],
                                     start_new_session=True, stdout=subprocess.DEVNULL, stderr=open(self.folder / "xvfb.log", "ab"))
        wait_until(lambda: Path(f"/tmp/.X11-unix/X{self.display[1:]}").exists(), 20, "Xvfb")
        # The desktop session's window manager (Openbox, as in the Pi's X11 / LXDE session) grants --kiosk its full screen.
        self.window_manager = subprocess.Popen(["openbox", "--sm-disable"], env={**os.environ, "DISPLAY": self.display},
                                               start_new_session=True, stdout=subprocess.DEVNULL,
                                               stderr=open(self.folder / "openbox.log", "ab"))
        # The session starts its autostart entries once the window manager runs: so does this test.
        wait_until(self.window_manager_runs, 20, "Openbox")
        # The launcher as the desktop session starts it, with the policy directory in place only in its own namespace.
        script = ('mount --bind "$1" /etc/chromium && exec runuser -u "$2" -- env -i PATH=/usr/bin:/bin '
                  'DISPLAY="$3" HOME="$4" KIOSK_URL="$5" /bin/sh "$6"')
        self.launcher = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", etc, USER, self.display,
             self.home, self.url, LAUNCHER], start_new_session=True,
            stdout=open(self.folder / "launcher.log", "ab"), stderr=subprocess.STDOUT)

    def window_manager_runs(self):
        found = subprocess.run(["xprop", "-root", "_NET_SUPPORTING_WM_CHECK"], capture_output=True, text=True,
                               env={**os.environ, "DISPLAY": self.display})
        return "window id" in found.stdout

    def screenshot(self, name=None):
        image = ImageGrab.grab(xdisplay=self.display).convert("RGB")
        if name:
            image.save(self.folder / f"{name}.png")
        return image

    def xdotool(self, *arguments):
        subprocess.run(["xdotool", *map(str, arguments)], check=True, env={**os.environ, "DISPLAY": self.display})

    def draw(self, strokes, box):
        for stroke in strokes:
            points = [(round(box["x"] + x * box["width"]), round(box["y"] + y * box["height"])) for x, y in densify(stroke)]
            self.xdotool("mousemove", *points[0], "mousedown", 1)
            for point in points[1:]:
                self.xdotool("mousemove", *point)
                time.sleep(0.01)
            self.xdotool("mouseup", 1)

    def click(self, box, button=1):
        self.xdotool("mousemove", round(box["x"] + box["width"] / 2), round(box["y"] + box["height"] / 2), "click", button)

    def browsers(self):
        """The Chromium main processes the launcher started (its own children)."""
        processes = descendants(self.launcher.pid)
        launchers = {pid for pid, name, _ in processes if name == "sh"}
        return [pid for pid, name, parent in processes if parent in launchers and name.startswith("chromium")]

    def windows(self):
        found = subprocess.run(["xdotool", "search", "--onlyvisible", "--class", "chromium"], capture_output=True, text=True,
                               env={**os.environ, "DISPLAY": self.display})
        return found.stdout.split()

    def stop(self):
        for process in (self.launcher, self.window_manager, self.xvfb):
            if process:
                stop_group(process)


def keep(screen, name):
    if SHOTS:
        screen.save(SHOTS / name)


def region(image, box, inset=0):
    left, top = round(box["x"]) + inset, round(box["y"]) + inset
    right, bottom = round(box["x"] + box["width"]) - inset, round(box["y"] + box["height"]) - inset
    return np.asarray(image.crop((left, top, right, bottom)), np.float32)


def difference(image, reference, box):
    return float(np.abs(region(image, box) - region(reference, box)).mean())


BOXES = f"""() => Object.fromEntries(Object.entries({{ pad: '{PAD}', status: '#status', digit: '#digit', clear: '[data-testid="clear"]',
  right: '[data-testid="right"]', caption: '#caption' }}).map(([name, selector]) => {{
  const box = document.querySelector(selector).getBoundingClientRect();
  return [name, {{ x: box.x, y: box.y, width: box.width, height: box.height }}];
}}))"""


@pytest.fixture(scope="module")
def folder():
    path = Path(tempfile.mkdtemp(prefix="launcher-"))
    path.chmod(0o755)  # `nobody` reaches its home through it
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def server(folder):
    server = Server(free_port(), folder)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def reference(browser, server):
    """The page in headless Chromium at the kiosk's size: ready, then answering a 7 in the browser; screenshots and boxes."""
    context = browser.new_context(base_url=server.base_url, viewport={"width": SCREEN[0], "height": SCREEN[1]})
    try:
        page = context.new_page()
        page.goto("/")
        page.wait_for_selector(RUNTIME_READY)
        page.wait_for_selector(OFFLINE_READY)
        page.mouse.move(0, 0)
        ready = Image.open(io.BytesIO(page.screenshot())).convert("RGB")
        boxes = page.evaluate(BOXES)
        draw(page, DIGITS["7"])
        page.wait_for_selector(f'{RESULT}[data-digit="7"][data-backend="browser"]:not(.stale)')
        page.wait_for_selector('[data-testid="right"]', state="visible")
        page.mouse.move(0, 0)
        answered = Image.open(io.BytesIO(page.screenshot())).convert("RGB")
        answered_boxes = page.evaluate(BOXES)
    finally:
        context.close()
    return {"ready": ready, "answered": answered, "boxes": boxes, "answered_boxes": answered_boxes}


@pytest.fixture(scope="module")
def kiosk(folder, server, reference):
    kiosk = Kiosk(folder, f"{server.base_url}/", server.base_url)
    kiosk.start()
    yield kiosk
    kiosk.stop()


def shows_the_ready_page(kiosk, reference):
    """The status line reads as the reference's: the model runs in the browser and the page works offline."""
    screen = kiosk.screenshot()
    screen.save(kiosk.folder / "last.png")  # what the screen showed, if this times out
    return difference(screen, reference["ready"], reference["boxes"]["status"]) < SAME_PICTURE and screen


def answer_a_seven(kiosk, reference):
    kiosk.click(reference["boxes"]["clear"])
    kiosk.draw(DIGITS["7"], reference["boxes"]["pad"])
    box = reference["answered_boxes"]["digit"]

    def shows_a_seven():
        screen = kiosk.screenshot()
        screen.save(kiosk.folder / "last.png")
        return difference(screen, reference["answered"], box) < SAME_PICTURE and screen

    return wait_until(shows_a_seven, 30, "the big 7 of the reference answer")


def test_the_kiosk_comes_up_full_screen_with_no_browser_chrome(kiosk, reference):
    screen = wait_until(lambda: shows_the_ready_page(kiosk, reference), START_TIMEOUT_S, "the kiosk page, model ready")
    screen.save(kiosk.folder / "ready.png")
    assert screen.size == SCREEN
    assert len(kiosk.windows()) == 1
    # Nothing above the page (no address bar, no infobar): the screen is the page, pixel for pixel, where no text is.
    assert difference(screen, reference["ready"], {"x": 0, "y": 0, "width": SCREEN[0], "height": 6}) < 1
    assert difference(screen, reference["ready"], reference["boxes"]["pad"]) < 1
    assert tuple(screen.getpixel((1, 1))) == PAGE_BACKGROUND


def test_a_digit_drawn_with_the_mouse_is_read_and_confirmed(kiosk, reference, server):
    wait_until(lambda: shows_the_ready_page(kiosk, reference), START_TIMEOUT_S, "the kiosk page, model ready")
    screen = answer_a_seven(kiosk, reference)
    keep(screen, "launcher-answer.png")
    kiosk.click(reference["answered_boxes"]["right"])
    entries = wait_until(lambda: export(server.base_url), 10, "the confirmation in the feedback store")
    assert [(entry["predicted"], entry["label"], entry["correct"]) for entry in entries] == [(7, 7, True)]


def test_no_menu_no_devtools_no_printing_no_saving(kiosk, reference):
    wait_until(lambda: shows_the_ready_page(kiosk, reference), START_TIMEOUT_S, "the kiosk page, model ready")
    kiosk.click(reference["boxes"]["clear"])
    time.sleep(1)
    before = kiosk.screenshot()
    kiosk.click(reference["boxes"]["status"], button=3)  # a right click
    status = reference["boxes"]["status"]
    kiosk.xdotool("mousemove", round(status["x"] + 5), round(status["y"] + 5), "mousedown", 1, "sleep", 1.5, "mouseup", 1)
    kiosk.xdotool("mousemove", 0, 0)
    full = {"x": 0, "y": 0, "width": SCREEN[0], "height": SCREEN[1]}
    assert difference(kiosk.screenshot(), before, full) < 1  # no menu from the right click or the long press
    for keys in ("F12", "ctrl+shift+i", "ctrl+shift+j", "ctrl+p", "ctrl+s"):
        kiosk.xdotool("key", keys)
        time.sleep(1.5)
        if keys == "F12":
            keep(kiosk.screenshot(), "launcher-devtools-blocked.png")
        # No DevTools window, no print preview, no save dialog: at most Chromium's "blocked by your organization" notice,
        # which Escape dismisses, leaving the kiosk page as it was.
        assert len(kiosk.windows()) == 1, keys
        kiosk.xdotool("key", "Escape")
        time.sleep(1)
        assert difference(kiosk.screenshot(), before, full) < 1, keys


def test_another_origin_is_refused(kiosk, reference, server, folder):
    wait_until(lambda: shows_the_ready_page(kiosk, reference), START_TIMEOUT_S, "the kiosk page, model ready")
    visits = []

    class Counting(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            visits.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"<title>elsewhere</title>")

        def log_message(self, *arguments):
            pass

    def hand_over(url):
        """An address handed to the running kiosk, as a second launch or a link would: its browser opens it in a tab."""
        subprocess.run(["nsenter", "--target", str(kiosk.browsers()[0]), "--mount", "runuser", "-u", USER, "--", "env", "-i",
                        f"DISPLAY={kiosk.display}", f"HOME={kiosk.home}", "PATH=/usr/bin:/bin", "chromium",
                        f"--user-data-dir={kiosk.profile}", url], check=True, timeout=30, capture_output=True)
        time.sleep(5)
        kiosk.xdotool("key", "ctrl+w")  # close that tab, back to the kiosk page
        time.sleep(1)

    def health_checks():
        return (folder / "serve.log").read_text(errors="replace").count("GET /healthz 200")

    elsewhere = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Counting)
    threading.Thread(target=elsewhere.serve_forever, daemon=True).start()
    try:
        # The control: an address of the kiosk's own origin handed over this way is opened, and reaches its server...
        before = health_checks()
        hand_over(f"{server.base_url}/healthz")
        assert health_checks() == before + 1
        # ...while one of another origin is blocked by policy: not one request reaches that server.
        hand_over(f"http://127.0.0.1:{elsewhere.server_address[1]}/")
        assert visits == []
    finally:
        elsewhere.shutdown()
    assert shows_the_ready_page(kiosk, reference)


def test_chromium_restarted_offline_comes_back_from_its_cache_and_answers(kiosk, reference, server):
    wait_until(lambda: shows_the_ready_page(kiosk, reference), START_TIMEOUT_S, "the kiosk page, model ready")
    server.stop()
    (browser,) = kiosk.browsers()
    os.kill(browser, signal.SIGTERM)
    wait_until(lambda: kiosk.browsers() and kiosk.browsers() != [browser], 60, "the launcher to start Chromium again")
    # The page is back from its offline copy, its model running in the browser, and answers there.
    wait_until(lambda: shows_the_ready_page(kiosk, reference), START_TIMEOUT_S, "the page from the cache, model ready")
    screen = answer_a_seven(kiosk, reference)
    screen.save(kiosk.folder / "offline.png")
