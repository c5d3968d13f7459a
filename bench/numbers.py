"""Numbers: the shipped number reader against the baseline, on composed numbers of 1-8 digits never trained on.

    python -m bench.numbers [--quick]

Lines come from bench/number_sets.py: MNIST test digits, and the pad-drawn digits of the drawn-digit evaluation
at each pen width, composed by train/compose.py. Every reader reads the very same line images (float32, ink = 1):
- the number reader (the manifest's `numbers` section), its default variant and, if another, its browser variant;
- the baseline: split the line on empty columns (no pixel above the ink threshold), read each piece with the
  shipped digit reader (its default variant) and join the digits. Its verdict: "number" when every piece reads
  as a digit, "not_number" when no piece does or when one reads as "not_digit", otherwise "unsure".
Per-digit errors come from aligning the number read with the one written by edit distance.
"""

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from bench.drawn_sets import PEN_WIDTHS
from bench.models import load_manifest, mnist_test, open_session, reader_path
from bench.number_sets import LENGTHS, drawn_numbers, drawn_pool, mnist_numbers, single_digits
from bench.report import Section, Target, run_section, script_command, table
from reader.contract import PAD_PEN_WIDTH
from reader.normalization import INK_THRESHOLD

MNIST_PER_LENGTH, QUICK_MNIST_PER_LENGTH = 500, 6
DRAWN_PER_LENGTH, QUICK_DRAWN_PER_LENGTH = 42, 1      # per pen width, from redrawn MNIST; about as many in fonts
DRAWN_MNIST_POOL, QUICK_DRAWN_MNIST_POOL = 500, 20
QUICK_SINGLE_DIGITS = 100                             # a full run reads all 10,000 MNIST test digits alone
TARGET_FOUR_DIGITS = 0.98
TARGET_SINGLE_DIGITS = 0.99
TARGET_TRAINING_SECONDS = 30 * 60
TARGET_LENGTH = 4
CONFUSIONS_SHOWN = 8
BOX_OVERLAP = 0.5                                     # a digit's box is on it when their intersection over union reaches this
MNIST_SET, SINGLE_SET = "MNIST test", "single MNIST test digits"


def drawn_set(width):
    return f"pad-drawn, pen {width}"


DRAWN_SETS = [drawn_set(width) for width in PEN_WIDTHS]
DRAWN_GROUP = "pad-drawn, every pen"


def align(written, read):
    """Edit-distance alignment of two digit strings: (substitutions [(written, read)], deletions [written], insertions [read])."""
    rows, cols = len(written) + 1, len(read) + 1
    cost = np.zeros((rows, cols), int)
    cost[:, 0], cost[0, :] = np.arange(rows), np.arange(cols)
    for i in range(1, rows):
        for j in range(1, cols):
            cost[i, j] = min(cost[i - 1, j - 1] + (written[i - 1] != read[j - 1]), cost[i - 1, j] + 1, cost[i, j - 1] + 1)
    substitutions, deletions, insertions = [], [], []
    i, j = len(written), len(read)
    while i or j:
        if i and j and cost[i, j] == cost[i - 1, j - 1] + (written[i - 1] != read[j - 1]):
            if written[i - 1] != read[j - 1]:
                substitutions.append((written[i - 1], read[j - 1]))
            i, j = i - 1, j - 1
        elif i and cost[i, j] == cost[i - 1, j] + 1:
            deletions.append(written[i - 1])
            i -= 1
        else:
            insertions.append(read[j - 1])
            j -= 1
    return substitutions, deletions, insertions


def box_overlap(first, second):
    """Intersection over union of two (x0, y0, x1, y1) boxes, x1/y1 exclusive."""
    width = min(first[2], second[2]) - max(first[0], second[0])
    height = min(first[3], second[3]) - max(first[1], second[1])
    if width <= 0 or height <= 0:
        return 0.0
    area = lambda box: (box[2] - box[0]) * (box[3] - box[1])
    return width * height / (area(first) + area(second) - width * height)


