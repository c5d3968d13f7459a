"""Browser: the kiosk page in headless Chromium (Playwright) — first visit, cached reload, warm prediction per variant, CPU throttling, bytes.

    python -m bench.browser [--quick] [--numbers-only | --slow-only]

Our server runs as `python -m serve` (logging each request) and Chromium loads the page from it.
- Cold: a fresh browser context (empty caches, no service worker); a digit is drawn as soon as the pad
  is there and Predict pressed; the times come from the page's own clock (ms since navigation).
- Reload: as the kiosk runs, in a profile on disk (HTTP cache, service worker, Cache API and V8's code
  cache all kept): a first visit, then reloads with everything cached, to the in-browser model ready.
- Warm: in a page whose model is running, the page's own modules read the pad and classify it, many
  times over: "pad pixels -> probabilities", readPixels() included; once per model variant of the manifest.
- Throttled: CDP Emulation.setCPUThrottlingRate 4 and 10 (rough stand-ins for a Pi 4 and a Pi 3 / Zero 2 W;
  it slows the page's main thread, not the inference worker nor the browser's background compiler threads).
- Bytes: a byte-counting TCP proxy sits between Chromium and the server for a first and a second visit.
- Slow CPU (bench/browser_slow.py, alone with --slow-only; root): the whole browser in a cgroup at 50% of one
  core, and CDP 10× for the main thread's own figures; medians of 5 runs with their range.
- Numbers: the number reader's files (and the digit reader's, alike) run directly with onnxruntime-web in a page
  of ours, on a composed 4-digit number the size of the number pad, many times over; the model alone, no page UI.
"""

import asyncio
import base64
import os
import re
import tempfile
import threading
import time

import numpy as np

from bench.measure import median, percentile
from bench.models import load_manifest, mnist_test, pad_image, png_bytes
from bench.number_sets import compose_number, on_pad
from bench.report import ROOT, Section, Target, format_bytes, run_section, script_command, table
from bench.servers import SERVE_ENVIRONMENT, ServerProcess
from reader.contract import NUMBER_PAD_HEIGHT, NUMBER_PAD_WIDTH, PAD_SIDE

WARM_TARGET_MS = 3.0
NUMBER_WARM_TARGET_MS = 15.0
NUMBER_LENGTH = 4
MODELS_WARMUP = 10  # untimed runs first: V8 optimises a wasm function only after it has run a while
MODELS_PREFIX = "/bench-models/"  # the bench hands the page model files under this path itself (page.route)
THROTTLED_TARGET_MS = 10.0
FIRST_ANSWER_TARGET_MS = 1500.0
RELOAD_TARGET_MS = 2000.0
THROTTLE_RATE = 4  # the warm-prediction target's
SLOW_RATE = 10  # the cached-reload target's: roughly a Pi 3 or Zero 2 W
THROTTLE_RATES = (1, THROTTLE_RATE, SLOW_RATE)
# V8 writes its wasm code cache once no function has been optimised for 2 s (--wasm-caching-timeout-ms).
CODE_CACHE_SETTLE_MS = 3000
PAGE = "/?auto=0"  # no auto-predict: the bench presses Predict itself
ACCESS_LINE = re.compile(r"serve\.access (GET|POST|HEAD) (\S+) (\d{3})")

# Records, on the page's own clock: when the in-browser model is ready, each Predict press, each answer shown.
MARKS_SCRIPT = """
window.__bench = { answers: [], presses: [] };
const mark = (name, value) => { if (!(name in window.__bench)) window.__bench[name] = value ?? performance.now(); };
new MutationObserver(() => {
  const status = document.querySelector('#status');
  if (status && status.dataset.runtime === 'ready') mark('runtimeReady');
  if (status && status.dataset.runtime === 'failed') mark('runtimeFailed');
  const result = document.querySelector('[data-testid="result"]');
  if (result && result.dataset.digit && !result.classList.contains('busy') && !result.classList.contains('stale')) {
    window.__bench.answers.push([performance.now(), result.dataset.backend]);
  }
}).observe(document, { subtree: true, attributes: true, childList: true });
document.addEventListener('click', (event) => {
  if (event.target.closest('[data-testid="predict"]')) window.__bench.presses.push(performance.now());
}, true);
document.addEventListener('DOMContentLoaded', () => mark('pageLoaded'));
"""
# True once the last Predict press has been answered by the in-browser model.
ANSWERED_IN_BROWSER = """() => {
  const { answers, presses } = window.__bench;
  const last = answers[answers.length - 1];
  return last && last[0] > presses[presses.length - 1] && last[1] === 'browser';
}"""

