"""The kiosk on a slow CPU, with two stand-ins for a Raspberry Pi (`python -m bench.browser --slow-only`).

- cgroup: every Chromium process (browser, renderer, the page's inference worker, V8's compiler threads) runs in a
  cgroup v1 `cpu` group whose quota is CPU_SHARE of one core (cfs_quota_us / cfs_period_us): all slowed alike.
  Used for the times a visitor waits: first visit and cached reload to the first answer, reload to a ready model.
- CDP 10×: Emulation.setCPUThrottlingRate slows only the page's main thread (work moved into a worker escapes
  it), so it judges the main thread's own figures: the first stroke inked after a reload, the longest task.
- Warm prediction through the worker (pad pixels → answer) at 1× and CDP 4×, a 4-digit number as well, and the
  renderer's resident memory (its workers are threads of it) over 100 predictions in each mode, from /proc.

Every figure is a median over RUNS runs, shown with its range. Needs root (it makes a cgroup).
"""

import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from bench.measure import median, percentile
from bench.report import Target, table

CGROUP_ROOT = Path("/sys/fs/cgroup/cpu")
CPU_PERIOD_US = 100_000
CPU_SHARE = 0.5  # of one core, for every Chromium process together
CDP_SLOW_RATE = 10
CDP_WARM_RATE = 4
RUNS = 5
SETTLE_MS = 3000  # V8 writes its wasm code cache once nothing was optimised for 2 s
MEMORY_CHECKPOINTS = (1, 50, 100)
PAGE = "/?auto=0"
NUMBER = "1870"

TARGETS_MS = {
    "first_answer_cold": 1000.0,
    "first_answer_reload": 500.0,
    "ready_reload": 1500.0,
    "first_ink_reload": 300.0,
    "longest_task": 100.0,
    "warm": 3.0,
    "warm_throttled": 10.0,
    "number_warm": 15.0,
}
MEMORY_TARGET_MB = 150.0

# On the page's clock: the Predict presses, the answers shown (with their backend), the model ready, long tasks.
MARKS_SCRIPT = """
window.__slow = { answers: [], presses: [], longTasks: [], runtimeReady: null, firstInk: null };
try {
  new PerformanceObserver((list) => {
    for (const task of list.getEntries()) window.__slow.longTasks.push([task.startTime, task.duration]);
  }).observe({ type: 'longtask', buffered: true });
} catch {}
new MutationObserver(() => {
  const status = document.querySelector('#status');
  if (status && status.dataset.runtime === 'ready' && window.__slow.runtimeReady === null) window.__slow.runtimeReady = performance.now();
  const result = document.querySelector('[data-testid="result"]');
  if (result && result.dataset.verdict && !result.classList.contains('busy') && !result.classList.contains('stale')) {
    window.__slow.answers.push([performance.now(), result.dataset.backend]);
  }
}).observe(document, { subtree: true, attributes: true, childList: true });
document.addEventListener('click', (event) => {
  if (event.target.closest('[data-testid="predict"]')) window.__slow.presses.push(performance.now());
}, true);
"""
# Watches the pad every frame, from when the page is wired, for its first inked pixel (only where that is measured).
INK_SCRIPT = """
(() => {
  const probe = document.createElement('canvas').getContext('2d', { willReadFrequently: true });
  probe.canvas.width = probe.canvas.height = 16;
  const look = () => {
    const pad = document.querySelector('[data-testid="pad"]');
    if (pad && document.documentElement.dataset.page === 'wired') {
      probe.drawImage(pad, 0, 0, 16, 16);
      const { data } = probe.getImageData(0, 0, 16, 16);
      if (data.some((value, index) => index % 4 !== 3 && value > 0)) return (window.__slow.firstInk = performance.now());
    }
    requestAnimationFrame(look);
  };
  requestAnimationFrame(look);
})();
"""
WIRED_AT = "performance.getEntriesByName('page:wired')[0]?.startTime ?? null"

