"""Rewrite README.md's "Numbers" section from bench/RESULTS.md: `python -m bench.readme [--check]`.

The section quotes the run's date and length, its count of targets met and its targets table, and sends the
reader to RESULTS.md's sections for what limits each miss. Nothing in it is typed by hand, so it cannot
drift from the run it quotes; tests/test_figures.py holds the two equal.
"""

import argparse
import re
import sys

from bench.report import ROOT

README = ROOT / "README.md"
RESULTS = ROOT / "bench" / "RESULTS.md"
HEADING = "## Numbers"


def results_parts(results):
    """(when and how long the run took, the targets line, the targets table) from RESULTS.md's text."""
    written = re.search(r"^Written by `python -m bench[^`]*` \(`make bench`\) on (.+?) in ([\d.]+) minutes\.", results, re.M)
    targets = results.split("\n## Targets\n", 1)[1].split("\n## ", 1)[0].strip().split("\n\n")
    if written is None or len(targets) < 2:
        raise ValueError(f"{RESULTS} is not a report `python -m bench` wrote")
    return written.groups(), targets[0], targets[1]


def render(results):
    (when, minutes), met, table = results_parts(results)
    return "\n\n".join([
        HEADING,
        f"From [`bench/RESULTS.md`](bench/RESULTS.md), written by `make bench` on {when} ({minutes} minutes) on a "
        "shared 2-core machine (its load averages are in the Machine table there); every comparison runs both sides "
        "in the same run, and timings are medians. Each section of RESULTS.md says what limits its misses.",
        met,
        table,
    ]) + "\n"


def rewritten(readme, section):
    """README's text with its Numbers section (up to the next `## ` heading) replaced by `section`."""
    start = readme.index(f"\n{HEADING}\n") + 1
    end = readme.find("\n## ", start + len(HEADING))
    return readme[:start] + section + ("\n" + readme[end + 1:] if end != -1 else "")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.readme", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md's section differs from RESULTS.md's")
    args = parser.parse_args(argv)
    readme = README.read_text()
    new = rewritten(readme, render(RESULTS.read_text()))
    if args.check:
        sys.exit(0 if new == readme else "README.md's Numbers section differs from bench/RESULTS.md: run python -m bench.readme")
    README.write_text(new)
    print(f"rewrote {README.relative_to(ROOT)}'s Numbers section from {RESULTS.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