# The page's phases on a load, from the classifier's performance marks (ms since navigation).
PHASES_SCRIPT = """() => Object.fromEntries(performance.getEntriesByType('mark')
  .filter((mark) => mark.name.startsWith('classifier:')).map((mark) => [mark.name.slice(11), mark.startTime]))"""
PHASES = ("model-loaded", "session-created", "first-run")

# "Pad pixels -> probabilities" with the page's own modules, one classifier per model variant, taking turns
# (so a busy machine slows every variant alike), `count` times each after `warmup` untimed runs.
WARM_SCRIPT = """
async ({ count, warmup, variants }) => {
  const { createClassifier } = await import('/classifier.js');
  const { readPixels } = await import('/pad.js');
  const pad = document.querySelector('[data-testid="pad"]');
  const runs = [];
  for (const variant of variants) {
    const classifier = createClassifier({ variant });
    await classifier.started;
    runs.push({ classifier, variant: classifier.variant, total: [], inference: [] });
  }
  for (let index = 0; index < warmup + count; index++) {
    for (const run of runs) {
      const started = performance.now();
      const result = await run.classifier.classify(readPixels(pad, run.classifier.inputFormat));
      if (index >= warmup) { run.total.push(performance.now() - started); run.inference.push(result.milliseconds); }
      run.backend = result.backend;
    }
  }
  return runs.map(({ variant, total, inference, backend }) => ({ variant, total, inference, backend }));
}
"""


# Each model file run directly with onnxruntime-web as the page configures it (wasm, one thread, no proxy
# worker), taking turns, `count` times each after `warmup` untimed runs; the first model's answers come back too.
MODELS_WARM_SCRIPT = """
async ({ models, count, warmup }) => {
  const ort = await import('/vendor/ort.wasm.min.mjs');
  ort.env.logLevel = 'error';
  ort.env.wasm.wasmPaths = '/vendor/';
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  const decode = (text) => new Float32Array(Uint8Array.from(atob(text), (char) => char.charCodeAt(0)).buffer);
  const runs = [];
  for (const model of models) {
    const response = await fetch(model.url);
    if (!response.ok) throw new Error(`${model.url}: HTTP ${response.status}`);
    const bytes = new Uint8Array(await response.arrayBuffer());
    const session = await ort.InferenceSession.create(bytes);
    const input = new ort.Tensor('float32', decode(model.image.data), [model.image.height, model.image.width]);
    runs.push({ ...model, session, feeds: { [model.inputName]: input }, times: [] });
  }
  for (let index = 0; index < warmup + count; index++) {
    for (const run of runs) {
      const started = performance.now();
      const outputs = await run.session.run(run.feeds);
      if (index >= warmup) run.times.push(performance.now() - started);
      run.answer = Array.from(outputs[run.answerName].data, Number);
    }
  }
  return runs.map(({ name, times, answer }) => ({ name, times, answer }));
}
"""


