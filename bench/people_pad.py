"""People's numbers on the pad: numbers written in Chromium on the kiosk page's number pad, with its own pen, read by the page.

    python -m bench.people_pad [--quick] [--artifacts DIR]

Held-out glyphs of bench/people_sets.py become pen strokes: MNIST test digits and handwriting-font digits along
their centre line (skeleton, traced into polylines), plotter-font digits as their own strokes. Each number is
written as separate digits with gaps of 0.1-0.3 of a digit's height, in one hand, with the mouse, on the page
in number mode at the kiosk's screen size (`python -m serve` serves it); Predict is pressed and the answer the
page shows (`data-number`, read in the page by its variant) is scored. The pixels the page fed its reader are
then read beside it, in onnxruntime, by the server's number reader and by the per-piece baseline of each variant.
"""

import base64

import numpy as np

from bench.models import load_manifest, mnist_test, pad_image, png_bytes
from bench.numbers import NumberReader, SplitBaseline, Tally, format_share
from bench.people_numbers import TARGET_RIGHT_YET_REFUSED, shipped_variants
from bench.people_sets import GAP, PEN_SOURCES, existing, handwriting_font_files, plotter_font_names
from bench.report import ROOT, Section, Target, run_section, script_command, table
from bench.servers import SERVE_ENVIRONMENT, ServerProcess
from reader.contract import NUMBER_PAD_HEIGHT, NUMBER_PAD_WIDTH, PAD_PEN_WIDTH

TARGET_FOUR_DIGITS = 0.95
TARGET_LENGTH = 4
LENGTHS = (2, 3, 4, 6)
PER_SOURCE = {TARGET_LENGTH: 40, 2: 6, 3: 6, 6: 6}
QUICK_PER_SOURCE = {TARGET_LENGTH: 2, 2: 1, 3: 1, 6: 1}
TRACE_SIDE = 112                 # glyphs are traced on a raster this many pixels square
POINT_STEP = 6                   # and every 6th pixel of the path is a pointer sample (the pad curves between samples)
DIGIT_HEIGHT = (0.45, 0.7)       # a digit's height, as a share of the pad's height
SEED = 20261208
PAD_ASPECT = NUMBER_PAD_WIDTH / NUMBER_PAD_HEIGHT
PAGE = "/?mode=number&auto=0"
# The pad's targets are judged on hands like people's; the ornate gothic plotter fonts are reported beside them.
PEOPLE_HANDS = ("MNIST test", "handwriting fonts")
# What the page shows, then its own reader's full answer and the very pixels it read (the page's modules, as the
# page calls them): the shown number is empty when the page refuses, the reader's answer still has the digits.
PAGE_ANSWER = """async () => {
  const result = document.querySelector('[data-testid="result"]');
  const shown = { number: result.dataset.number ?? '', verdict: result.dataset.verdict, backend: result.dataset.backend };
  const { createClassifier } = await import('/classifier.js');
  const { readPixels } = await import('/pad.js');
  window.__benchClassifier ??= createClassifier({ mode: 'number' });
  const classifier = window.__benchClassifier;
  await classifier.started;
  const image = readPixels(document.querySelector('[data-testid="pad"]'), classifier.inputFormat);
  const { height, width } = image;
  // The float32 pixels as base64 (a JSON array of a quarter million numbers takes seconds to cross), taken
  // before classify() hands the pixels over to the worker.
  const bytes = new Uint8Array(image.data.buffer, image.data.byteOffset, image.data.byteLength);
  let text = '';
  for (let start = 0; start < bytes.length; start += 0x8000) text += String.fromCharCode(...bytes.subarray(start, start + 0x8000));
  const { number, verdict, backend } = await classifier.classify(image);
  return { shown, read: { number, verdict, backend }, image: { data: btoa(text), height, width } };
}"""


def trace(mask):
    """Polylines (lists of (row, col)) along a one-pixel skeleton, endpoints first; a diagonal step counts only where
    no two straight steps make it, so the pen does not go round the skeleton's little corners twice."""
    points = set(map(tuple, np.argwhere(mask)))

    def neighbours(point):
        y, x = point
        found = []
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                other = (y + dy, x + dx)
                if (dy or dx) and other in points and (not (dy and dx) or ((y + dy, x) not in points and (y, x + dx) not in points)):
                    found.append(other)
        return found

    used, strokes = set(), []
    for start in sorted(points, key=lambda point: (len(neighbours(point)) != 1, point)):
        while True:
            path, current = [start], start
            while True:
                options = [other for other in neighbours(current) if frozenset((current, other)) not in used]
                if not options:
                    break
                if len(path) > 1:  # keep going the way the pen was going
                    heading = np.subtract(current, path[-2])
                    options.sort(key=lambda other: -float(np.dot(heading, np.subtract(other, current))))
                used.add(frozenset((current, options[0])))
                path.append(options[0])
                current = options[0]
            if len(path) < 2:
                break
            strokes.append(path)
    return strokes


