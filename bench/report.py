"""What every bench script shares: its command line, the Section it reports, markdown tables, and the machine facts.

Each script (`python -m bench.latency`, ...) prints its section as markdown and, with --json, writes it
for `python -m bench` to assemble into bench/RESULTS.md.
"""

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_WORK_DIR = ROOT / "bench" / "out"
DEFAULT_ARTIFACTS_DIR = ROOT / "artifacts"

# Distributions whose versions decide the numbers (a missing one is reported as such).
LIBRARIES = ("onnxruntime", "onnx", "numpy", "pillow", "flask", "waitress", "tensorflow-cpu", "tensorflow",
             "keras", "tf2onnx", "ai-edge-litert", "scikit-learn", "playwright")


@dataclass
class Target:
    """One goal from the issues, what this run measured for it, and whether it was reached."""
    name: str
    goal: str
    measured: str
    met: bool
    note: str = ""


@dataclass
class Section:
    title: str
    command: str
    markdown: str
    targets: list = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self):
        return asdict(self)

    @classmethod
    def from_json(cls, data):
        return cls(**{**data, "targets": [Target(**target) for target in data["targets"]]})


def section_parser(module, description):
    """The flags every bench script takes."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=description)
    parser.add_argument("--quick", action="store_true", help="a smoke run: few repeats, tiny models, seconds not minutes")
    parser.add_argument("--artifacts", type=Path, default=DEFAULT_ARTIFACTS_DIR,
                        help="the shipped model files and manifest.json (default: %(default)s)")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR,
                        help="caches (reference models, TFLite file) and logs (default: %(default)s)")
    parser.add_argument("--json", type=Path, help="also write the section here, for `python -m bench`")
    return parser


def script_command(module, args, extra=()):
    """The exact command that reproduces a section, as a reader would type it."""
    words = ["python", "-m", module, *extra]
    if args.quick:
        words.append("--quick")
    if args.artifacts.resolve() != DEFAULT_ARTIFACTS_DIR:
        words += ["--artifacts", str(args.artifacts)]
    return shlex.join(words)


def run_section(module, description, measure, add_arguments=None):
    """main() of a bench script: parse flags, measure, print the markdown, write the JSON."""
    import time

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = section_parser(module, description)
    if add_arguments:
        add_arguments(parser)
    args = parser.parse_args()
    args.work_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    section = measure(args)
    section.seconds = round(time.perf_counter() - started, 1)
    print(render_section(section))
    if args.json:
        args.json.write_text(json.dumps(section.to_json(), indent=2) + "\n")


def table(header, rows):
    """A markdown table; every cell is str()-ed and pipes are escaped so the table stays well-formed."""
    cell = lambda value: str(value).replace("|", "\\|").replace("\n", " ")
    lines = ["| " + " | ".join(cell(name) for name in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def render_section(section):
    return f"## {section.title}\n\n`{section.command}` ({section.seconds:.0f} s)\n\n{section.markdown.strip()}\n"


def verdict(met):
    return "met" if met else "**MISSED**"


def format_seconds(seconds):
    """Latency in the unit that keeps three significant digits."""
    if seconds is None:
        return "n/a"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def format_ratio(ratio):
    if ratio is None:
        return "n/a"
    return f"{ratio:,.0f}×" if ratio >= 100 else f"{ratio:.1f}×" if ratio >= 10 else f"{ratio:.2f}×"


def format_megabytes(byte_count):
    return f"{byte_count / 1e6:,.1f} MB"


def format_bytes(byte_count):
    return format_megabytes(byte_count) if byte_count >= 1e6 else f"{byte_count / 1e3:,.1f} kB"


def library_versions():
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def cpu_model():
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def memory_total():
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def chromium_version(executable="/usr/bin/chromium"):
    try:
        return subprocess.run([executable, "--version"], capture_output=True, text=True, timeout=30).stdout.strip() or "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"


def git_revision():
    try:
        revision = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        return revision + (" (with uncommitted changes)" if dirty else "")
    except OSError:
        return "unknown"


def load_average():
    """The 1, 5 and 15 minute load averages, as the kernel gives them."""
    return " ".join(f"{load:.2f}" for load in os.getloadavg())


def machine_facts(load_at_start):
    """The facts a reader needs to judge the numbers: cores, CPU, memory, load, versions.

    `load_at_start` is load_average() taken before the first section ran; the one at the end is taken now.
    """
    return {
        "nproc": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "cpu_model": cpu_model(),
        "memory": format_megabytes(memory_total()),
        "load_average_at_start (1, 5, 15 min)": load_at_start,
        "load_average_at_end (1, 5, 15 min)": load_average(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "chromium": chromium_version(),
        "git": git_revision(),
        **library_versions(),
    }


def python_command():
    """The interpreter running the bench, for subprocesses (so they use the same virtualenv)."""
    return sys.executable