# Warm predictions with the page's own modules: readPixels + classify (through the worker), `count` after `warmup`;
# taking turns with the same file run by onnxruntime-web on the page's own thread, as the page ran it before the
# worker (readPixels + session.run), so the worker's round trip is seen beside it under the same load.
WARM_SCRIPT = """
async ({ count, warmup, mode }) => {
  const { createClassifier } = await import('/classifier.js');
  const { readPixels } = await import('/pad.js');
  const manifest = await (await fetch('/model/manifest.json')).json();
  const pad = document.querySelector('[data-testid="pad"]');
  const classifier = createClassifier({ mode, manifest });
  await classifier.started;
  const ort = await import('/vendor/ort.wasm.min.mjs');
  Object.assign(ort.env.wasm, { wasmPaths: '/vendor/', numThreads: 1, proxy: false });
  const reader = mode === 'number' ? manifest.numbers : manifest;
  const file = reader.variants[classifier.variant].file;
  const session = await ort.InferenceSession.create(new Uint8Array(await (await fetch(`/model/${file}`)).arrayBuffer()));
  const total = [], worker = [], pageThread = [];
  let answer = null, backend = null;
  for (let index = 0; index < warmup + count; index++) {
    let started = performance.now();
    const result = await classifier.classify(readPixels(pad, classifier.inputFormat));
    if (index >= warmup) { total.push(performance.now() - started); worker.push(result.modelMilliseconds); }
    answer = mode === 'number' ? result.number : result.label;
    backend = result.backend;
    started = performance.now();
    const image = readPixels(pad, classifier.inputFormat);
    await session.run({ [reader.input.name]: new ort.Tensor('float32', image.data, [image.height, image.width]) });
    if (index >= warmup) pageThread.push(performance.now() - started);
  }
  return { total, worker, pageThread, answer, backend };
}
"""
# The page's own predictions, `count` of them, through its Predict button's code path.
PREDICT_MANY_SCRIPT = """
async (count) => {
  const predict = document.querySelector('[data-testid="predict"]');
  const result = document.querySelector('[data-testid="result"]');
  for (let index = 0; index < count; index++) {
    result.removeAttribute('data-verdict');
    predict.click();
    while (!result.dataset.verdict) await new Promise((resolve) => setTimeout(resolve, 1));
  }
}
"""


class BrowserGroup:
    """A cgroup v1 `cpu` group for every process of one Chromium, and a launcher that starts Chromium inside it."""

    def __init__(self, name, share, chromium):
        self.path = CGROUP_ROOT / f"bench-kiosk-{name}-{os.getpid()}"
        self.share, self.chromium = share, chromium
        self.folder = Path(tempfile.mkdtemp(prefix="bench-kiosk-"))
        self.executable = self.folder / "chromium-in-cgroup"

    def __enter__(self):
        self.path.mkdir()
        (self.path / "cpu.cfs_period_us").write_text(str(CPU_PERIOD_US))
        (self.path / "cpu.cfs_quota_us").write_text(str(round(self.share * CPU_PERIOD_US) if self.share else -1))
        # Children inherit their parent's cgroup: the browser moves itself in before it starts anything.
        self.executable.write_text(f'#!/bin/sh\necho $$ > {self.path / "cgroup.procs"}\nexec {self.chromium} "$@"\n')
        self.executable.chmod(0o755)
        return self

    def __exit__(self, *exc):
        for _ in range(50):
            try:
                self.path.rmdir()
                break
            except OSError:  # the last processes are still exiting
                time.sleep(0.1)
        self.executable.unlink()
        self.folder.rmdir()

    def page_renderer_memory_mb(self):
        """(RSS, PSS) in MB of the kiosk page's renderer process, its workers included (they are its threads): the
        largest renderer of a browser showing one page (the others are a spare and Chromium's own). RSS counts
        shared pages (libraries, V8's snapshot, fonts) whole; PSS shares them among the processes mapping them."""
        largest = (0, 0)
        for pid in (self.path / "cgroup.procs").read_text().split():
            try:
                if b"--type=renderer" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                    continue
                rollup = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:])
            except OSError:
                continue
            largest = max(largest, (int(rollup["Rss"].split()[0]), int(rollup["Pss"].split()[0])))
        return largest[0] / 1024, largest[1] / 1024


@contextmanager
def slowed_browser(playwright, fixtures, name, share):
    with BrowserGroup(name, share, fixtures.CHROMIUM) as group:
        browser = playwright.chromium.launch(executable_path=str(group.executable), args=fixtures.CHROMIUM_ARGS)
        try:
            yield browser, group
        finally:
            browser.close()