def raster_strokes(image):
    """A glyph raster (ink = 1, square) as pen strokes in 0..1 (x, y), along its centre line, every few points kept."""
    from reader.pen import skeleton

    side = image.shape[0]
    strokes = []
    for path in trace(skeleton(image)):
        kept = path[::POINT_STEP] if len(path) > 2 else path
        if kept[-1] != path[-1]:
            kept.append(path[-1])
        strokes.append(np.array([(x / (side - 1), y / (side - 1)) for y, x in kept]))
    return strokes


def stroke_hands(mnist_count, seed=SEED):
    """{source: [(hand name, {digit: [strokes, ...]})]}: held-out digits as pen strokes in 0..1."""
    from PIL import ImageFont

    from bench.drawn_sets import glyph
    from reader.pen import fit_to_pad
    from train.strokes import _normalized

    images, labels = mnist_test()
    chosen = np.random.default_rng([seed, 0]).choice(len(labels), mnist_count, replace=False)
    mnist = {}
    for index in chosen:
        mnist.setdefault(int(labels[index]), []).append(raster_strokes(fit_to_pad(images[index], TRACE_SIDE)))
    fonts = []
    for path in existing(handwriting_font_files()):
        font = ImageFont.truetype(str(path), 200)
        fonts.append((path.stem, {value: [raster_strokes(glyph(font, str(value), TRACE_SIDE))] for value in range(10)}))
    from HersheyFonts import HersheyFonts

    from bench.people_sets import plotter_hands

    allowed = {hand.name: set(hand.digits) for hand in plotter_hands()}  # the digits that differ from training's
    plotter, hershey = [], HersheyFonts()
    for name in plotter_font_names():
        if name not in allowed:
            continue
        hershey.load_default_font(name)
        digits = {}
        for value in sorted(allowed[name]):
            digits[value] = [_normalized([stroke for stroke in hershey.strokes_for_text(str(value)) if len(stroke) > 1])]
        plotter.append((name, digits))
    return {"MNIST test": [("MNIST test", mnist)], "handwriting fonts": fonts, "plotter fonts": plotter}


def written_number(digits, rng):
    """Digit strokes (each in 0..1) written left to right on the number pad as separate digits: strokes in pad units.

    Sizes and gaps are the ink's, so the pen's width (PAD_PEN_WIDTH of the pad's height) is taken off the centre lines."""
    ink_height = rng.uniform(*DIGIT_HEIGHT)
    height = ink_height - PAD_PEN_WIDTH
    boxes = []
    for strokes in digits:
        points = np.concatenate(strokes)
        low, high = points.min(0), points.max(0)
        boxes.append((low, np.maximum(high - low, 1e-6)))
    # Widths in pad heights: a digit keeps its aspect; gaps are a share of a digit's height.
    widths = [height * size[0] / size[1] for _, size in boxes]
    gaps = rng.uniform(*GAP, len(digits) - 1) * ink_height + PAD_PEN_WIDTH
    total = sum(widths) + gaps.sum()
    if total > 0.92 * PAD_ASPECT:  # a long number written smaller, as a person would to fit it
        shrink = 0.92 * PAD_ASPECT / total
        height, widths, gaps, total = height * shrink, [width * shrink for width in widths], gaps * shrink, total * shrink
    left = (PAD_ASPECT - total) / 2
    top = (1 - height) / 2 + rng.uniform(-0.05, 0.05)
    placed = []
    for index, (strokes, (low, size)) in enumerate(zip(digits, boxes)):
        scale = height / size[1]
        for stroke in strokes:
            x = left + (stroke[:, 0] - low[0]) * scale
            y = top + (stroke[:, 1] - low[1]) * scale
            placed.append([(float(px / PAD_ASPECT), float(py)) for px, py in zip(x, y)])
        left += widths[index] + (gaps[index] if index < len(gaps) else 0)
    return placed


