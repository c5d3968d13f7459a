"""People's numbers: the shipped number reader on numbers as people write them, from sources never trained on.

    python -m bench.people_numbers [--quick] [--artifacts DIR] [--variant fp32|int8]

Lines come from bench/people_sets.py: MNIST test digits, held-out handwriting fonts and held-out plotter fonts
redrawn with the pad's pen, and UCI scans, in five layouts (separate digits, touching pairs, slanted, mixed sizes,
a wandering baseline), and numbers typeset in common typefaces. Each shipped variant of the number reader (fp32: the
server's; int8: the page's) is judged beside two readers built from the digit reader of the same variant:
- the per-piece baseline: split the line at empty columns and read each piece (bench/numbers.SplitBaseline);
- the digit reader on each written glyph alone, cut from its own layer (what reading the line could at best
  match, since it is told where every digit is).
Reported by length, source, layout and pen width, each on its own; whole number right and per digit (edit
distance), and the verdicts: wrong yet called "number", right yet refused.
"""

from bench.drawn_sets import PEN_WIDTHS
from bench.models import load_manifest
from bench.numbers import CONFUSIONS_SHOWN, NumberReader, SplitBaseline, Tally, format_share
from bench.people_sets import FULL, LAYOUTS, LENGTHS, PRINTED, QUICK, SCAN, SOURCES, TYPESET, people_lines
from bench.report import Section, Target, run_section, script_command, table

TARGET_SEPARATE = 0.97
TARGET_PRINTED = 0.97
TARGET_WRONG_YET_NUMBER = 0.30
TARGET_RIGHT_YET_REFUSED = 0.02
SHORT = (2, 3, 4)
PENS = (*(f"pen {width}" for width in PEN_WIDTHS), SCAN, PRINTED)
DIMENSIONS = {"length": LENGTHS, "source": SOURCES, "layout": (*LAYOUTS, TYPESET), "pen": PENS}


class GlyphsAlone(SplitBaseline):
    """The digit reader on each written glyph by itself: told where every digit is."""

    def answer_glyphs(self, glyphs):
        digits, said = [], []
        for piece in glyphs:
            probabilities, verdict = self.session.run(self.fetch, {self.input_name: piece})
            digits.append(str(int(probabilities.argmax())))
            said.append(self.verdicts[int(verdict[0])])
        verdict = "not_number" if "not_digit" in said else "number" if all(value == "digit" for value in said) else "unsure"
        return "".join(digits), verdict, []


def keys(line):
    """Every tally a line counts in: one per dimension, and the separate-digit target's (source, length)."""
    found = [("length", len(line.number)), ("source", line.source),
             ("layout", line.layout), ("pen", line.pen), ("all", "all")]
    if line.layout in ("separate", TYPESET) and len(line.number) in SHORT:
        found.append(("separate", line.source, len(line.number)))
    return found


class Evaluation:
    """Each variant's three readers, and their tallies under every key."""

    def __init__(self, artifacts_dir, variants):
        manifest = load_manifest(artifacts_dir)
        section = manifest["numbers"]
        self.manifest, self.section, self.variants = manifest, section, variants
        self.readers, self.hands = {}, {}
        for variant in variants:
            self.readers[variant] = {
                "number": NumberReader(f"number reader {variant}", artifacts_dir, section, variant),
                "baseline": SplitBaseline(f"baseline: split + digit reader {variant}", artifacts_dir, manifest, variant),
                "alone": GlyphsAlone(f"digit reader {variant}, each glyph alone", artifacts_dir, manifest, variant),
            }

    def read(self, line):
        self.hands.setdefault(line.source, set()).add(line.hand)
        for readers in self.readers.values():
            for kind, reader in readers.items():
                answer = reader.answer_glyphs(line.glyphs) if kind == "alone" else reader.answer(line.image)
                for key in keys(line):
                    reader.tallies.setdefault(key, Tally()).add(line.number, *answer, line.boxes)

    def all_readers(self):
        return [reader for readers in self.readers.values() for reader in readers.values()]


def share(count, total):
    return f"{count / total:.3f} of {total:,}" if total else "—"


def verdict_row(reader, label, tally):
    lines = tally.lines()
    right = sum(sum(flags) for flags in tally.right_by_length.values())
    wrong = lines - right
    return [reader.name, label, f"{lines:,}", *[f"{tally.verdicts[value] / lines:.3f}" for value in ("number", "unsure", "not_number")],
            share(tally.wrong_yet_number, wrong), share(tally.right_yet_refused, right)]