class CountingProxy:
    """A loopback TCP proxy in a background thread that counts the bytes going each way."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.down = self.up = self.connections = 0
        self.port = None
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        ready.wait(10)

    def _run(self, ready):
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        self.loop.run_forever()

    async def _handle(self, client_reader, client_writer):
        self.connections += 1
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def pipe(reader, writer, direction):
            try:
                while data := await reader.read(65536):
                    setattr(self, direction, getattr(self, direction) + len(data))
                    writer.write(data)
                    await writer.drain()
            except OSError:
                pass
            finally:
                writer.close()

        await asyncio.gather(pipe(client_reader, server_writer, "up"), pipe(server_reader, client_writer, "down"))

    def counts(self):
        return self.down, self.up

    def stop(self):
        self.loop.call_soon_threadsafe(self.loop.stop)


def access_log(server, start_offset):
    """(method, path, status) of each request the server logged after `start_offset` bytes of its log."""
    text = server.log_path.read_bytes()[start_offset:].decode(errors="replace")
    return [match.groups() for match in ACCESS_LINE.finditer(text)]


def throttle(context, page, rate):
    session = context.new_cdp_session(page)
    session.send("Emulation.setCPUThrottlingRate", {"rate": rate})
    return session


def cold_visit(browser, base_url, rate, fixtures):
    """One first visit in a fresh context: ms since navigation to model ready and to the first answer."""
    context = browser.new_context(base_url=base_url, viewport=fixtures.KIOSK_VIEWPORT)
    try:
        context.set_default_timeout(60_000)
        context.add_init_script(MARKS_SCRIPT)
        page = context.new_page()
        if rate != 1:
            throttle(context, page, rate)
        page.goto(PAGE, wait_until="commit")
        # Module scripts run before DOMContentLoaded; strokes drawn earlier would reach no listener.
        page.wait_for_load_state("domcontentloaded")
        drawing_started = time.perf_counter()
        fixtures.draw(page, fixtures.DIGITS["7"])
        drawing = time.perf_counter() - drawing_started
        page.click(fixtures.PREDICT)
        page.wait_for_selector(fixtures.SETTLED_ANSWER)
        first = page.evaluate("window.__bench")
        # Then, once the model runs in the page, the first answer it gives.
        page.wait_for_selector(fixtures.RUNTIME_READY, state="attached")
        page.click(fixtures.PREDICT)
        page.wait_for_function(ANSWERED_IN_BROWSER)
        marks = page.evaluate("window.__bench")
        variant = page.get_attribute(fixtures.RUNTIME_READY, "data-variant")
        return {"variant": variant, "pageLoaded": marks["pageLoaded"], "runtimeReady": marks["runtimeReady"], "drawingMs": drawing * 1000,
                "firstPressToAnswer": first["answers"][-1][0] - first["presses"][0], "firstBackend": first["answers"][-1][1],
                "browserPressToAnswer": marks["answers"][-1][0] - marks["presses"][-1]}
    finally:
        context.close()


def cached_reloads(playwright, base_url, rate, count, fixtures):
    """A first visit, then `count` reloads with everything cached, in a profile on disk as the kiosk's:
    ms since navigation to the in-browser model ready, and the page's phases on each reload."""
    with tempfile.TemporaryDirectory(prefix="bench-browser-profile-") as profile:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=fixtures.CHROMIUM, args=fixtures.CHROMIUM_ARGS, base_url=base_url,
            viewport=fixtures.KIOSK_VIEWPORT)
        try:
            context.set_default_timeout(120_000)
            context.add_init_script(MARKS_SCRIPT)
            page = context.pages[0] if context.pages else context.new_page()
            if rate != 1:
                throttle(context, page, rate)  # stays on across reloads of this page
            page.goto(PAGE)
            page.wait_for_selector(fixtures.RUNTIME_READY, state="attached")
            first = page.evaluate("window.__bench.runtimeReady")
            page.wait_for_selector(fixtures.OFFLINE_READY, state="attached")
            page.wait_for_timeout(CODE_CACHE_SETTLE_MS)
            reloads = []
            for _ in range(count):
                page.reload()
                page.wait_for_selector(fixtures.RUNTIME_READY, state="attached")
                reloads.append({"ready": page.evaluate("window.__bench.runtimeReady"), **page.evaluate(PHASES_SCRIPT)})
                page.wait_for_timeout(CODE_CACHE_SETTLE_MS)
            return {"first": first, "reloads": reloads}
        finally:
            context.close()


