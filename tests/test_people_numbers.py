"""The people's-numbers evaluation (bench/people_sets.py, bench/people_numbers.py): held out by construction,
the lengths and layouts it promises, the same lines on every run, and a report with every breakdown."""

import json
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from bench import people_sets
from bench.drawn_sets import FONT_FILES, PEN_WIDTHS
from bench.numbers import empty_column_pieces
from bench.people_sets import COMPOSED_SOURCES, LAYOUTS, LENGTHS, PRINTED, QUICK, SCAN, SOURCES, TYPESET, people_lines
from tests.test_bench import cells, tables
from reader.normalization import INK_THRESHOLD
from train.strokes import DIGIT_FONTS, SYMBOL_FONTS, TRAINING_FONT_FILES


@pytest.fixture(scope="module")
def sources():
    return people_sets.glyph_sources(QUICK)


@pytest.fixture(scope="module")
def lines(sources):
    return list(people_lines(QUICK, sources))


def test_no_evaluation_font_is_read_by_training():
    evaluated = set(people_sets.handwriting_font_files()) | set(people_sets.printed_font_files())
    assert evaluated and not evaluated & set(TRAINING_FONT_FILES)
    plotter = set(people_sets.plotter_font_names())
    assert plotter and not plotter & set(DIGIT_FONTS + SYMBOL_FONTS)
    # The whole gothic family is held out: training reads none of it, not even its letters as non-digits.
    assert {name for name in people_sets.plotter_font_names() if name.startswith("goth")} >= {"gothiceng", "gothicger", "gothicita"}


def test_a_font_training_reads_leaves_the_evaluation(monkeypatch):
    """The split is made by the code, not by keeping two lists in step."""
    trained = (FONT_FILES[0], people_sets.PRINTED_FILES[0])
    monkeypatch.setattr(people_sets, "TRAINING_FONT_FILES", trained)
    assert FONT_FILES[0] not in people_sets.handwriting_font_files()
    assert people_sets.PRINTED_FILES[0] not in people_sets.printed_font_files()
    assert len(people_sets.handwriting_font_files()) == len(FONT_FILES) - 1


def test_handwriting_and_printed_sources_share_no_font():
    assert not set(people_sets.handwriting_font_files()) & set(people_sets.printed_font_files())


def test_plotter_glyphs_are_none_of_trainings_digits(sources):
    """Every plotter-font digit drawn for evaluation differs from every Hershey digit training draws."""
    from reader.pen import draw_strokes
    from train.strokes import hershey_glyphs

    trained = []
    for *_, strokes in hershey_glyphs()[0]:
        extent = np.concatenate(strokes).max(0)
        trained.append(draw_strokes([stroke * 0.7 + (1 - 0.7 * extent) / 2 for stroke in strokes], PEN_WIDTHS, people_sets.GLYPH_SIDE)[0])
    trained = np.stack(trained)
    hands = sources[0]["plotter fonts"]
    assert {hand.name for hand in hands} <= set(people_sets.plotter_font_names())
    for hand in hands:
        for variants in hand.digits.values():
            difference = np.abs(trained - variants[0][0]).max(axis=(1, 2))
            assert difference.min() > 0.5, hand.name


def test_printed_numbers_use_common_typefaces():
    families = {path.split("/")[1] for path in people_sets.printed_font_files()}
    assert {"dejavu", "liberation", "noto"} <= families


def test_every_source_layout_and_length_is_written(lines):
    counts = Counter((line.source, line.layout, len(line.number)) for line in lines)
    for source in COMPOSED_SOURCES:
        for layout in LAYOUTS:
            for length in LENGTHS:
                expected = QUICK.separate_short if layout == "separate" and 2 <= length <= 4 else QUICK.per_cell
                assert counts[source, layout, length] == expected, (source, layout, length)
    for length in LENGTHS:
        assert counts[PRINTED, TYPESET, length] == QUICK.printed_per_length
    assert {line.pen for line in lines} == {*(f"pen {width}" for width in PEN_WIDTHS), SCAN, PRINTED}
    assert {line.pen for line in lines if line.source == "UCI scans"} == {SCAN}
    assert {line.source for line in lines} == set(SOURCES)


