"""Server processes under test: ours (`python -m serve`) and the peer (`python -m bench.peer_server`).

Each runs as its own process on an ephemeral loopback port, so its memory and start-up are its own;
we learn the port from the line it prints when it is listening.
"""

import http.client
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.report import ROOT

LISTENING = re.compile(rb"http://127\.0\.0\.1:(\d+)")
# `make serve` runs the server this way (fewer glibc malloc arenas: less memory, same speed).
SERVE_ENVIRONMENT = {"MALLOC_ARENA_MAX": "2"}
START_TIMEOUT = 120


class ServerProcess:
    """A started server: its process, port, and how long it took from spawn to its first correct answer."""

    def __init__(self, name, arguments, log_path, environment=None):
        self.name, self.arguments, self.environment = name, arguments, environment or {}
        words = [f"{key}={value}" for key, value in self.environment.items()] + ["python", *arguments]
        self.command = shlex.join(words)
        self.log_path = Path(log_path)
        self.process = None
        self.port = None
        self.first_answer_seconds = None

    def start(self, body, content_type="image/png"):
        """Spawn, wait until listening, then POST `body` until it is answered 200; returns self."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "wb")
        started = time.perf_counter()
        self.process = subprocess.Popen([sys.executable, *self.arguments], cwd=ROOT, stdout=log, stderr=log,
                                        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **self.environment})
        log.close()
        while self.port is None:
            match = LISTENING.search(self.log_path.read_bytes())
            if match:
                self.port = int(match.group(1))
            else:
                self._check_alive(started)
                time.sleep(0.005)
        while True:
            try:
                status, _ = post(self.port, body, content_type)
                if status == 200:
                    break
            except OSError:
                pass
            self._check_alive(started)
            time.sleep(0.005)
        self.first_answer_seconds = time.perf_counter() - started
        return self

    def _check_alive(self, started):
        if self.process.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-800:]
            raise RuntimeError(f"{self.command} exited with {self.process.returncode}: {tail}")
        if time.perf_counter() - started > START_TIMEOUT:
            self.stop()
            raise RuntimeError(f"{self.command} did not answer within {START_TIMEOUT} s")

    def pids(self):
        """The server's process and its worker processes, if it has any."""
        return [self.process.pid, *child_pids(self.process.pid)]

    def memory(self):
        """(resident, peak resident) bytes, summed over the server's processes."""
        sizes = [process_memory(pid) for pid in self.pids()]
        return sum(size[0] for size in sizes), sum(size[1] for size in sizes)

    def cpu_seconds(self):
        return sum(process_cpu_seconds(pid) for pid in self.pids())

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def our_server(work_dir, artifacts_dir, variant=None, workers=1):
    arguments = ["-m", "serve", "--port", "0", "--quiet", "--workers", str(workers)]
    if Path(artifacts_dir).resolve() != (ROOT / "artifacts"):
        arguments += ["--artifacts", str(artifacts_dir)]
    if variant:
        arguments += ["--variant", variant]
    name = "ours: Flask + onnxruntime" + (f", {workers} worker processes" if workers > 1 else "")
    return ServerProcess(name, arguments, Path(work_dir) / "logs" / f"serve-{workers}.log", SERVE_ENVIRONMENT)


def peer_server(work_dir, artifacts_dir):
    arguments = ["-m", "bench.peer_server", "--port", "0"]
    if Path(artifacts_dir).resolve() != (ROOT / "artifacts"):
        arguments += ["--artifacts", str(artifacts_dir)]
    return ServerProcess("peer: Flask + Keras model.predict", arguments, Path(work_dir) / "logs" / "peer.log")


def child_pids(pid):
    """Live child processes of `pid` (a supervisor's workers), from /proc."""
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            pass  # the thread ended meanwhile
    return [child for child in children if Path(f"/proc/{child}/status").exists()]


def process_memory(pid):
    """(resident, peak resident) bytes of a process, from /proc."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) * 1024
    return values.get("VmRSS", 0), values.get("VmHWM", 0)


def process_cpu_seconds(pid):
    """User + system CPU time a process has used so far, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds():
    """CPU seconds all cores of this machine have spent busy since boot (from /proc/stat)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def post(port, body, content_type, path="/predict"):
    """One POST on a fresh connection; returns (status, body bytes)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("POST", path, body=body, headers={"Content-Type": content_type})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()
