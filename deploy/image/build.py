"""`make image`: build the serving image from deploy/Containerfile with Debian's podman, no registry.

    python deploy/image/build.py [--tag localhost/digit-kiosk:VERSION] [--mirror URL]     # as root

What the Containerfile would take from registries comes from this machine instead, from the same pins:
- the base: Debian bookworm with Python 3.11 by debootstrap (base.py), for PYTHON_BASE;
- the serve extra's wheels: downloaded by this machine's pip at the versions in constraints.txt (WHEELS=context);
- onnxruntime-web: web/vendor/ as `make vendor` copied it from web/package-lock.json (VENDOR=context).
Each run appends its timings to build/image/builds.jsonl; check_image.py reports them.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time
import tomllib
from datetime import datetime, timezone
from pathlib import Path

from base import ensure_base
from lock import is_current
from podman import podman, streamed

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "image"
WHEELS = CACHE / "wheels"  # the Containerfile's wheels-context stage copies this folder
VENDOR = ROOT / "web" / "vendor"
RECORDS = ROOT / "build" / "image" / "builds.jsonl"
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
IMAGE = f"localhost/digit-kiosk:{VERSION}"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="build.py", description=__doc__.splitlines()[0])
    parser.add_argument("--tag", default=IMAGE, help="the image's name (default %(default)s)")
    parser.add_argument("--mirror", default=os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian"),
                        help="Debian mirror for debootstrap (env DEBIAN_MIRROR)")
    return parser.parse_args(argv)


def serve_requirements():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["serve"]


def download_wheels():
    """The serve extra's wheels for this machine's platform, at constraints.txt's versions; only those."""
    WHEELS.mkdir(parents=True, exist_ok=True)
    requirements = CACHE / "serve-requirements.txt"
    requirements.write_text("\n".join(serve_requirements()) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                    "--only-binary=:all:", "--dest", str(WHEELS), "-c", str(ROOT / "constraints.txt"),
                    "-r", str(requirements)], check=True, stderr=subprocess.DEVNULL)
    pinned = {pin(*line.split("==")) for line in (ROOT / "constraints.txt").read_text().splitlines() if "==" in line}
    for wheel in WHEELS.glob("*.whl"):  # a version pinned before must not be there for the image to find
        if pin(*wheel.name.split("-")[:2]) not in pinned:
            wheel.unlink()


def pin(name, version):
    return f"{re.sub(r'[-_.]+', '_', name).lower()}=={version.strip()}"


def build(args):
    if not is_current():  # the image would install something CI did not test, or fail to find a wheel
        raise SystemExit("build.py: constraints.txt does not pin the serve extra as installed here; "
                         "run deploy/image/lock.py and commit constraints.txt")
    if not (VENDOR / "ort.wasm.min.mjs").exists():
        raise SystemExit("build.py: web/vendor/ is empty; `make vendor` copies onnxruntime-web there")
    timings = {}
    started = time.perf_counter()
    base, seconds = ensure_base(CACHE, args.mirror)
    timings["base_seconds"] = seconds  # None: the base image was already there
    step = time.perf_counter()
    download_wheels()
    timings["wheels_seconds"] = time.perf_counter() - step
    step = time.perf_counter()
    before = image_id(args.tag)
    log_path = ROOT / "build" / "image" / "build.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        # The docker format keeps the Containerfile's HEALTHCHECK (the OCI format has no field for it).
        streamed("build", "--format", "docker", "--network", "none", "--file", ROOT / "deploy" / "Containerfile",
                 "--ignorefile", ROOT / "deploy" / "Containerfile.dockerignore",
                 "--build-arg", f"PYTHON_BASE={base}", "--build-arg", "VENDOR=context", "--build-arg", "WHEELS=context",
                 "--tag", args.tag, ROOT, log=log)
    timings["build_seconds"] = time.perf_counter() - step
    timings["total_seconds"] = time.perf_counter() - started
    record = {"finished": datetime.now(timezone.utc).isoformat(timespec="seconds"), "image": args.tag,
              "id": image_id(args.tag), "cold": timings["base_seconds"] is not None, "rebuilt": image_id(args.tag) != before,
              "size_mb": round(int(podman("image", "inspect", "--format", "{{.Size}}", args.tag, quiet=True)) / 1e6, 1),
              **{key: None if value is None else round(value, 1) for key, value in timings.items()}}
    RECORDS.parent.mkdir(parents=True, exist_ok=True)
    with open(RECORDS, "a") as records:
        records.write(json.dumps(record) + "\n")
    base_text = "reused" if record["base_seconds"] is None else f"{record['base_seconds']} s"
    print(f"build.py: {args.tag} ({record['size_mb']} MB) in {record['total_seconds']} s: base {base_text}, "
          f"wheels {record['wheels_seconds']} s, podman build {record['build_seconds']} s (log: {log_path})",
          file=sys.stderr)
    return record


def image_id(name):
    return podman("image", "inspect", "--format", "{{.Id}}", name, quiet=True, check=False).strip() or None


def main(argv=None):
    build(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