@contextmanager
def slowed_profile(playwright, fixtures, base_url, name, share):
    """A kiosk-like profile on disk (HTTP cache, service worker, code cache kept) in a browser of its own group."""
    with BrowserGroup(name, share, fixtures.CHROMIUM) as group, tempfile.TemporaryDirectory(prefix="bench-kiosk-profile-") as profile:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=str(group.executable), args=fixtures.CHROMIUM_ARGS, base_url=base_url,
            viewport=fixtures.KIOSK_VIEWPORT)
        try:
            context.set_default_timeout(180_000)
            context.add_init_script(MARKS_SCRIPT)
            yield context, group
        finally:
            context.close()


def answer_drawn(page, fixtures):
    """Draw a 7 once the page is wired and press Predict: (ms from navigation to wired, press → answer, backend).

    The 7 goes in as its three corners, one stroke (the pad joins samples with lines), so that the press comes as
    soon after the page is wired as a digit already drawn would allow: a densely sampled stroke takes Playwright
    seconds on a slowed browser, and by then the in-browser model would be ready.
    """
    page.wait_for_selector(fixtures.PAGE_WIRED, state="attached")
    box = page.locator(fixtures.PAD).bounding_box()
    (stroke,) = fixtures.DIGITS["7"]
    page.mouse.move(box["x"] + stroke[0][0] * box["width"], box["y"] + stroke[0][1] * box["height"])
    page.mouse.down()
    for x, y in stroke[1:]:
        page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"])
    page.mouse.up()
    page.click(fixtures.PREDICT)
    page.wait_for_function("() => window.__slow.answers.some(([at]) => at > window.__slow.presses[0])")
    marks = page.evaluate("window.__slow")
    at, backend = next(answer for answer in marks["answers"] if answer[0] > marks["presses"][0])
    return page.evaluate(WIRED_AT), at - marks["presses"][0], backend


def cold_visits(playwright, fixtures, base_url):
    """First visits in fresh contexts of one browser in the cgroup: the first answer with the digit already drawn, and model ready."""
    runs = []
    with slowed_browser(playwright, fixtures, "cold", CPU_SHARE) as (browser, _):
        for _ in range(RUNS):
            context = browser.new_context(base_url=base_url, viewport=fixtures.KIOSK_VIEWPORT)
            try:
                context.set_default_timeout(180_000)
                context.add_init_script(MARKS_SCRIPT)
                page = context.new_page()
                page.goto(PAGE, wait_until="commit")
                wired, press_to_answer, backend = answer_drawn(page, fixtures)
                page.wait_for_selector(fixtures.RUNTIME_READY, state="attached")
                runs.append({"wired": wired, "pressToAnswer": press_to_answer, "firstAnswer": wired + press_to_answer,
                             "backend": backend, "ready": page.evaluate("window.__slow.runtimeReady")})
            finally:
                context.close()
    return runs


def cgroup_reloads(playwright, fixtures, base_url):
    """Cached reloads in the cgroup: first answer with the digit already drawn, and the in-browser digit reader ready."""
    runs = []
    with slowed_profile(playwright, fixtures, base_url, "reload", CPU_SHARE) as (context, _):
        page = context.pages[0] if context.pages else context.new_page()
        page.goto(PAGE)
        page.wait_for_selector(fixtures.OFFLINE_READY, state="attached")
        page.wait_for_timeout(SETTLE_MS)
        for _ in range(RUNS):
            page.reload(wait_until="commit")
            wired, press_to_answer, backend = answer_drawn(page, fixtures)
            page.wait_for_selector(fixtures.RUNTIME_READY, state="attached")
            runs.append({"wired": wired, "pressToAnswer": press_to_answer, "firstAnswer": wired + press_to_answer,
                         "backend": backend, "ready": page.evaluate("window.__slow.runtimeReady"),
                         **phases(page)})
            page.wait_for_timeout(SETTLE_MS)
    return runs


def phases(page):
    return page.evaluate("""() => Object.fromEntries(performance.getEntriesByType('mark')
      .filter((mark) => mark.name.includes(':')).map((mark) => [mark.name, mark.startTime]))""")