def warm_run(browser, base_url, rate, count, fixtures, variants):
    """Per-prediction times of each variant in a page whose model has loaded (the context is fresh, so it downloads first)."""
    context = browser.new_context(base_url=base_url, viewport=fixtures.KIOSK_VIEWPORT)
    try:
        context.set_default_timeout(120_000)
        page = context.new_page()
        page.goto(PAGE)
        page.wait_for_selector(fixtures.RUNTIME_READY)
        fixtures.draw(page, fixtures.DIGITS["7"])
        if rate != 1:
            throttle(context, page, rate)
        return {run["variant"]: run for run in page.evaluate(WARM_SCRIPT, {"count": count, "warmup": 5, "variants": variants})}
    finally:
        context.close()


def models_warm_run(browser, base_url, rate, count, fixtures, models, artifacts_dir):
    """Per-run times of model files run directly in a page of ours (which has loaded; the page's own model is idle by then)."""
    # No service worker: its fetches would pass by page.route, which hands the page the model files.
    context = browser.new_context(base_url=base_url, viewport=fixtures.KIOSK_VIEWPORT, service_workers="block")
    try:
        context.set_default_timeout(120_000)
        page = context.new_page()
        page.route(f"**{MODELS_PREFIX}*", lambda route: route.fulfill(
            body=(artifacts_dir / route.request.url.rsplit("/", 1)[1]).read_bytes(), content_type="application/octet-stream"))
        page.goto(PAGE)
        page.wait_for_selector(fixtures.RUNTIME_READY)
        if rate != 1:
            throttle(context, page, rate)
        return {run["name"]: run for run in page.evaluate(MODELS_WARM_SCRIPT, {"models": models, "count": count, "warmup": MODELS_WARMUP})}
    finally:
        context.close()


def page_image(image):
    """A float image as the warm script takes it: its shape and its float32 bytes in base64."""
    data = np.ascontiguousarray(image, np.float32)
    return {"height": data.shape[0], "width": data.shape[1], "data": base64.b64encode(data.tobytes()).decode()}


def number_models(manifest, images, labels):
    """The number reader's variants on a composed number at the number pad's size, and the digit reader's on a digit at the pad's."""
    from train.compose import mnist_glyph

    rng = np.random.default_rng(2026)
    chosen = rng.choice(len(labels), size=NUMBER_LENGTH, replace=False)
    line = compose_number([mnist_glyph(np.round(images[index] * 255).astype(np.uint8)) for index in chosen], labels[chosen], rng)
    number_image = page_image(on_pad(line.image, NUMBER_PAD_WIDTH, NUMBER_PAD_HEIGHT))
    numbers = manifest["numbers"]
    models = [{"name": f"number reader {variant}", "kind": "numbers", "url": MODELS_PREFIX + entry["file"], "image": number_image,
               "inputName": numbers["input"]["name"], "answerName": numbers["outputs"]["digits"]["name"]}
              for variant, entry in numbers["variants"].items()]
    digit_image = page_image(pad_image(images[chosen[0]]))
    models += [{"name": f"digit reader {variant}", "kind": "digits", "url": MODELS_PREFIX + entry["file"], "image": digit_image,
                "inputName": manifest["input"]["name"], "answerName": manifest["outputs"]["probabilities"]["name"]}
               for variant, entry in manifest["variants"].items()]
    return models, line.number, int(labels[chosen[0]])


def visits(browser, server, proxy, fixtures):
    """Bytes and requests of a first visit, then of a second visit in the same context."""
    context = browser.new_context(base_url=f"http://127.0.0.1:{proxy.port}", viewport=fixtures.KIOSK_VIEWPORT)
    results = []
    try:
        context.set_default_timeout(60_000)
        for _ in range(2):
            down, up = proxy.counts()
            offset = server.log_path.stat().st_size
            page = context.new_page()
            page.goto(PAGE)
            page.wait_for_selector(fixtures.RUNTIME_READY, state="attached")
            offline = page.wait_for_selector("#status[data-offline]", state="attached").get_attribute("data-offline")
            page.wait_for_timeout(1000)  # let the service worker's and cache's last requests finish
            page.close()
            new_down, new_up = proxy.counts()
            results.append({"down": new_down - down, "up": new_up - up, "requests": access_log(server, offset), "offline": offline})
    finally:
        context.close()
    return results


