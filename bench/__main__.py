"""Run every benchmark and write bench/RESULTS.md: `python -m bench [--quick] [--only NAME ...]`.

Each section is its own script, run here as a fresh process (so no runtime's threads or memory leak
into another's numbers) with --json; this assembles their tables under the machine facts and a
summary of every target from the issues, met or missed.
"""

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.report import (DEFAULT_ARTIFACTS_DIR, DEFAULT_WORK_DIR, ROOT, Section, load_average, machine_facts, render_section, table,
                          verdict)

SECTIONS = ("accuracy", "drawn", "held_out_digits", "numbers", "people_numbers", "latency", "footprint", "http", "browser", "people_pad", "soak")
DEFAULT_OUTPUT = ROOT / "bench" / "RESULTS.md"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: every section, a few seconds each (the test suite runs this)")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, metavar="NAME", help=f"run only these sections: {', '.join(SECTIONS)}")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="where the report goes (default: %(default)s)")
    parser.add_argument("--artifacts", type=Path, default=DEFAULT_ARTIFACTS_DIR, help="model files and manifest.json (default: %(default)s)")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR, help="caches and logs (default: %(default)s)")
    return parser.parse_args(argv)


def run_one(name, args, results_dir):
    """Run `python -m bench.NAME` in a fresh process; its Section, or one saying how it failed."""
    result_path = results_dir / f"{name}.json"
    log_path = args.work_dir / "logs" / f"{name}.log"
    command = [sys.executable, "-m", f"bench.{name}", "--json", str(result_path), "--artifacts", str(args.artifacts),
               "--work-dir", str(args.work_dir)] + (["--quick"] if args.quick else [])
    started = time.perf_counter()
    with open(log_path, "wb") as log:
        returncode = subprocess.run(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                    env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}).returncode
    seconds = time.perf_counter() - started
    if returncode == 0 and result_path.exists():
        return Section.from_json(json.loads(result_path.read_text())), True
    tail = log_path.read_text(errors="replace").strip().splitlines()[-12:]
    markdown = f"**FAILED** (exit code {returncode}); the end of {log_path.relative_to(ROOT) if log_path.is_relative_to(ROOT) else log_path}:\n\n" + \
        "```\n" + "\n".join(tail) + "\n```"
    return Section(name.capitalize(), f"python -m bench.{name}", markdown, [], round(seconds, 1)), False


def render_report(sections, args, seconds, load_at_start):
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    facts = machine_facts(load_at_start)
    targets = [target for section in sections for target in section.targets]
    missed = sum(not target.met for target in targets)
    parts = [
        "# Benchmarks",
        f"Written by `python -m bench{' --quick' if args.quick else ''}` (`make bench`) on {now} in {seconds / 60:.1f} minutes."
        + (" **Quick smoke run: too few repeats to mean anything.**" if args.quick else ""),
        "Every comparison runs both sides in the same process or the same run, interleaved, and reports medians; "
        "the machine is shared, so ratios mean more than absolute times.",
        "## Machine",
        table(["Fact", "Value"], [[key, value] for key, value in facts.items()]),
        "## Targets",
        f"{len(targets) - missed} of {len(targets)} targets met." + (f" **{missed} missed**; each section's notes say what limits it." if missed else ""),
        table(["Target", "Goal", "Measured", "Verdict", "Note"],
              [[target.name, target.goal, target.measured, verdict(target.met), target.note] for target in targets]),
        *[render_section(section) for section in sections],
    ]
    return "\n\n".join(part.strip() for part in parts) + "\n"


def main(argv=None):
    args = parse_args(argv)
    args.work_dir = args.work_dir.resolve()
    args.artifacts = args.artifacts.resolve()
    (args.work_dir / "logs").mkdir(parents=True, exist_ok=True)
    started, load_at_start = time.perf_counter(), load_average()
    sections, failures = [], []
    with tempfile.TemporaryDirectory(prefix="bench-") as results_dir:
        for name in args.only or SECTIONS:
            print(f"bench: {name} ...", file=sys.stderr, flush=True)
            section, ok = run_one(name, args, Path(results_dir))
            print(f"bench: {name} {'done' if ok else 'FAILED'} in {section.seconds:.0f} s", file=sys.stderr, flush=True)
            sections.append(section)
            if not ok:
                failures.append(name)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(render_report(sections, args, time.perf_counter() - started, load_at_start))
    print(f"bench: wrote {args.output}", file=sys.stderr)
    if failures:
        sys.exit(f"bench: failed: {', '.join(failures)} (see {args.work_dir / 'logs'})")


if __name__ == "__main__":
    main()