def dimension_table(evaluation, dimension):
    values = [value for value in DIMENSIONS[dimension] if ((dimension, value) in evaluation.all_readers()[0].tallies)]
    rows = []
    for reader in evaluation.all_readers():
        tallies = [reader.tallies.get((dimension, value)) for value in values]
        rows.append([reader.name, "whole number", *[format_share(tally.accuracy()) for tally in tallies]])
        rows.append([reader.name, "per digit", *[f"{tally.digit_accuracy():.4f}" for tally in tallies]])
    counts = [f"{evaluation.all_readers()[0].tallies[(dimension, value)].lines():,}" for value in values]
    return table(["Reader", "Measure", *[str(value) for value in values]], [["lines", "", *counts], *rows])


def separate_cells(evaluation, variant):
    """[(source, length, number reader, baseline, lines)] for the separate-digit target."""
    readers = evaluation.readers[variant]
    cells = []
    for source in SOURCES:
        for length in SHORT:
            key = ("separate", source, length)
            if key in readers["number"].tallies:
                cells.append((source, length, readers["number"].tallies[key].accuracy(), readers["baseline"].tallies[key].accuracy(),
                              readers["number"].tallies[key].lines()))
    return cells


def targets_for(evaluation, variant, quick_note):
    readers = evaluation.readers[variant]
    number, baseline = readers["number"], readers["baseline"]
    cells = separate_cells(evaluation, variant)
    by_source = {}
    for source, length, mine, theirs, lines in cells:
        by_source.setdefault(source, []).append((mine, theirs, lines))
    source_shares = {source: sum(mine * lines for mine, _, lines in values) / sum(lines for *_, lines in values)
                     for source, values in by_source.items()}
    lowest = min(source_shares, key=source_shares.get)
    behind = [f"{source} {length}: {mine:.3f} < {theirs:.3f}" for source, length, mine, theirs, _ in cells if mine < theirs]
    printed = number.tallies[("source", PRINTED)]
    printed_baseline = baseline.tallies[("source", PRINTED)]
    total = number.tallies[("all", "all")]
    right = sum(sum(flags) for flags in total.right_by_length.values())
    wrong = total.lines() - right
    wrong_yet_number = total.wrong_yet_number / wrong if wrong else 0.0
    right_yet_refused = total.right_yet_refused / right if right else 0.0
    return [
        Target(f"people's numbers: separate digits, 2–4 long, every source, whole number right, {number.name}",
               f"≥ {TARGET_SEPARATE} per source, and ≥ the baseline per source and length",
               f"lowest {source_shares[lowest]:.4f} ({lowest})",
               source_shares[lowest] >= TARGET_SEPARATE and not behind,
               "; ".join(f"{source} {value:.4f}" for source, value in source_shares.items())
               + (f"; behind the baseline: {', '.join(behind)}" if behind else "; never behind the baseline") + quick_note),
        Target(f"people's numbers: printed in held-out typefaces, 1–8 digits, {number.name}", f"≥ {TARGET_PRINTED}",
               f"{printed.accuracy():.4f}", printed.accuracy() >= TARGET_PRINTED,
               f"{printed.lines():,} numbers; {baseline.name} {printed_baseline.accuracy():.4f}" + quick_note),
        Target(f"people's numbers: wrongly read lines still called \"number\", {number.name}", f"≤ {TARGET_WRONG_YET_NUMBER:.0%}",
               f"{wrong_yet_number:.1%}", wrong_yet_number <= TARGET_WRONG_YET_NUMBER,
               f"{total.wrong_yet_number:,} of {wrong:,} wrong lines, every source and layout" + quick_note),
        Target(f"people's numbers: rightly read lines refused, {number.name}", f"≤ {TARGET_RIGHT_YET_REFUSED:.0%}",
               f"{right_yet_refused:.1%}", right_yet_refused <= TARGET_RIGHT_YET_REFUSED,
               f"{total.right_yet_refused:,} of {right:,} right lines" + quick_note),
    ]


def shipped_variants(section, chosen=None):
    """The variants judged: the server's (default) and the page's (browser), or the one asked for."""
    if chosen:
        return [chosen]
    variants = [section["default_variant"]]
    browser = section.get("browser_variant")
    if browser in section["variants"] and browser not in variants:
        variants.append(browser)
    return variants


