"""Helpers for the multi-process and nginx tests: server processes, their workers, a bounded load loop."""

import http.client
import io
import os
import re
import resource
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from tests.conftest import ROOT

BANNER = re.compile(r"on http://([\d.]+):(\d+)")
START_TIMEOUT = 120


def drawn_digit_png():
    """A 280x280 canvas with one white stroke on black, as the pad sends it: a '1' the model answers for."""
    from PIL import Image, ImageDraw

    image = Image.new("L", (280, 280), 0)
    ImageDraw.Draw(image).line([(140, 50), (140, 230)], fill=255, width=22)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def raise_open_files_limit(wanted):
    """The test process opens thousands of sockets; lift its soft limit (the hard one too, as root)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < wanted and os.geteuid() == 0:
        hard = wanted
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard) if hard != resource.RLIM_INFINITY else wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class ServeProcess:
    """`python -m serve ...` as a real process (optionally inside a network namespace); its log is kept."""

    def __init__(self, log_path, *arguments, namespace=None, env=None, prefix=()):
        self.log_path = Path(log_path)
        prefix = ["ip", "netns", "exec", namespace] if namespace else list(prefix)
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen([*prefix, sys.executable, "-m", "serve", *arguments], cwd=ROOT,
                                        stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
                                        env={**os.environ, **(env or {})})
        self.host, self.port = self.wait_for_banner()

    def wait_for_banner(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            match = BANNER.search(self.log_path.read_text())
            if match:
                return match.group(1), int(match.group(2))
            if self.process.poll() is not None:
                raise RuntimeError(f"serve exited with {self.process.returncode}: {self.log_path.read_text()[-2000:]}")
            time.sleep(0.05)
        raise RuntimeError(f"serve did not start within {START_TIMEOUT} s")

    @property
    def address(self):
        return f"{self.host}:{self.port}"

    def worker_pids(self):
        """The supervisor's live child processes (its workers)."""
        return child_pids(self.process.pid)

    def log_text(self):
        return self.log_path.read_text()

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # its own session: the supervisor and its workers
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()

    def kill(self):
        """SIGKILL the whole process group: the host is gone at once, as if it lost power."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.log.close()


def child_pids(pid):
    """Live child processes of `pid`, from /proc (zombies left out)."""
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            state = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[0]
            if state != "Z":
                children.append(int(child))
    return sorted(children)


def wait_until(condition, timeout, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return False


class Load:
    """`clients` threads POSTing `body` to `path` over keep-alive connections until stopped (at most `seconds`)."""

    def __init__(self, host, port, body, clients=4, seconds=30, source="127.0.0.1", path="/predict"):
        self.host, self.port, self.body, self.source, self.path = host, port, body, source, path
        self.statuses, self.failures = Counter(), []
        self.lock, self.stopping = threading.Lock(), threading.Event()
        self.deadline = time.monotonic() + seconds
        self.threads = [threading.Thread(target=self.client, daemon=True) for _ in range(clients)]

    def client(self):
        connection = None
        while not self.stopping.is_set() and time.monotonic() < self.deadline:
            try:
                if connection is None:
                    connection = http.client.HTTPConnection(self.host, self.port, timeout=10,
                                                            source_address=(self.source, 0))
                connection.request("POST", self.path, body=self.body, headers={"Content-Type": "image/png"})
                response = connection.getresponse()
                response.read()
                with self.lock:
                    self.statuses[response.status] += 1
                    if response.status != 200:
                        self.failures.append(f"HTTP {response.status}")
            except (OSError, http.client.HTTPException) as error:
                with self.lock:
                    self.failures.append(repr(error))
                connection = None

    def count(self):
        with self.lock:
            return sum(self.statuses.values())

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        for thread in self.threads:
            thread.join(15)