def describe_requests(requests):
    statuses = {}
    for method, _, status in requests:
        statuses[f"{method} {status}"] = statuses.get(f"{method} {status}", 0) + 1
    return ", ".join(f"{count}× {key}" for key, count in sorted(statuses.items()))


def numbers_warm(browser, base_url, count, fixtures, manifest, artifacts_dir, images, labels):
    """The number reader's and the digit reader's files, warm, in a page: {"models": runs by name, ...}, or None without a number reader."""
    if "numbers" not in manifest:
        return None
    models, written, digit_written = number_models(manifest, images, labels)
    return {"runs": models_warm_run(browser, base_url, 1, count, fixtures, models, artifacts_dir), "written": written, "digit_written": digit_written}


def number_results(number_warm, manifest, count):
    """The numbers' paragraph and table, and the target of a warm 4-digit read."""
    goal = f"≤ {NUMBER_WARM_TARGET_MS:g} ms"
    if not number_warm:
        return ("**Numbers, warm**: not measured, the manifest has no numbers section.",
                Target(f"warm in-browser read of a {NUMBER_LENGTH}-digit number", goal, "not measured", False, "no number reader"))
    rows = []
    for name, run in number_warm["runs"].items():
        number = name.startswith("number")
        answer = "".join(map(str, run["answer"])) if number else str(int(np.argmax(run["answer"])))
        rows.append([name, len(run["times"]), f"{median(run['times']):.2f} ms", f"{percentile(run['times'], 90):.2f} ms",
                     f"{answer} (written {number_warm['written'] if number else number_warm['digit_written']})"])
    numbers = manifest["numbers"]
    number_variant = browser_variant(numbers)
    digit_variant = browser_variant(manifest)
    number_median = median(number_warm["runs"][f"number reader {number_variant}"]["times"])
    digit_median = median(number_warm["runs"][f"digit reader {digit_variant}"]["times"])
    target = Target(f"warm in-browser read of a {NUMBER_LENGTH}-digit number, {number_variant}", goal, f"{number_median:.2f} ms",
                    number_median <= NUMBER_WARM_TARGET_MS,
                    f"the model alone on a {NUMBER_PAD_WIDTH}×{NUMBER_PAD_HEIGHT} image; the digit reader ({digit_variant}) "
                    f"on a {PAD_SIDE}×{PAD_SIDE} one: {digit_median:.2f} ms")
    markdown = "\n\n".join([
        f"**Numbers, warm**: each model file run directly with onnxruntime-web in the page (as the page configures it: wasm, "
        f"one thread, on the page's thread), taking turns, {count} times each after {MODELS_WARMUP} untimed; a {NUMBER_LENGTH}-digit "
        f"number from MNIST test digits composed by train/compose.py and scaled onto the number pad ({NUMBER_PAD_WIDTH}×{NUMBER_PAD_HEIGHT}) "
        f"for the number reader `{numbers['model_id']}`, one of its digits on the digit pad ({PAD_SIDE}×{PAD_SIDE}) for the digit reader. "
        f"The model alone: no reading of the pad, no page UI. The page would run the number reader's `{number_variant}`.",
        table(["Model", "Runs", "Median", "p90", "Read"], rows),
    ])
    return markdown, target


def browser_variant(section):
    """The variant a page runs (web/offline.js): the section's browser_variant if it names one, else its default."""
    return section.get("browser_variant") if section.get("browser_variant") in section["variants"] else section["default_variant"]


