"""The image's base without a registry: Debian bookworm with Python 3.11, made by debootstrap, `podman import`ed.

The official python:3.11-slim-bookworm is Debian bookworm too; this one carries Debian's own Python 3.11
instead of a self-built one. Only what the server needs is installed (python3-venv for the virtualenv,
ca-certificates); docs, man pages, locales and apt's caches are left out.
The root is cached under .cache/image/root, and the image is labelled with the recipe that made it, so a
second `make image` reuses both.
"""

import hashlib
import shutil
import subprocess
import sys
import time
from pathlib import Path

from podman import image_labels, podman

SUITE = "bookworm"
PACKAGES = ("python3.11", "python3-venv", "ca-certificates")
BASE_IMAGE = "localhost/digit-kiosk-base:bookworm"
TRIMMED = ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/info",
           "usr/share/locale")
RECIPE_LABEL = "org.digit-kiosk.base-recipe"


def recipe(mirror):
    text = f"{SUITE} {' '.join(PACKAGES)} {' '.join(TRIMMED)} {mirror}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def make_root(root, mirror):
    """debootstrap a minimal bookworm with PACKAGES into root (as root: it chroots for the second stage)."""
    if root.exists():
        shutil.rmtree(root)  # a run interrupted half-way
    print(f"+ debootstrap --variant=minbase --include={','.join(PACKAGES)} {SUITE} {root} {mirror}", file=sys.stderr)
    subprocess.run(["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(root), mirror],
                   check=True, stdout=subprocess.DEVNULL)
    for path in TRIMMED:
        for child in (root / path).glob("*"):
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    assert (root / "usr/bin/python3.11").exists(), "debootstrap gave no python3.11"


def ensure_base(cache, mirror):
    """BASE_IMAGE made from the cached root (debootstrapped if missing); returns (image, seconds or None if reused)."""
    key = recipe(mirror)
    if (image_labels(BASE_IMAGE) or {}).get(RECIPE_LABEL) == key:
        return BASE_IMAGE, None
    started = time.perf_counter()
    root = Path(cache) / "root"
    stamp = root / ".recipe"
    if not stamp.exists() or stamp.read_text() != key:
        make_root(root, mirror)
        stamp.write_text(key)
    tar = subprocess.Popen(["tar", "--numeric-owner", "--exclude=./.recipe", "-C", str(root), "-c", "."],
                           stdout=subprocess.PIPE)
    try:
        podman("import", "--change", f"LABEL {RECIPE_LABEL}={key}", "--change", 'CMD ["python3"]', "-", BASE_IMAGE,
               stdin=tar.stdout)
    finally:
        tar.stdout.close()
        tar.wait()
    return BASE_IMAGE, time.perf_counter() - started
