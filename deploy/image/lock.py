"""Write constraints.txt: the serve extra and everything it pulls in, pinned to the versions installed here.

    .venv/bin/python deploy/image/lock.py [--check]

The image (deploy/Containerfile), `make serve` and `make test` all install with `-c constraints.txt`, so the
image runs the very packages CI tested. Run it after changing pyproject.toml's serve extra; --check exits 1
when the file is out of date (a test runs it).
"""

import argparse
import re
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
CONSTRAINTS = ROOT / "constraints.txt"
HEADER = ("# The serve extra's packages, pinned to the versions CI tests (deploy/image/lock.py writes this file).\n"
          "# Installed with `pip install -c constraints.txt` by `make serve`, `make test` and deploy/Containerfile.\n")


def normalize(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def serve_requirements():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(text) for text in project["optional-dependencies"]["serve"]]


def closure(requirements):
    """{name: installed version} for the requirements and all their dependencies, extras followed."""
    pinned, visited = {}, set()
    pending = list(requirements)
    while pending:
        requirement = pending.pop()
        name = normalize(requirement.name)
        extras = tuple(sorted(requirement.extras))
        if (name, extras) in visited:
            continue
        visited.add((name, extras))
        try:
            found = distribution(name)
        except PackageNotFoundError:
            raise SystemExit(f"lock.py: {name} is not installed; run `make setup` first") from None
        pinned[name] = found.version
        environments = [{"extra": extra} for extra in ("", *extras)]
        for text in found.requires or []:
            dependency = Requirement(text)
            if dependency.marker is None or any(dependency.marker.evaluate(env) for env in environments):
                pending.append(dependency)
    return pinned


def render(pinned):
    return HEADER + "".join(f"{name}=={version}\n" for name, version in sorted(pinned.items()))


def is_current():
    """Whether constraints.txt pins exactly the serve extra as installed here."""
    return CONSTRAINTS.exists() and CONSTRAINTS.read_text() == render(closure(serve_requirements()))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="lock.py", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if constraints.txt differs from the installed set")
    args = parser.parse_args(argv)
    if args.check:
        if not is_current():
            print("lock.py: constraints.txt is out of date; run deploy/image/lock.py", file=sys.stderr)
            return 1
        return 0
    CONSTRAINTS.write_text(render(closure(serve_requirements())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