@dataclass
class Tally:
    """One reader's answers on one set."""
    right_by_length: dict = field(default_factory=dict)     # length -> [bool]
    digits: int = 0
    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    confusions: Counter = field(default_factory=Counter)
    verdicts: Counter = field(default_factory=Counter)
    wrong_yet_number: int = 0
    right_yet_refused: int = 0                              # read right, yet not called "number"
    boxes_checked: int = 0                                  # digits of lines read right
    boxes_on_digit: int = 0                                 # of which the box found overlaps the written one enough

    def add(self, written, read, verdict, boxes, written_boxes):
        right = written == read
        if right:
            self.boxes_checked += len(written)
            self.boxes_on_digit += sum(box_overlap(found, box) >= BOX_OVERLAP for found, box in zip(boxes, written_boxes))
        self.right_by_length.setdefault(len(written), []).append(right)
        substitutions, deletions, insertions = align(written, read)
        self.digits += len(written)
        self.substitutions += len(substitutions)
        self.deletions += len(deletions)
        self.insertions += len(insertions)
        self.confusions.update([f"{a}→{b}" for a, b in substitutions] + [f"{a}→∅" for a in deletions] + [f"∅→{b}" for b in insertions])
        self.verdicts[verdict] += 1
        self.wrong_yet_number += (not right) and verdict == "number"
        self.right_yet_refused += right and verdict != "number"

    def lines(self):
        return sum(len(flags) for flags in self.right_by_length.values())

    def accuracy(self, length=None):
        flags = self.right_by_length.get(length, []) if length else [flag for flags in self.right_by_length.values() for flag in flags]
        return float(np.mean(flags)) if flags else None

    def digit_accuracy(self):
        return 1 - (self.substitutions + self.deletions + self.insertions) / self.digits

    def merge(self, other):
        for length, flags in other.right_by_length.items():
            self.right_by_length.setdefault(length, []).extend(flags)
        for name in ("digits", "substitutions", "deletions", "insertions", "wrong_yet_number", "right_yet_refused", "boxes_checked", "boxes_on_digit"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.confusions.update(other.confusions)
        self.verdicts.update(other.verdicts)
        return self


class NumberReader:
    """The number reader of the manifest's `numbers` section, one variant, on onnxruntime as the server runs it."""

    def __init__(self, name, artifacts_dir, section, variant):
        self.name = name
        self.session = open_session(reader_path(artifacts_dir, section, variant))
        outputs = section["outputs"]
        self.input_name = section["input"]["name"]
        self.fetch = [outputs["digits"]["name"], outputs["verdict"]["name"], outputs["boxes"]["name"]]
        self.verdicts = outputs["verdict"]["values"]
        self.tallies = {}

    def answer(self, image):
        """(the digits read, the verdict, each digit's box)."""
        digits, verdict, boxes = self.session.run(self.fetch, {self.input_name: image})
        return "".join(str(int(digit)) for digit in digits), self.verdicts[int(verdict[0])], boxes.tolist()

    def read(self, set_name, line):
        self.tallies.setdefault(set_name, Tally()).add(line.number, *self.answer(line.image), line.boxes)


def empty_column_pieces(image, threshold=INK_THRESHOLD):
    """(x0, x1) of each run of columns holding ink, left to right, x1 exclusive."""
    inked = np.concatenate([[False], (image > threshold).any(axis=0), [False]])
    edges = np.flatnonzero(inked[1:] != inked[:-1])
    return list(zip(edges[::2], edges[1::2]))


class SplitBaseline(NumberReader):
    """Split on empty columns, read each piece with the shipped digit reader, join."""

    def __init__(self, name, artifacts_dir, manifest, variant=None):
        self.name = name
        self.session = open_session(reader_path(artifacts_dir, manifest, variant or manifest["default_variant"]))
        self.input_name = manifest["input"]["name"]
        self.fetch = [manifest["outputs"]["probabilities"]["name"], manifest["outputs"]["verdict"]["name"]]
        self.verdicts = manifest["outputs"]["verdict"]["values"]
        self.tallies = {}

    def pieces(self, image):
        return empty_column_pieces(image)

    def answer(self, image):
        digits, said, boxes = [], [], []
        for x0, x1 in self.pieces(image):
            piece = np.ascontiguousarray(image[:, x0:x1])
            probabilities, verdict = self.session.run(self.fetch, {self.input_name: piece})
            digits.append(str(int(probabilities.argmax())))
            said.append(self.verdicts[int(verdict[0])])
            rows = np.flatnonzero((piece > INK_THRESHOLD).any(axis=1))
            boxes.append((x0, rows[0], x1, rows[-1] + 1) if len(rows) else (x0, 0, x1, 0))
        if not said or "not_digit" in said:
            verdict = "not_number"
        else:
            verdict = "number" if all(verdict == "digit" for verdict in said) else "unsure"
        return "".join(digits), verdict, boxes


class DigitReader(SplitBaseline):
    """The shipped digit reader on the whole image, for single digits."""

    def pieces(self, image):
        return [(0, image.shape[1])]


def evaluate(readers, digit_reader, quick):
    """Every reader reads every line of every set; the digit reader alone reads the single digits."""
    images, labels = mnist_test()
    uint8 = np.round(images * 255).astype(np.uint8)

    def read_all(set_name, lines, readers=readers):
        for line in lines:
            for reader in readers:
                reader.read(set_name, line)

    single = QUICK_SINGLE_DIGITS if quick else len(labels)
    read_all(SINGLE_SET, single_digits(uint8[:single], labels[:single]), readers + [digit_reader])
    read_all(MNIST_SET, mnist_numbers(uint8, labels, QUICK_MNIST_PER_LENGTH if quick else MNIST_PER_LENGTH))
    pool = drawn_pool(uint8, labels, QUICK_DRAWN_MNIST_POOL if quick else DRAWN_MNIST_POOL)
    for width_index, width in enumerate(PEN_WIDTHS):
        read_all(drawn_set(width), drawn_numbers(pool, width_index, QUICK_DRAWN_PER_LENGTH if quick else DRAWN_PER_LENGTH))
    return pool


def combined(reader, set_names):
    total = Tally()
    for name in set_names:
        total.merge(reader.tallies[name])
    return total


def format_share(value):
    return "—" if value is None else f"{value:.4f}"


def training_target(section):
    """The trainer's own clock, from the manifest (never re-run here); a run resumed from another counts both."""
    training = section.get("training", {})
    seconds = training.get("total_seconds", training.get("seconds"))
    if seconds is None:
        return Target("number reader: full training on 2 cores", f"≤ {TARGET_TRAINING_SECONDS // 60} min", "not recorded", False,
                      "the manifest's numbers.training has no seconds")
    stages = []
    resumed = training
    while resumed:
        stages.append(f"{resumed.get('recipe', '?')}, {resumed.get('seconds', 0) / 60:.1f} min")
        resumed = resumed.get("resumed_from")
    note = "from the manifest's numbers.training: " + "; after ".join(stages)
    return Target("number reader: full training on 2 cores", f"≤ {TARGET_TRAINING_SECONDS // 60} min", f"{seconds / 60:.1f} min",
                  seconds <= TARGET_TRAINING_SECONDS, note)


def measure(args):
    manifest = load_manifest(args.artifacts)
    if "numbers" not in manifest:
        markdown = f"**PENDING**: {args.artifacts / 'manifest.json'} has no `numbers` section: train and convert the number reader first."
        return Section("Numbers", script_command("bench.numbers", args), markdown,
                       [Target("number reader in the manifest", "present", "missing", False, "no numbers section")])
    section = manifest["numbers"]
    variants = [section["default_variant"]]
    browser = section.get("browser_variant")
    if browser in section["variants"] and browser not in variants:
        variants.append(browser)
    readers = [NumberReader(f"number reader {variant}", args.artifacts, section, variant) for variant in variants]
    baseline = SplitBaseline(f"baseline: split + digit reader {manifest['default_variant']}", args.artifacts, manifest)
    readers.append(baseline)
    digit_reader = DigitReader(f"digit reader {manifest['default_variant']}", args.artifacts, manifest)
    pool = evaluate(readers, digit_reader, args.quick)
    shipped = readers[0]
    quick_note = " (quick run: a sample)" if args.quick else ""

    groups = {MNIST_SET: [MNIST_SET], DRAWN_GROUP: DRAWN_SETS}
    by_length = [[reader.name, name, *[format_share(combined(reader, sets).accuracy(length)) for length in LENGTHS],
                  format_share(combined(reader, sets).accuracy())] for name, sets in groups.items() for reader in readers]
    by_width = [[reader.name, *[format_share(reader.tallies[name].accuracy()) for name in DRAWN_SETS],
                 *[f"{reader.tallies[name].digit_accuracy():.4f}" for name in DRAWN_SETS]] for reader in readers]
    all_sets = [SINGLE_SET, MNIST_SET, *DRAWN_SETS]
    per_digit, confusions, verdicts = [], [], []
    for reader in readers:
        for name in [SINGLE_SET, MNIST_SET, DRAWN_GROUP]:
            tally = combined(reader, groups.get(name, [name]))
            confusions.append([reader.name, name, ", ".join(f"{pair} ×{count}" for pair, count in tally.confusions.most_common(CONFUSIONS_SHOWN)) or "—"])
            per_digit.append([reader.name, name, f"{tally.digits:,}", tally.substitutions, tally.deletions, tally.insertions,
                              f"{tally.digit_accuracy():.4f}", f"{tally.boxes_on_digit / max(1, tally.boxes_checked):.3f}"])
            lines = tally.lines()
            wrong = lines - sum(sum(flags) for flags in tally.right_by_length.values())
            verdicts.append([reader.name, name, f"{lines:,}", *[f"{tally.verdicts[value] / lines:.3f}" for value in ("number", "unsure", "not_number")],
                             f"{tally.wrong_yet_number / wrong:.3f} of {wrong:,}" if wrong else "— (none wrong)",
                             f"{tally.right_yet_refused / (lines - wrong):.3f} of {lines - wrong:,}" if lines > wrong else "— (none right)"])

    four = combined(shipped, [MNIST_SET]).accuracy(TARGET_LENGTH)
    single = shipped.tallies[SINGLE_SET].accuracy()
    others = lambda measure_of: "; ".join(f"{reader.name} {measure_of(reader):.4f}" for reader in readers[1:])
    targets = [
        Target(f"{TARGET_LENGTH}-digit numbers from MNIST test digits, whole number right, {shipped.name}", f"≥ {TARGET_FOUR_DIGITS}",
               f"{four:.4f}", four >= TARGET_FOUR_DIGITS,
               f"{len(shipped.tallies[MNIST_SET].right_by_length[TARGET_LENGTH]):,} numbers; "
               + others(lambda reader: reader.tallies[MNIST_SET].accuracy(TARGET_LENGTH)) + quick_note),
        Target(f"single digits through the number reader, {shipped.name}", f"≥ {TARGET_SINGLE_DIGITS}", f"{single:.4f}",
               single >= TARGET_SINGLE_DIGITS,
               f"{shipped.tallies[SINGLE_SET].lines():,} MNIST test digits; " + others(lambda reader: reader.tallies[SINGLE_SET].accuracy())
               + f"; {digit_reader.name} on the same images {digit_reader.tallies[SINGLE_SET].accuracy():.4f}" + quick_note),
        training_target(section),
    ]
    sources = Counter("MNIST test, redrawn" if source == "mnist" else "fonts" for source in pool.sources)
    counts = {name: shipped.tallies[name].lines() for name in all_sets}
    markdown = "\n\n".join([
        f"Number reader `{section['model_id']}` ({', '.join(variants)}); baseline: the digit reader `{manifest['model_id']}` on each "
        f"piece between empty columns. Lines composed by train/compose.py: {counts[MNIST_SET]:,} from MNIST test digits "
        f"({counts[MNIST_SET] // len(LENGTHS):,} per length); {counts[DRAWN_SETS[0]]:,} per pen width ({', '.join(map(str, PEN_WIDTHS))}; "
        f"the pad's is {PAD_PEN_WIDTH}) from the drawn-digit evaluation's digits ({sources['MNIST test, redrawn']:,} MNIST test digits "
        f"redrawn, {sources['fonts']:,} handwriting-font digits; half the lines in redrawn MNIST digits, half each in one font); and {counts[SINGLE_SET]:,} MNIST test digits alone.",
        "**Whole number right**, by length:",
        table(["Reader", "Set", *[str(length) for length in LENGTHS], "all"], by_length),
        "Pad-drawn numbers by pen width, whole number right, then per digit:",
        table(["Reader", *[f"pen {width}" for width in PEN_WIDTHS], *[f"per digit, pen {width}" for width in PEN_WIDTHS]], by_width),
        "**Per digit**, the number read aligned with the one written by edit distance; accuracy = 1 − (substitutions + "
        "deletions + insertions) / digits written. Boxes: in the lines read right, the share of digits whose box overlaps "
        f"the digit's own ink box with an intersection over union of at least {BOX_OVERLAP} (the baseline's box: its piece's ink).",
        table(["Reader", "Set", "Digits", "Substituted", "Deleted", "Inserted", "Per-digit accuracy", "Boxes on their digit"], per_digit),
        "Commonest confusions (written→read; ∅: a digit missed, or one read that was not written):",
        table(["Reader", "Set", "Confusions"], confusions),
        "**Verdicts**: the share of lines given each; \"wrong yet number\": the share of wrongly read lines still called \"number\" "
        "(the lower, the more of its mistakes the verdict owns up to); \"right yet refused\": the share of lines read right "
        "but not called \"number\":",
        table(["Reader", "Set", "Lines", "number", "unsure", "not_number", "wrong yet number", "right yet refused"], verdicts),
    ])
    return Section("Numbers", script_command("bench.numbers", args), markdown, targets)


if __name__ == "__main__":
    run_section("bench.numbers", __doc__.splitlines()[0], measure)
