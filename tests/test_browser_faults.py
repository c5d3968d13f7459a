"""The kiosk page when things go wrong: the server goes away, fails, or changes model; the runtime cannot start."""

import json
import shutil
import threading

import pytest

from serve.app import create_app
from serve.server import create_server
from tests.browser_fixtures import DIGITS, OFFLINE_READY, PREDICT, RESULT, RUNTIME_FAILED, RUNTIME_READY, SETTLED_ANSWER, draw
from tests.conftest import model_files
from tests.server_fixtures import ServerThread
from tests.test_browser import shown_answer

BLOCKED_RESOURCE = r"Failed to load resource: net::ERR_FAILED"
SERVER_ERROR_500 = r"Failed to load resource: the server responded with a status of 500"

# The Cache API entries holding model files, whatever the page names its caches.
CACHED_MODEL_URLS = """async () => {
  const urls = [];
  for (const name of await caches.keys()) {
    for (const request of await (await caches.open(name)).keys()) urls.push(request.url);
  }
  return urls.filter((url) => url.endsWith('.onnx'));
}"""


class ServerOnPort(ServerThread):
    """A ServerThread on a chosen port, so that a restarted server keeps the page's origin and caches."""

    def __init__(self, app, port):
        self.server = create_server(app, host="127.0.0.1", port=port)
        self.base_url = f"http://127.0.0.1:{self.server.effective_port}"
        self.port = self.server.effective_port
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()


@pytest.fixture
def stoppable_server():
    """start(port=0, **config) -> a running ServerOnPort; whatever is still running is stopped afterwards."""
    servers = []

    def start(port=0, **config):
        servers.append(ServerOnPort(create_app(config or None), port))
        return servers[-1]

    yield start
    for server in servers:
        if not server.stopping.is_set():
            server.stop()


def page_shas(manifest):
    """The sha256 of every file the page runs and keeps offline: the digit reader's, and the number reader's if any."""
    sections = [manifest, *([manifest["numbers"]] if "numbers" in manifest else [])]
    return sorted(section["variants"][page_variant(section)]["sha256"] for section in sections)


def cached_shas(page):
    """The sha256 of every model file in the page's caches."""
    return sorted(url.rsplit("-", 1)[-1].removesuffix(".onnx") for url in page.evaluate(CACHED_MODEL_URLS))


def page_variant(manifest):
    return manifest.get("browser_variant", manifest["default_variant"])


def page_model_id(manifest):
    """The model an in-page answer names: the manifest's id, and the variant when the page runs another than the default."""
    variant = page_variant(manifest)
    return manifest["model_id"] + ("" if variant == manifest["default_variant"] else f"-{variant}")


@pytest.fixture
def new_release(tmp_path, manifest, model_path):
    """Artifacts for "a new model": the file the page does not run yet, for page and server, under its own model id."""
    for file_name in model_files(manifest):
        shutil.copy(model_path.parent / file_name, tmp_path)
    other = next(name for name in manifest["variants"] if name != page_variant(manifest))
    release = dict(manifest, default_variant=other, browser_variant=other,
                   model_id=f"digits-{manifest['variants'][other]['sha256'][:12]}")
    (tmp_path / "manifest.json").write_text(json.dumps(release))
    return tmp_path, release


def predict_drawn(page, digit):
    draw(page, DIGITS[digit])
    page.click(PREDICT)
    page.wait_for_selector(SETTLED_ANSWER)
    return shown_answer(page)


def test_page_starts_and_answers_with_the_server_gone_after_one_visit(open_page, stoppable_server):
    server = stoppable_server()
    page = open_page(server.base_url, "/?auto=0")
    page.wait_for_selector(OFFLINE_READY)
    # The favicon too (Chromium lists it among the page's resource entries, which the page caches).
    assert page.evaluate("async () => Boolean(await caches.match(document.querySelector('link[rel~=\"icon\"]').href))")
    server.stop()
    page.reload()
    page.wait_for_selector(RUNTIME_READY)
    answer = predict_drawn(page, "7")
    assert (answer["digit"], answer["backend"]) == ("7", "browser")