def cdp_reloads(playwright, fixtures, base_url):
    """Cached reloads with the main thread at CDP 10×: the first stroke inked, and the longest task until ready."""
    runs = []
    with slowed_profile(playwright, fixtures, base_url, "cdp", None) as (context, _):
        context.add_init_script(INK_SCRIPT)
        page = context.pages[0] if context.pages else context.new_page()
        page.goto(PAGE)
        page.wait_for_selector(fixtures.OFFLINE_READY, state="attached")
        page.wait_for_timeout(SETTLE_MS)
        session = context.new_cdp_session(page)
        session.send("Emulation.setCPUThrottlingRate", {"rate": CDP_SLOW_RATE})
        box = None
        for _ in range(RUNS):
            page.reload(wait_until="commit")
            page.wait_for_selector(fixtures.PAGE_WIRED, state="attached")
            box = box or page.locator(fixtures.PAD).bounding_box()
            page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3)
            page.mouse.down()
            page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.6, steps=4)
            page.mouse.up()
            page.wait_for_function("() => window.__slow.firstInk !== null")
            page.wait_for_selector(fixtures.RUNTIME_READY, state="attached")
            marks = page.evaluate("window.__slow")
            wired = page.evaluate(WIRED_AT)
            until_ready = [(start, duration) for start, duration in marks["longTasks"] if start < marks["runtimeReady"]]
            runs.append({"wired": wired, "firstInk": marks["firstInk"], "ready": marks["runtimeReady"],
                         "longestTask": max((duration for _, duration in until_ready), default=0.0),
                         "longestBeforeWired": max((duration for start, duration in until_ready if start < wired), default=0.0),
                         "longTasks": len(until_ready)})
            page.wait_for_timeout(SETTLE_MS)
    return runs


def warm_and_memory(playwright, fixtures, base_url, count):
    """Warm predictions through the worker at 1× and CDP 4× (digit and number), and the renderer's memory over 100 predictions."""
    warm, memory = {}, {}
    with slowed_browser(playwright, fixtures, "warm", None) as (browser, group):
        for mode in ("digit", "number"):
            for rate in (1, CDP_WARM_RATE):
                context = browser.new_context(base_url=base_url, viewport=fixtures.KIOSK_VIEWPORT)
                try:
                    context.set_default_timeout(180_000)
                    page = context.new_page()
                    page.goto(f"{PAGE}&mode={mode}")
                    page.wait_for_selector(fixtures.RUNTIME_READY)
                    draw_for(page, mode, fixtures)
                    if rate != 1:
                        context.new_cdp_session(page).send("Emulation.setCPUThrottlingRate", {"rate": rate})
                    warm[mode, rate] = page.evaluate(WARM_SCRIPT, {"count": count, "warmup": 10, "mode": mode})
                finally:
                    context.close()
        # Memory: first the page with no in-browser model (the runtime blocked: the server answers), as a baseline...
        time.sleep(2)  # the closed contexts' renderers exit
        context = browser.new_context(base_url=base_url, viewport=fixtures.KIOSK_VIEWPORT, service_workers="block")
        try:
            context.set_default_timeout(180_000)
            page = context.new_page()
            page.route("**/*.wasm", lambda route: route.abort())
            page.goto(PAGE)
            page.wait_for_selector(fixtures.RUNTIME_FAILED)
            draw_for(page, "digit", fixtures)
            page.evaluate(PREDICT_MANY_SCRIPT, 1)
            page.wait_for_timeout(500)
            memory["digit, no in-browser model", 1] = group.page_renderer_memory_mb()
        finally:
            context.close()
        # ...then one kiosk page, 100 predictions in each mode through its own Predict button.
        time.sleep(2)
        context = browser.new_context(base_url=base_url, viewport=fixtures.KIOSK_VIEWPORT)
        try:
            context.set_default_timeout(180_000)
            page = context.new_page()
            page.goto(PAGE)
            page.wait_for_selector(fixtures.RUNTIME_READY)
            for mode in ("digit", "number"):
                if mode == "number":
                    page.click('[data-testid="mode-number"]')
                    page.wait_for_selector(fixtures.RUNTIME_READY)
                draw_for(page, mode, fixtures)
                done = 0
                for checkpoint in MEMORY_CHECKPOINTS:
                    page.evaluate(PREDICT_MANY_SCRIPT, checkpoint - done)
                    done = checkpoint
                    page.wait_for_timeout(500)
                    memory[mode, checkpoint] = group.page_renderer_memory_mb()
        finally:
            context.close()
    return warm, memory