def test_each_line_carries_one_glyph_and_box_per_digit(lines):
    for line in lines:
        assert line.number.isdigit() and len(line.glyphs) == len(line.boxes) == len(line.number)
        assert line.image.dtype == np.float32 and 0 <= line.image.min() and line.image.max() <= 1
        for x0, y0, x1, y1 in line.boxes:
            assert 0 <= x0 < x1 <= line.image.shape[1] and 0 <= y0 < y1 <= line.image.shape[0]


def heights(line):
    return np.array([y1 - y0 for _, y0, _, y1 in line.boxes])


def gaps(line):
    return np.array([second[0] - first[2] for first, second in zip(line.boxes, line.boxes[1:])])


@pytest.mark.parametrize("layout", ["separate", "sizes", "baseline"])
def test_separate_digits_keep_gaps_of_a_tenth_to_three_tenths_of_a_digit(lines, layout):
    for line in lines:
        if line.layout == layout and len(line.number) > 1:
            shares = gaps(line) / np.median(heights(line)) if layout == "separate" else gaps(line)
            if layout == "separate":
                assert shares.min() >= 0.08 and shares.max() <= 0.33, (line.number, shares)
            else:
                assert shares.min() > 0, line.number


def test_separate_digits_split_at_empty_columns(lines):
    """Each digit's ink lies in pieces of its own: the per-piece baseline could read every separate line."""
    for line in lines:
        if line.layout == "separate" and len(line.number) > 1:
            pieces = empty_column_pieces(line.image)
            for first, second in zip(line.boxes, line.boxes[1:]):
                assert any(x1 <= second[0] and x1 >= first[2] for _, x1 in pieces), line.number


def ink_meets(line, index):
    """Whether digit `index`'s ink touches (8-connected) the ink of the digit before it, as they lie in the line."""
    from scipy.ndimage import binary_dilation

    masks = []
    for glyph, (x0, y0, x1, y1) in zip(line.glyphs[index - 1:index + 1], line.boxes[index - 1:index + 1]):
        mask = np.zeros(line.image.shape, bool)
        mask[y0:y1, x0:x1] = glyph > INK_THRESHOLD
        masks.append(mask)
    return bool((binary_dilation(masks[0], np.ones((3, 3), bool)) & masks[1]).any())


def test_touching_lines_have_a_pair_whose_ink_meets(lines):
    touching = [line for line in lines if line.layout == "touching" and len(line.number) > 1]
    assert touching
    for line in touching:
        # Ink that meets leaves no empty column between the two: the per-piece baseline cannot part them.
        assert line.touching and all(ink_meets(line, index) for index in line.touching), line.number


def test_separate_digits_never_touch(lines):
    for line in lines:
        if line.layout == "separate":
            assert not line.touching and not any(ink_meets(line, index) for index in range(1, len(line.number)))


def test_slanted_lines_lean(lines):
    """A slanted line's digits lean: the ink's top and bottom rows sit apart sideways by a share of its height."""
    leans = []
    for line in lines:
        if line.layout == "slanted" and len(line.number) == 1:
            rows = np.flatnonzero((line.image > 0.1).any(axis=1))
            top = np.flatnonzero(line.image[rows[0]:rows[0] + 5].max(0) > 0.1).mean()
            bottom = np.flatnonzero(line.image[rows[-1] - 4:rows[-1] + 1].max(0) > 0.1).mean()
            leans.append(abs(top - bottom) / (rows[-1] - rows[0]))
    assert np.median(leans) >= 0.1


def test_sizes_and_baselines_vary_along_the_line(lines):
    long = lambda layout: [line for line in lines if line.layout == layout and len(line.number) >= 4]
    assert np.median([heights(line).max() / heights(line).min() for line in long("sizes")]) >= 1.3
    assert np.median([heights(line).max() / heights(line).min() for line in long("separate")]) <= 1.15
    spread = lambda line: np.ptp([y1 for *_, y1 in line.boxes]) / np.median(heights(line))
    assert np.median([spread(line) for line in long("baseline")]) >= 0.15
    assert np.median([spread(line) for line in long("separate")]) <= 0.1