@pytest.mark.console_errors(BLOCKED_RESOURCE)
def test_page_asks_the_server_when_the_runtime_cannot_load(open_page, live_server):
    # Playwright's routes do not see a service worker's requests; this first visit needs none.
    page = open_page(live_server, None, service_workers="block")
    page.route("**/*.wasm", lambda route: route.abort())
    page.goto("/?auto=0")
    page.wait_for_selector(RUNTIME_FAILED)
    answer = predict_drawn(page, "4")
    assert (answer["digit"], answer["backend"]) == ("4", "server")


@pytest.mark.console_errors(BLOCKED_RESOURCE, SERVER_ERROR_500)
def test_server_error_is_retried_and_then_answered(open_page, live_server):
    page = open_page(live_server, None, service_workers="block")
    page.route("**/*.wasm", lambda route: route.abort())
    calls = []

    def fail_once(route):
        calls.append(route.request.url)
        if len(calls) == 1:
            route.fulfill(status=500, content_type="application/json", body='{"error": "internal error"}')
        else:
            route.continue_()

    page.route("**/predict", fail_once)
    page.goto("/?auto=0")
    page.wait_for_selector(RUNTIME_FAILED)
    answer = predict_drawn(page, "7")
    assert (answer["digit"], answer["backend"], len(calls)) == ("7", "server", 2)


@pytest.mark.console_errors(BLOCKED_RESOURCE, SERVER_ERROR_500)
def test_failing_server_gets_a_clear_message_and_predict_tries_again(open_page, live_server):
    page = open_page(live_server, None, service_workers="block")
    page.route("**/*.wasm", lambda route: route.abort())
    page.route("**/predict", lambda route: route.fulfill(status=500, content_type="application/json", body="{}"))
    page.goto("/?auto=0")
    page.wait_for_selector(RUNTIME_FAILED)
    draw(page, DIGITS["7"])
    page.click(PREDICT)
    page.wait_for_selector(f'{RESULT}[data-state="error"]')
    message = page.locator("#caption").text_content()
    assert "500" in message and "try again" in message
    assert shown_answer(page)["digit"] is None
    assert message in page.locator("#announcer").text_content()

    page.unroute("**/predict")
    page.click(PREDICT)
    page.wait_for_selector(SETTLED_ANSWER)
    assert shown_answer(page)["digit"] == "7"


def test_new_model_is_used_from_the_next_load_and_never_mixed(open_page, stoppable_server, manifest, new_release):
    release_dir, release = new_release
    server = stoppable_server()
    page = open_page(server.base_url, "/?auto=0")
    page.wait_for_selector(OFFLINE_READY)
    assert predict_drawn(page, "7")["model"] == page_model_id(manifest)

    server.stop()
    stoppable_server(server.port, ARTIFACTS_DIR=str(release_dir))
    # The open page keeps answering with the model and manifest it loaded together.
    page.click(PREDICT)
    page.wait_for_selector(SETTLED_ANSWER)
    answer = shown_answer(page)
    assert (answer["digit"], answer["backend"], answer["model"]) == ("7", "browser", page_model_id(manifest))

    page.reload()
    page.wait_for_selector(RUNTIME_READY)
    answer = predict_drawn(page, "7")
    assert (answer["digit"], answer["backend"], answer["model"]) == ("7", "browser", release["model_id"])
    assert release["model_id"] in page.locator("#status").text_content()
    # Only the new model is kept for offline starts (beside the number reader's, which did not change).
    assert cached_shas(page) == page_shas(release)


def test_idle_kiosk_takes_up_a_newly_deployed_model(open_page, stoppable_server, manifest, new_release):
    release_dir, release = new_release
    server = stoppable_server()
    page = open_page(server.base_url, "/?idle=1")
    page.wait_for_selector(OFFLINE_READY)
    assert manifest["model_id"] in page.locator("#status").text_content()
    server.stop()
    stoppable_server(server.port, ARTIFACTS_DIR=str(release_dir))
    # Nobody touches the kiosk: it reloads by itself when idle and runs the new model.
    page.wait_for_function(
        "(modelId) => document.querySelector('#status').textContent.includes(modelId)", arg=release["model_id"]
    )
    assert page.locator("#status").get_attribute("data-runtime") == "ready"