def measure_numbers_only(args, manifest, fixtures):
    """Only the warm number read (for iterating on the number reader's speed): a Section of its own."""
    from playwright.sync_api import sync_playwright

    images, labels = mnist_test(100)
    arguments = ["-m", "serve", "--port", "0"] + (["--artifacts", str(args.artifacts)] if args.artifacts.resolve() != ROOT / "artifacts" else [])
    server = ServerProcess("ours", arguments, args.work_dir / "logs" / "browser-serve.log", SERVE_ENVIRONMENT)
    count = 10 if args.quick else 100
    with server.start(png_bytes(pad_image(images[0]))), sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=fixtures.CHROMIUM, args=fixtures.CHROMIUM_ARGS)
        number_warm = numbers_warm(browser, f"http://127.0.0.1:{server.port}", count, fixtures, manifest, args.artifacts, images, labels)
        browser.close()
    markdown, target = number_results(number_warm, manifest, count)
    return Section("Browser: numbers", script_command("bench.browser", args, ["--numbers-only"]), markdown, [target])


def measure_slow_only(args, fixtures):
    """Only the slow-CPU stand-ins (bench/browser_slow.py): a Section of its own."""
    from playwright.sync_api import sync_playwright

    from bench.browser_slow import measure_slow

    images, _ = mnist_test(1)
    arguments = ["-m", "serve", "--port", "0"] + (["--artifacts", str(args.artifacts)] if args.artifacts.resolve() != ROOT / "artifacts" else [])
    server = ServerProcess("ours", arguments, args.work_dir / "logs" / "browser-slow-serve.log", SERVE_ENVIRONMENT)
    with server.start(png_bytes(pad_image(images[0]))), sync_playwright() as playwright:
        markdown, targets = measure_slow(playwright, fixtures, f"http://127.0.0.1:{server.port}", args.quick)
    return Section("Browser: a slow CPU", script_command("bench.browser", args, ["--slow-only"]), markdown, targets)


def add_arguments(parser):
    parser.add_argument("--numbers-only", action="store_true", help="time only the warm in-browser number read")
    parser.add_argument("--slow-only", action="store_true",
                        help="only the slow-CPU stand-ins: the whole browser in a cgroup at 50%% of one core, and CDP 10× (root)")