def test_the_same_seed_writes_the_same_lines(sources, lines):
    again = list(people_lines(QUICK, sources))
    assert [line.number for line in again] == [line.number for line in lines]
    assert all(np.array_equal(first.image, second.image) for first, second in zip(again[::7], lines[::7]))
    other = list(people_lines(QUICK, sources, seed=people_sets.SEED + 1))
    assert [line.number for line in other] != [line.number for line in lines]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    output = tmp_path_factory.mktemp("people") / "section.json"
    run = subprocess.run([sys.executable, "-m", "bench.people_numbers", "--quick", "--json", str(output)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(output.read_text())


def header_of(found, first_columns):
    return next(lines for lines in found if [cell.strip() for cell in cells(lines[0])][:len(first_columns)] == first_columns)


@pytest.mark.parametrize("values", [
    [str(length) for length in LENGTHS],
    list(SOURCES),
    [*LAYOUTS, TYPESET],
    [*(f"pen {width}" for width in PEN_WIDTHS), SCAN, PRINTED],
])
def test_report_breaks_down_each_dimension_for_every_reader(report, values):
    found = tables(report["markdown"])
    breakdown = header_of(found, ["Reader", "Measure", *values])
    rows = [[cell.strip() for cell in cells(line)] for line in breakdown[2:]]
    for variant in ("fp32", "int8"):
        for reader in (f"number reader {variant}", f"baseline: split + digit reader {variant}", f"digit reader {variant}, each glyph alone"):
            assert {row[1] for row in rows if row[0] == reader} == {"whole number", "per digit"}, reader
    for row in rows[1:]:
        assert all(0 <= float(cell) <= 1 for cell in row[2:]), row


def test_report_gives_the_verdict_table_and_the_targets_per_variant(report):
    verdicts = header_of(tables(report["markdown"]), ["Reader", "Source", "Lines", "number", "unsure", "not_number", "wrong yet number", "right yet refused"])
    assert {cells(line)[1].strip() for line in verdicts[2:]} == {"all", *SOURCES}
    names = [target["name"] for target in report["targets"]]
    for variant in ("fp32", "int8"):
        for target in ("separate digits, 2–4 long, every source", "printed in held-out typefaces", "wrongly read lines still called",
                       "rightly read lines refused"):
            assert any(target in name and name.endswith(f"number reader {variant}") for name in names), (target, variant)


# Separate digits of 2-4 (printed: typeset, 1-8), the lines the first target is judged on, 40 per source
# and length. On these very lines (seeded) the shipped readers score, fp32 / int8: MNIST test 0.967 / 0.967,
# handwriting fonts 1.000 / 1.000, plotter fonts 0.875 / 0.908 (the reader before, without scans and typefaces in
# training: 0.950), UCI scans 0.808 / 0.792 (before: 0.733), printed 1.000; the floors sit a line below.
SEPARATE_PLAN = people_sets.Plan(per_cell=0, separate_short=40, printed_per_length=10, mnist_digits=400)
SEPARATE_FLOORS = {"MNIST test": 0.958, "handwriting fonts": 0.99, "plotter fonts": 0.866, "UCI scans": 0.783, "printed": 0.985}


@pytest.fixture(scope="module")
def separate_scores():
    """{(variant, source): (lines, number reader right, baseline right)} on the separate-digit lines."""
    from bench.models import load_manifest
    from bench.numbers import NumberReader, SplitBaseline
    from tests.conftest import ARTIFACTS_DIR

    manifest = load_manifest(ARTIFACTS_DIR)
    readers = {variant: (NumberReader(variant, ARTIFACTS_DIR, manifest["numbers"], variant), SplitBaseline(variant, ARTIFACTS_DIR, manifest, variant))
               for variant in manifest["numbers"]["variants"]}
    scores = Counter()
    for line in people_lines(SEPARATE_PLAN):
        for variant, (number_reader, baseline) in readers.items():
            scores[variant, line.source, "lines"] += 1
            scores[variant, line.source, "number"] += number_reader.answer(line.image)[0] == line.number
            scores[variant, line.source, "baseline"] += baseline.answer(line.image)[0] == line.number
    return scores


@pytest.mark.parametrize("variant", ["fp32", "int8"])
@pytest.mark.parametrize("source", SOURCES)
def test_separate_digits_are_read_near_the_published_figure(separate_scores, variant, source):
    lines = separate_scores[variant, source, "lines"]
    assert lines >= 80
    assert separate_scores[variant, source, "number"] / lines >= SEPARATE_FLOORS[source]


@pytest.mark.parametrize("variant", ["fp32", "int8"])
@pytest.mark.parametrize("source", SOURCES)
def test_separate_digits_are_read_no_worse_than_the_baseline_by_more_than_a_line(separate_scores, variant, source):
    assert separate_scores[variant, source, "number"] >= separate_scores[variant, source, "baseline"] - 1
