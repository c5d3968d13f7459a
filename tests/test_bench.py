"""`python -m bench --quick` runs every benchmark end to end and writes a well-formed report (timings are never asserted)."""

import re
import subprocess
import sys

import pytest

from bench.__main__ import SECTIONS

SECTION_TITLES = ["Accuracy", "Drawn digits", "Held-out digits", "Numbers", "People's numbers", "Model latency", "Footprint", "HTTP /predict", "Browser", "People's numbers on the pad", "Soak"]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    work = tmp_path_factory.mktemp("bench")
    output = work / "RESULTS.md"
    # A work folder of its own, so a full `make bench` running beside the tests keeps its logs and caches.
    run = subprocess.run([sys.executable, "-m", "bench", "--quick", "--output", str(output), "--work-dir", str(work / "out")],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return output.read_text()


def tables(markdown):
    """Each markdown table as a list of its lines."""
    found, current = [], []
    for line in markdown.splitlines() + [""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            found.append(current)
            current = []
    return found


def cells(line):
    return re.split(r"(?<!\\)\|", line.strip())[1:-1]


def test_every_section_is_reported(report):
    assert len(SECTION_TITLES) == len(SECTIONS)
    for title in SECTION_TITLES:
        assert f"\n## {title}\n" in report
    assert "**FAILED**" not in report and "**PENDING**" not in report


def test_machine_facts_are_stated(report):
    facts = dict(cells(line)[:2] for line in tables(report)[0][2:])
    facts = {key.strip(): value.strip() for key, value in facts.items()}
    assert int(facts["nproc"]) >= 1
    assert facts["cpu_model"] and facts["onnxruntime"]
    assert "tensorflow-cpu" in facts or "tensorflow" in facts


def test_every_table_is_well_formed(report):
    found = tables(report)
    assert len(found) >= 10
    for lines in found:
        width = len(cells(lines[0]))
        assert re.fullmatch(r"\|(---\|)+", lines[1]) and len(cells(lines[1])) == width, lines[:2]
        assert len(lines) >= 3, lines
        for line in lines[2:]:
            assert len(cells(line)) == width, line


def test_each_target_has_a_verdict(report):
    targets = next(lines for lines in tables(report) if cells(lines[0])[:4] == [" Target ", " Goal ", " Measured ", " Verdict "])
    assert len(targets) - 2 >= 12
    for line in targets[2:]:
        assert cells(line)[3].strip() in ("met", "**MISSED**"), line


def test_numbers_are_read_by_length_beside_the_baseline(report):
    numbers = report.split("\n## Numbers\n")[1].split("\n## ")[0]
    by_length = next(lines for lines in tables(numbers) if [cell.strip() for cell in cells(lines[0])][2:] == [*map(str, range(1, 9)), "all"])
    readers = {cells(line)[0].strip() for line in by_length[2:]}
    assert any(reader.startswith("number reader") for reader in readers) and any(reader.startswith("baseline") for reader in readers)
    for line in by_length[2:]:
        assert all(0 <= float(cell) <= 1 for cell in cells(line)[2:] if cell.strip() != "—"), line
    for target in ("4-digit numbers from MNIST test digits", "single digits through the number reader", "number reader: full training",
                   "warm in-browser read of a 4-digit number"):
        assert f"| {target}" in report, target


def test_held_out_digits_show_both_references_beside_ours(report):
    section = report.split("\n## Held-out digits\n")[1].split("\n## ")[0]
    lines = next(lines for lines in tables(section) if cells(lines[0])[0].strip() == "Source")
    header = [cell.strip() for cell in cells(lines[0])]
    assert header[2:] == ["ours fp32", "ours int8", "previous reader (21.9 M)", "seed app's CNN"]
    sources = [cells(line)[0].strip() for line in lines[2:]]
    assert sources[0] == "UCI 8×8 scans" and any(source.startswith("gothic plotter fonts") for source in sources)
    for line in lines[2:-1]:
        for cell in cells(line)[2:]:
            accuracy, refused = cell.strip().split(" / ")
            assert 0 <= float(accuracy) <= 1 and 0 <= float(refused.rstrip("%")) <= 100, line