def pad_numbers(hands, per_source, seed=SEED):
    """[(source, hand, number, strokes)], seeded: each number in one hand, separate digits."""
    numbers = []
    for source_index, source in enumerate(PEN_SOURCES):
        rng = np.random.default_rng([seed, source_index])
        for length, count in per_source.items():
            for index in range(count):
                name, digits = hands[source][index % len(hands[source])]
                values = [int(rng.choice(sorted(digits))) for _ in range(length)]
                strokes = [digits[value][int(rng.integers(len(digits[value])))] for value in values]
                numbers.append((source, name, "".join(map(str, values)), written_number(strokes, rng)))
    return numbers


def write_and_read(page, fixtures, strokes):
    page.click(fixtures.CLEAR)
    fixtures.draw(page, strokes)
    page.click(fixtures.PREDICT)
    page.wait_for_selector(fixtures.SETTLED_ANSWER)
    answer = page.evaluate(PAGE_ANSWER)
    image = answer["image"]
    pixels = np.frombuffer(base64.b64decode(image["data"]), np.float32).reshape(image["height"], image["width"])
    return answer["shown"], answer["read"], pixels


def measure(args):
    from playwright.sync_api import sync_playwright

    from tests import browser_fixtures as fixtures  # Chromium's path and flags, and how to draw, defined once

    manifest = load_manifest(args.artifacts)
    vendor = ROOT / "web" / "vendor"
    if "numbers" not in manifest or not vendor.is_dir():
        why = "web/vendor is missing: run `make vendor`" if "numbers" in manifest else "the manifest has no number reader"
        return Section("People's numbers on the pad", script_command("bench.people_pad", args), f"**PENDING**: {why}.",
                       [Target("people's numbers on the pad", "measured", "not measured", False, why)])
    section = manifest["numbers"]
    hands = stroke_hands(60 if args.quick else 600)
    numbers = pad_numbers(hands, QUICK_PER_SOURCE if args.quick else PER_SOURCE)
    variants = shipped_variants(section)
    readers = [NumberReader(f"number reader {variant}, onnxruntime", args.artifacts, section, variant) for variant in variants]
    readers += [SplitBaseline(f"baseline: split + digit reader {variant}", args.artifacts, manifest, variant) for variant in variants]
    shown_tallies, page_tallies = {}, {}
    images, _ = mnist_test(1)
    arguments = ["-m", "serve", "--port", "0"] + (["--artifacts", str(args.artifacts)] if args.artifacts.resolve() != ROOT / "artifacts" else [])
    server = ServerProcess("ours", arguments, args.work_dir / "logs" / "people-pad-serve.log", SERVE_ENVIRONMENT)
    backends = set()
    with server.start(png_bytes(pad_image(images[0]))), sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=fixtures.CHROMIUM, args=fixtures.CHROMIUM_ARGS)
        context = browser.new_context(base_url=f"http://127.0.0.1:{server.port}", viewport=fixtures.KIOSK_VIEWPORT)
        context.set_default_timeout(60_000)
        page = context.new_page()
        page.goto(PAGE)
        page.wait_for_selector(fixtures.RUNTIME_READY)
        page_variant = page.get_attribute(fixtures.RUNTIME_READY, "data-variant")
        for source, _, number, strokes in numbers:
            shown, read, pixels = write_and_read(page, fixtures, strokes)
            backends.add(shown["backend"])
            keys = [("length", len(number)), ("source", source), ("all", "all")]
            if source in PEOPLE_HANDS:
                keys += [("people", len(number)), ("people", "all")]
            for key in keys:
                shown_tallies.setdefault(key, Tally()).add(number, shown["number"], shown["verdict"], [], [])
                page_tallies.setdefault(key, Tally()).add(number, read["number"], read["verdict"], [], [])
                for reader in readers:
                    reader.tallies.setdefault(key, Tally()).add(number, *reader.answer(pixels)[:2], [], [])
        browser.close()
    page_name = f"the page's reader ({page_variant or '?'}, in the page)"
    shown_name = f"what the page shows (answered by {', '.join(sorted(backends))}; nothing when it refuses)"
    return report(args, numbers, (shown_name, shown_tallies), (page_name, page_tallies), readers, page_variant)