def measure(args):
    from playwright.sync_api import sync_playwright

    from tests import browser_fixtures as fixtures  # Chromium's path and flags, and how to draw, defined once

    manifest = load_manifest(args.artifacts)
    vendor = ROOT / "web" / "vendor"
    if not vendor.is_dir():
        markdown = f"**PENDING**: {vendor.relative_to(ROOT)} is missing, so the page cannot run the model; run `make vendor`."
        return Section("Browser", script_command("bench.browser", args), markdown,
                       [Target("in-browser warm prediction", f"≤ {WARM_TARGET_MS:g} ms", "not measured", False, "web/vendor missing")])
    if args.numbers_only:
        return measure_numbers_only(args, manifest, fixtures)
    if args.slow_only:
        return measure_slow_only(args, fixtures)
    cold_rounds, reload_count, warm_count = (1, 1, 10) if args.quick else (3, 7, 100)
    # A smoke run keeps the rates its targets need.
    cold_rates, reload_rates = ((1,), (SLOW_RATE,)) if args.quick else (THROTTLE_RATES, THROTTLE_RATES)
    variants = list(manifest["variants"])
    images, labels = mnist_test(100)
    arguments = ["-m", "serve", "--port", "0"] + (["--artifacts", str(args.artifacts)] if args.artifacts.resolve() != ROOT / "artifacts" else [])
    server = ServerProcess("ours", arguments, args.work_dir / "logs" / "browser-serve.log", SERVE_ENVIRONMENT)
    proxy = None
    with server.start(png_bytes(pad_image(images[0]))), sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=fixtures.CHROMIUM, args=fixtures.CHROMIUM_ARGS)
        base_url = f"http://127.0.0.1:{server.port}"
        cold = {rate: [] for rate in cold_rates}
        for _ in range(cold_rounds):
            for rate in cold:
                cold[rate].append(cold_visit(browser, base_url, rate, fixtures))
        reloads = {rate: cached_reloads(playwright, base_url, rate, reload_count, fixtures) for rate in reload_rates}
        warm = {}
        for rate in (1, THROTTLE_RATE):
            for variant, run in warm_run(browser, base_url, rate, warm_count, fixtures, variants).items():
                warm[variant, rate] = run
        number_warm = numbers_warm(browser, base_url, warm_count, fixtures, manifest, args.artifacts, images, labels)
        proxy = CountingProxy(server.port)
        first, second = visits(browser, server, proxy, fixtures)
        browser.close()
        proxy.stop()
        slow = slow_stand_ins(playwright, fixtures, base_url, args.quick)
    page_variant = cold[1][0]["variant"]

    cold_rows, first_answer = [], {}
    for rate, runs in cold.items():
        pick = lambda key: median([run[key] for run in runs])
        # What a person with the digit already drawn waits for: the in-browser model, then its first answer.
        first_answer[rate] = median([run["runtimeReady"] + run["browserPressToAnswer"] for run in runs])
        backends = ", ".join(sorted({run["firstBackend"] for run in runs}))
        cold_rows.append([f"{rate}×", len(runs), f"{pick('pageLoaded'):.0f} ms", f"{pick('drawingMs'):.0f} ms",
                          f"{pick('firstPressToAnswer'):.0f} ms ({backends})", f"{pick('runtimeReady'):.0f} ms",
                          f"{pick('browserPressToAnswer'):.0f} ms", f"{first_answer[rate]:.0f} ms"])
    reload_rows, reload_ready = [], {}
    for rate, result in reloads.items():
        runs = result["reloads"]
        reload_ready[rate] = median([run["ready"] for run in runs])
        phases = [f"{median([run[phase] for run in runs]):.0f} ms" for phase in PHASES]
        reload_rows.append([f"{rate}×", f"{result['first']:.0f} ms", len(runs), f"{reload_ready[rate]:.0f} ms",
                            f"{min(run['ready'] for run in runs):.0f}–{max(run['ready'] for run in runs):.0f} ms", *phases])
    warm_rows, warm_medians = [], {}
    for (variant, rate), result in sorted(warm.items()):
        warm_medians[variant, rate] = median(result["total"])
        warm_rows.append([variant, f"{rate}×", len(result["total"]), result["backend"], f"{warm_medians[variant, rate]:.2f} ms",
                          f"{percentile(result['total'], 90):.2f} ms", f"{median(result['inference']):.2f} ms"])
    fastest = {rate: min(variants, key=lambda variant: warm_medians[variant, rate]) for rate in (1, THROTTLE_RATE)}
    second_gets = [status for method, _, status in second["requests"] if method == "GET"]
    byte_rows = [[name, format_bytes(visit["down"]), format_bytes(visit["up"]), len(visit["requests"]),
                  describe_requests(visit["requests"]), visit["offline"]]
                 for name, visit in (("first visit", first), ("second visit", second))]

    page_warm = warm[page_variant, 1]
    number_markdown, number_target = number_results(number_warm, manifest, warm_count)
    targets = [
        Target(f"in-browser warm prediction (pad pixels → probabilities), {page_variant}", f"≤ {WARM_TARGET_MS:g} ms",
               f"{warm_medians[page_variant, 1]:.2f} ms ({page_warm['backend']})",
               warm_medians[page_variant, 1] <= WARM_TARGET_MS and page_warm["backend"] == "browser"),
        Target(f"in-browser warm prediction, CPU throttled {THROTTLE_RATE}×, {page_variant}", f"≤ {THROTTLED_TARGET_MS:g} ms",
               f"{warm_medians[page_variant, THROTTLE_RATE]:.2f} ms", warm_medians[page_variant, THROTTLE_RATE] <= THROTTLED_TARGET_MS),
        Target("first visit to first in-browser answer, loopback", f"≤ {FIRST_ANSWER_TARGET_MS:g} ms", f"{first_answer[1]:.0f} ms",
               first_answer[1] <= FIRST_ANSWER_TARGET_MS, "in-browser model ready + its first Predict → answer; drawing not counted"),
        Target(f"cached reload to in-browser model ready, CPU throttled {SLOW_RATE}×", f"≤ {RELOAD_TARGET_MS:g} ms",
               f"{reload_ready[SLOW_RATE]:.0f} ms", reload_ready[SLOW_RATE] <= RELOAD_TARGET_MS,
               f"median of {len(reloads[SLOW_RATE]['reloads'])} reloads in a kiosk-like profile"),
        Target("second visit downloads only revalidations", "every GET a 304",
               f"{format_bytes(second['down'])}; {describe_requests(second['requests'])}",
               bool(second_gets) and all(status == "304" for status in second_gets)),
        number_target,
    ]
    markdown = "\n\n".join([
        f"Chromium: `{fixtures.CHROMIUM} {' '.join(fixtures.CHROMIUM_ARGS)}` via Playwright, viewport "
        f"{fixtures.KIOSK_VIEWPORT['width']}×{fixtures.KIOSK_VIEWPORT['height']}; server `{server.command}`; "
        f"model `{manifest['model_id']}`; the page runs `{page_variant}` (the manifest's browser_variant, else default_variant).",
        f"**Cold first visit** (fresh context each, median of {cold_rounds}); times on the page's clock from navigation start. "
        "A 7 is drawn with the mouse once the page's scripts have run, and Predict pressed: until the in-browser model has "
        "started the page asks the server, so that answer's backend is shown. Once the model runs, Predict is pressed again. "
        "\"First in-browser answer\" = model ready + that answer's time: what a person whose digit is already drawn waits "
        "for (Playwright's mouse draws far slower than a finger, so drawing is not counted).",
        table(["CPU", "Visits", "DOMContentLoaded", "Drawing took", "First Predict → answer (by)", "In-browser model ready",
               "In-browser Predict → answer", "First in-browser answer"], cold_rows),
        f"**Cached reload**, as the kiosk reloads at boot and on a new model: a profile on disk (like the launcher's "
        f"`--user-data-dir`), a first visit, then {reload_count} reloads, each {CODE_CACHE_SETTLE_MS} ms after the last "
        "so V8 can write its wasm code cache; ms since navigation. The page's phases (medians): model loaded = manifest "
        "checked and model bytes from the Cache API; session created = onnxruntime-web's wasm instantiated and the "
        "session built; first run = ready.",
        table(["CPU", "First visit: model ready", "Reloads", "Reload: model ready (median)", "Range", "Model loaded",
               "Session created", "First run (ready)"], reload_rows),
        "**Warm prediction** per model variant: `readPixels(pad)` + `classifier.classify()` with the page's own modules, "
        f"one classifier per variant in the same page taking turns, {warm_count} times each after 5 untimed. Fastest: "
        + ", ".join(f"{fastest[rate]} at {rate}×" for rate in (1, THROTTLE_RATE)) + ".",
        table(["Variant", "CPU", "Predictions", "Backend", "Median", "p90", "Median inference alone"], warm_rows),
        "**Bytes on the wire**, counted by a TCP proxy between Chromium and the server (the page, scripts, wasm, "
        "manifest and model; the service worker's requests included); requests from the server's access log:",
        table(["Visit", "Server → browser", "Browser → server", "Requests", "Statuses", "Offline copy"], byte_rows),
        number_markdown,
        slow[0],
    ])
    return Section("Browser", script_command("bench.browser", args), markdown, targets + slow[1])


def slow_stand_ins(playwright, fixtures, base_url, quick):
    """bench/browser_slow.py's (markdown, targets); its cgroup needs root, and a smoke run of the whole bench leaves it out."""
    from bench.browser_slow import measure_slow

    if quick:
        return "**Slow CPU**: not in a smoke run of the whole bench (`python -m bench.browser --slow-only --quick` is one).", []
    if os.geteuid() != 0:
        return "**Slow CPU**: not measured; its cgroup needs root (`sudo python -m bench.browser --slow-only`).", []
    return measure_slow(playwright, fixtures, base_url, quick)


if __name__ == "__main__":
    run_section("bench.browser", __doc__.splitlines()[0], measure, add_arguments)