def draw_for(page, mode, fixtures):
    if mode == "number":
        box = page.locator(fixtures.PAD).bounding_box()
        fixtures.draw(page, fixtures.number_strokes(NUMBER, box["width"] / box["height"]))
    else:
        fixtures.draw(page, fixtures.DIGITS["7"])


def spread(values, digits=0):
    return f"{median(values):.{digits}f} ms ({min(values):.{digits}f}–{max(values):.{digits}f})"


def measure_slow(playwright, fixtures, base_url, quick=False):
    """(markdown, targets) of the slow-CPU section."""
    global RUNS
    if quick:
        RUNS = 2
    count = 20 if quick else 100
    load_before = os.getloadavg()
    cold = cold_visits(playwright, fixtures, base_url)
    reloads = cgroup_reloads(playwright, fixtures, base_url)
    cdp = cdp_reloads(playwright, fixtures, base_url)
    warm, memory = warm_and_memory(playwright, fixtures, base_url, count)
    load_after = os.getloadavg()

    pick = lambda runs, key: [run[key] for run in runs]
    first_cold = median(pick(cold, "firstAnswer"))
    first_reload = median(pick(reloads, "firstAnswer"))
    ready_reload = median(pick(reloads, "ready"))
    first_ink = median(pick(cdp, "firstInk"))
    longest = median(pick(cdp, "longestTask"))
    warm_median = {key: median(run["total"]) for key, run in warm.items()}
    peak = max(rss for (mode, _), (rss, _) in memory.items() if mode in ("digit", "number"))
    growth = {mode: memory[mode, MEMORY_CHECKPOINTS[-1]][0] - memory[mode, MEMORY_CHECKPOINTS[1]][0] for mode in ("digit", "number")}
    backends = lambda runs: ", ".join(sorted({run["backend"] for run in runs}))
    share = f"cgroup {round(CPU_SHARE * 100)}%"
    targets = [
        Target("first visit → first answer, digit already drawn, server reachable", f"≤ {TARGETS_MS['first_answer_cold']:g} ms",
               spread(pick(cold, "firstAnswer")), first_cold <= TARGETS_MS["first_answer_cold"],
               f"{share}; answered by {backends(cold)}; page wired {spread(pick(cold, 'wired'))}"),
        Target("cached reload → first answer, digit already drawn, server reachable", f"≤ {TARGETS_MS['first_answer_reload']:g} ms",
               spread(pick(reloads, "firstAnswer")), first_reload <= TARGETS_MS["first_answer_reload"],
               f"{share}; answered by {backends(reloads)}; page wired {spread(pick(reloads, 'wired'))}"),
        Target("cached reload → in-browser digit reader ready", f"≤ {TARGETS_MS['ready_reload']:g} ms",
               spread(pick(reloads, "ready")), ready_reload <= TARGETS_MS["ready_reload"], share),
        Target("cached reload → the pad inks the first stroke", f"≤ {TARGETS_MS['first_ink_reload']:g} ms",
               spread(pick(cdp, "firstInk")), first_ink <= TARGETS_MS["first_ink_reload"],
               f"CDP {CDP_SLOW_RATE}×; a canvas pixel changes; Playwright's own reaction to the wired page included"),
        Target("longest main-thread task, navigation → ready (Long Tasks API)", f"≤ {TARGETS_MS['longest_task']:g} ms",
               spread(pick(cdp, "longestTask")), longest <= TARGETS_MS["longest_task"], f"CDP {CDP_SLOW_RATE}×, cached reload"),
        Target("warm prediction through the worker, pad pixels → answer", f"≤ {TARGETS_MS['warm']:g} ms",
               f"{warm_median['digit', 1]:.2f} ms", warm_median["digit", 1] <= TARGETS_MS["warm"], f"backend {warm['digit', 1]['backend']}"),
        Target(f"warm prediction through the worker, CDP {CDP_WARM_RATE}×", f"≤ {TARGETS_MS['warm_throttled']:g} ms",
               f"{warm_median['digit', CDP_WARM_RATE]:.2f} ms", warm_median["digit", CDP_WARM_RATE] <= TARGETS_MS["warm_throttled"],
               "CDP slows the page's thread, not the worker's"),
        Target(f"warm in-browser read of a {len(NUMBER)}-digit number through the worker, pad pixels → answer",
               f"≤ {TARGETS_MS['number_warm']:g} ms", f"{warm_median['number', 1]:.2f} ms",
               warm_median["number", 1] <= TARGETS_MS["number_warm"], f"read {warm['number', 1]['answer']} (written {NUMBER})"),
        Target("renderer memory after 100 predictions in each mode, flat", f"≤ {MEMORY_TARGET_MB:g} MB",
               f"{peak:.0f} MB; {growth['digit']:+.1f} / {growth['number']:+.1f} MB from 50 to 100",
               peak <= MEMORY_TARGET_MB and max(growth.values()) < 5,
               "RSS of the page's renderer (its workers are its threads), /proc/PID/smaps_rollup; PSS beside it in the section"),
    ]
    rows = lambda runs, keys: [[index + 1, *[f"{run[key]:.0f}" if isinstance(run[key], float) else run[key] for key in keys]]
                               for index, run in enumerate(runs)]
    warm_rows = [[mode, f"{rate}×", len(run["total"]), run["backend"], f"{median(run['total']):.2f} ms", f"{percentile(run['total'], 90):.2f} ms",
                  f"{median(run['worker']):.2f} ms", f"{median(run['pageThread']):.2f} ms ({percentile(run['pageThread'], 90):.2f} ms)",
                  run["answer"]] for (mode, rate), run in warm.items()]
    memory_rows = [[mode, *[f"{memory[mode, checkpoint][0]:.0f} MB (PSS {memory[mode, checkpoint][1]:.0f} MB)" if (mode, checkpoint) in memory
                            else "—" for checkpoint in MEMORY_CHECKPOINTS]] for mode in ("digit, no in-browser model", "digit", "number")]
    markdown = "\n\n".join([
        f"**Slow CPU**: two stand-ins for a Pi. *{share}*: every Chromium process in a cgroup v1 `cpu` group with "
        f"`cpu.cfs_quota_us` = {round(CPU_SHARE * CPU_PERIOD_US)} per `cpu.cfs_period_us` = {CPU_PERIOD_US}. *CDP {CDP_SLOW_RATE}×*: "
        "Emulation.setCPUThrottlingRate, the page's main thread only. The server runs outside both. Medians of "
        f"{RUNS} runs (range in brackets); ms since navigation on the page's clock. \"First answer, digit already drawn\" = "
        "page wired (pad and buttons live) + that Predict's answer (Playwright draws far slower than a finger, so drawing "
        f"is not counted). Load average of this shared 2-core machine: {load_before[0]:.1f} before, {load_after[0]:.1f} after.",
        "First visits (" + share + "):",
        table(["Run", "Page wired", "Predict → answer", "First answer", "By", "Model ready"],
              rows(cold, ["wired", "pressToAnswer", "firstAnswer", "backend", "ready"])),
        "Cached reloads (" + share + "; phases from the worker's marks):",
        table(["Run", "Page wired", "Predict → answer", "First answer", "By", "Model ready", "Runtime imported", "Model loaded",
               "Wasm instantiated", "Session created"],
              [[*row, *[f"{run.get(f'classifier:{phase}', float('nan')):.0f}"
                        for phase in ("runtime-imported", "model-loaded", "wasm-instantiated", "session-created")]]
               for row, run in zip(rows(reloads, ["wired", "pressToAnswer", "firstAnswer", "backend", "ready"]), reloads)]),
        f"Cached reloads (CDP {CDP_SLOW_RATE}×):",
        table(["Run", "Page wired", "First stroke inked", "Model ready", "Longest task until ready", "of which before wired", "Long tasks"],
              rows(cdp, ["wired", "firstInk", "ready", "longestTask", "longestBeforeWired", "longTasks"])),
        f"Warm predictions through the worker ({count} each after 10 untimed; total = readPixels + classify round trip; "
        "worker = the run inside the worker), taking turns with the same file run on the page's own thread as before "
        "the worker (readPixels + session.run; median, p90 in brackets):",
        table(["Mode", "CPU", "Predictions", "Backend", "Median", "p90", "Worker median", "On the page's thread", "Read"], warm_rows),
        "The page's renderer (its workers are its threads) after N predictions through the page's Predict button, digit "
        "then number mode, one page: resident memory (RSS, shared pages counted whole), PSS in brackets:",
        table(["Mode", *[f"after {checkpoint}" for checkpoint in MEMORY_CHECKPOINTS]], memory_rows),
    ])
    return markdown, targets