def report(args, numbers, shown, page, readers, page_variant):
    rows = []
    (shown_name, shown_tallies), (page_name, page_tallies) = shown, page
    everyone = [shown, page] + [(reader.name, reader.tallies) for reader in readers]
    for name, tallies in everyone:
        rows.append([name, *[format_share(tallies[("length", length)].accuracy()) for length in LENGTHS],
                     *[format_share(tallies[("source", source)].accuracy(TARGET_LENGTH)) for source in PEN_SOURCES],
                     f"{tallies[('all', 'all')].digit_accuracy():.4f}"])
    verdicts = []
    for name, tallies in everyone[1:]:
        for label, key in [("all", ("all", "all")), *[(source, ("source", source)) for source in PEN_SOURCES]]:
            tally = tallies[key]
            right = sum(sum(flags) for flags in tally.right_by_length.values())
            wrong = tally.lines() - right
            verdicts.append([name, label, f"{tally.lines():,}",
                             *[f"{tally.verdicts[value] / tally.lines():.3f}" for value in ("number", "unsure", "not_number")],
                             f"{tally.wrong_yet_number / wrong:.3f} of {wrong:,}" if wrong else "—",
                             f"{tally.right_yet_refused / right:.3f} of {right:,}" if right else "—"])
    four = shown_tallies[("people", TARGET_LENGTH)]
    fp32 = next(reader for reader in readers if reader.name.startswith("number reader"))
    quick_note = " (quick run: a sample)" if args.quick else ""
    counts = {length: sum(len(number) == length for _, _, number, _ in numbers) for length in LENGTHS}
    people = page_tallies[("people", "all")]
    right = sum(sum(flags) for flags in people.right_by_length.values())
    refused = people.right_yet_refused / right if right else 0.0
    everything = page_tallies[("all", "all")]
    all_right = sum(sum(flags) for flags in everything.right_by_length.values())
    hands = " and ".join(PEOPLE_HANDS)
    ornate = [source for source in PEN_SOURCES if source not in PEOPLE_HANDS]
    targets = [
        Target(f"people's numbers on the pad: {TARGET_LENGTH} digits written in Chromium ({hands}), the right number shown, page ({page_variant})",
               f"≥ {TARGET_FOUR_DIGITS}", f"{four.accuracy():.4f}", four.accuracy() >= TARGET_FOUR_DIGITS,
               f"{four.lines()} numbers of separate digits; read by {fp32.name} on the page's pixels "
               f"{fp32.tallies[('people', TARGET_LENGTH)].accuracy():.4f}; beside them, "
               + "; ".join(f"{source}: shown {shown_tallies[('source', source)].accuracy(TARGET_LENGTH):.4f}" for source in ornate) + quick_note),
        Target(f"people's numbers on the pad: rightly read numbers refused ({hands}), page ({page_variant})", f"≤ {TARGET_RIGHT_YET_REFUSED:.0%}",
               f"{refused:.1%}", refused <= TARGET_RIGHT_YET_REFUSED,
               f"{people.right_yet_refused} of {right} right numbers; with {', '.join(ornate)} too: "
               f"{everything.right_yet_refused} of {all_right}" + quick_note),
    ]
    markdown = "\n\n".join([
        f"{len(numbers)} numbers ({', '.join(f'{counts[length]} of {length} digits' for length in LENGTHS)}) written with the mouse on the "
        f"kiosk page in number mode (800×480, Chromium headless), as separate digits with gaps of {GAP[0]}–{GAP[1]} of a digit's "
        "height, each in one hand: MNIST test digits and handwriting-font digits along their traced centre lines, plotter-font "
        f"digits as their strokes (bench/people_sets.py's held-out sources). The page's reader is its browser variant "
        f"({page_variant or 'unknown'}); the others read the very pixels the page fed it, in onnxruntime.",
        "**Whole number right** by length, at 4 digits by source, and per digit:",
        table(["Reader", *[f"{length} digits" for length in LENGTHS], *[f"4 digits, {source}" for source in PEN_SOURCES], "per digit"], rows),
        f"The targets are judged on {hands}; the ornate gothic plotter fonts are reported beside them.",
        "**Verdicts**:",
        table(["Reader", "Source", "Numbers", "number", "unsure", "not_number", "wrong yet number", "right yet refused"], verdicts),
    ])
    return Section("People's numbers on the pad", script_command("bench.people_pad", args), markdown, targets)


if __name__ == "__main__":
    run_section("bench.people_pad", __doc__.splitlines()[0], measure)