def measure(args):
    manifest = load_manifest(args.artifacts)
    if "numbers" not in manifest:
        markdown = f"**PENDING**: {args.artifacts / 'manifest.json'} has no `numbers` section: train and convert the number reader first."
        return Section("People's numbers", script_command("bench.people_numbers", args), markdown,
                       [Target("number reader in the manifest", "present", "missing", False, "no numbers section")])
    if args.variant and args.variant not in manifest["numbers"]["variants"]:
        raise SystemExit(f"no number reader variant {args.variant!r}; the manifest has {', '.join(manifest['numbers']['variants'])}")
    variants = shipped_variants(manifest["numbers"], args.variant)
    evaluation = Evaluation(args.artifacts, variants)
    plan = QUICK if args.quick else FULL
    for line in people_lines(plan):
        evaluation.read(line)
    quick_note = " (quick run: a sample)" if args.quick else ""
    return Section("People's numbers", script_command("bench.people_numbers", args, ["--variant", args.variant] if args.variant else []),
                   report(evaluation, plan), [target for variant in variants for target in targets_for(evaluation, variant, quick_note)])


def report(evaluation, plan):
    readers = evaluation.all_readers()
    first = readers[0]
    verdicts = [verdict_row(reader, "all", reader.tallies[("all", "all")]) for reader in readers]
    verdicts += [verdict_row(reader, source, reader.tallies[("source", source)]) for reader in readers for source in SOURCES]
    confusions = [[reader.name, source, ", ".join(f"{pair} ×{count}" for pair, count in reader.tallies[("source", source)].confusions.most_common(CONFUSIONS_SHOWN)) or "—"]
                  for readers_of in evaluation.readers.values() for reader in (readers_of["number"], readers_of["baseline"]) for source in SOURCES]
    separate = []
    for variant in evaluation.variants:
        for source, length, mine, theirs, lines in separate_cells(evaluation, variant):
            alone = evaluation.readers[variant]["alone"].tallies[("separate", source, length)].accuracy()
            separate.append([variant, source, length, f"{lines:,}", f"{mine:.4f}", f"{theirs:.4f}", f"{alone:.4f}",
                             "yes" if mine >= theirs else "**no**"])
    return "\n\n".join([
        f"Number reader `{evaluation.section['model_id']}` ({', '.join(evaluation.variants)}) beside the digit reader "
        f"`{evaluation.manifest['model_id']}` of the same variant, on {first.tallies[('all', 'all')].lines():,} lines from "
        "bench/people_sets.py: none of their glyphs, fonts or typefaces is in any training set (held out by construction; "
        f"see the module). Composed: {plan.per_cell} lines per source, layout and length, and {plan.separate_short} per "
        f"source and length for separate digits of 2–4; printed: {plan.printed_per_length} per length. Pen widths are "
        "shares of the pad's side, as the pad draws (UCI lines: \"scan\"); a line is written with one pen and in one hand. The hands: "
        + "; ".join(f"{source}: {', '.join(sorted(evaluation.hands.get(source, ())))}" for source in SOURCES[1:]) + ".",
        "**Whole number right and per digit**, by length:", dimension_table(evaluation, "length"),
        "By source:", dimension_table(evaluation, "source"),
        "By layout (printed numbers are typeset by the font):", dimension_table(evaluation, "layout"),
        "By pen width:", dimension_table(evaluation, "pen"),
        "**Separate digits, 2–4 long** (printed: typeset), whole number right, the number reader beside the baseline and the digit "
        "reader on each glyph alone:",
        table(["Variant", "Source", "Length", "Lines", "Number reader", "Baseline", "Glyphs alone", "≥ baseline"], separate),
        "**Verdicts**: the share of lines given each; \"wrong yet number\": the share of wrongly read lines still called "
        "\"number\"; \"right yet refused\": the share of lines read right but not called \"number\":",
        table(["Reader", "Source", "Lines", "number", "unsure", "not_number", "wrong yet number", "right yet refused"], verdicts),
        "Commonest confusions (written→read; ∅: a digit missed, or one read that was not written):",
        table(["Reader", "Source", "Confusions"], confusions),
    ])


def add_arguments(parser):
    parser.add_argument("--variant", help="judge only this number reader variant (default: the shipped fp32 and int8)")


if __name__ == "__main__":
    run_section("bench.people_numbers", __doc__.splitlines()[0], measure, add_arguments)
