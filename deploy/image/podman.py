"""Debian's podman as `make image` and `make check-image` call it: as root, runc, our containers.conf.

Every call goes through `podman()`, which shows the command and, on failure, stops with podman's own words.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONTAINERS_CONF = HERE / "containers.conf"
RUNTIME = "runc"  # Debian's crun is not installed; runc is what this machine's sandbox runs


class PodmanError(RuntimeError):
    pass


def environment():
    return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}


def podman(*arguments, quiet=False, check=True, stdin=None, timeout=None):
    """Run `podman --runtime runc ARGUMENTS`; returns its stdout."""
    command = ["podman", "--runtime", RUNTIME, *map(str, arguments)]
    if not quiet:
        print("+", " ".join(command), file=sys.stderr, flush=True)
    result = subprocess.run(command, env=environment(), stdin=stdin, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise PodmanError(f"{' '.join(command[:6])}... exited {result.returncode}: {result.stderr.strip()[-2000:]}")
    return result.stdout


def succeeds(*arguments):
    """Whether `podman ARGUMENTS` exits 0 (its output is dropped)."""
    command = ["podman", "--runtime", RUNTIME, *map(str, arguments)]
    return subprocess.run(command, env=environment(), capture_output=True).returncode == 0


def streamed(*arguments, log):
    """Run podman with its output going to the open file `log` (long builds); raises on failure."""
    command = ["podman", "--runtime", RUNTIME, *map(str, arguments)]
    print("+", " ".join(command), file=sys.stderr, flush=True)
    result = subprocess.run(command, env=environment(), stdout=log, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        raise PodmanError(f"{' '.join(command[:6])}... exited {result.returncode}; see {log.name}")


def image_labels(name):
    """The image's labels, or None if there is no such image."""
    if subprocess.run(["podman", "image", "exists", name], env=environment()).returncode != 0:
        return None
    return json.loads(podman("image", "inspect", "--format", "{{json .Labels}}", name, quiet=True)) or {}


def container_state(name):
    """{"Status": ..., "ExitCode": ..., ...} of a container, or None if it does not exist."""
    result = subprocess.run(["podman", "container", "inspect", "--format", "{{json .State}}", name],
                            env=environment(), capture_output=True, text=True)
    return json.loads(result.stdout) if result.returncode == 0 else None


def remove_container(name):
    podman("rm", "--force", "--ignore", "--time", "0", name, quiet=True)
