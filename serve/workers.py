"""N server processes on one port: a small supervisor that binds the socket, starts the workers and restarts any that die.

Each worker is `python -m serve` given the inherited listening socket, so all of them accept from one
kernel queue: a worker that dies (even by SIGKILL) loses only the requests it was answering, and
connections still waiting are taken by the others. The supervisor never loads the model itself.
"""

import ctypes
import os
import pwd
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from serve.drain import drain_settings
from serve.server import bind_listener

READY_TIMEOUT = 120  # seconds for a worker to load and check the model
# On SIGTERM each worker drains (serve/drain.py); it is killed only if it takes this much longer than that.
STOP_MARGIN = 5
POLL_INTERVAL = 0.1
# A worker that dies sooner than this after starting is restarted after a growing pause (up to MAX_BACKOFF).
STABLE_SECONDS = 10
MAX_BACKOFF = 10
REFUSED = 2  # the exit status of a server that refuses to start (see serve/__main__.py)


def default_worker_count():
    """The CPUs this process may run on (fewer than the machine's in a container or under taskset)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def die_with_parent():
    """In the child before exec: get SIGTERM if the supervisor dies, so no worker outlives it."""
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Worker:
    """One worker process and its restart bookkeeping."""

    def __init__(self, index):
        self.index, self.process, self.started, self.failures, self.restart_at = index, None, 0.0, 0, None


class Supervisor:
    def __init__(self, worker_argv, count, host, port, user=None):
        self.worker_argv, self.count = worker_argv, count
        self.listener = bind_listener(host, port)
        self.host, self.port = self.listener.getsockname()[:2]
        self.workers = [Worker(index) for index in range(count)]
        self.stopping = threading.Event()
        self.metrics_dir = share_metrics(user)

    def spawn(self, worker, ready_fd=None):
        arguments = [sys.executable, "-m", "serve", *self.worker_argv, "--workers", "1",
                     "--listen-fd", str(self.listener.fileno())]
        passed = [self.listener.fileno()]
        if ready_fd is not None:
            arguments += ["--ready-fd", str(ready_fd)]
            passed.append(ready_fd)
        worker.process = subprocess.Popen(arguments, pass_fds=passed, preexec_fn=die_with_parent)
        worker.started = time.monotonic()

    def start_and_wait(self, workers):
        """Start `workers` at once; their banner lines once every one is answering, or None if one refused."""
        pipes = {}
        for worker in workers:
            read_fd, write_fd = os.pipe()
            self.spawn(worker, write_fd)
            os.close(write_fd)
            pipes[read_fd] = worker
        banners, deadline = [], time.monotonic() + READY_TIMEOUT
        try:
            while pipes:
                ready, _, _ = select.select(list(pipes), [], [], max(0.0, deadline - time.monotonic()))
                if not ready:
                    raise RuntimeError(f"a worker did not answer within {READY_TIMEOUT} s")
                for read_fd in ready:
                    line = os.read(read_fd, 4096).decode().strip()
                    worker = pipes.pop(read_fd)
                    os.close(read_fd)
                    if not line:  # the pipe closed without a banner: the worker exited
                        return None if worker.process.wait() == REFUSED else self.fail(worker)
                    banners.append(line)
        finally:
            for read_fd in pipes:
                os.close(read_fd)
        return banners

    def fail(self, worker):
        raise RuntimeError(f"worker {worker.index} exited with status {worker.process.returncode} while starting")

    def run(self):
        """Serve until SIGTERM/SIGINT; the exit status of `python -m serve`."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: self.stopping.set())
        try:
            # One worker first: a model that fails its check is then reported once, not N times.
            banners = self.start_and_wait(self.workers[:1])
            if banners is None:
                return REFUSED
            if self.count > 1 and self.start_and_wait(self.workers[1:]) is None:
                return REFUSED
            print(f"{banners[0]}, {self.count} worker processes", file=sys.stderr, flush=True)
            while not self.stopping.wait(POLL_INTERVAL):
                for worker in self.workers:
                    self.check(worker)
            return 0
        finally:
            self.stop_all()

    def check(self, worker):
        """Notice a dead worker and start a new one, after a pause if it keeps dying young."""
        if worker.restart_at is None:
            if worker.process.poll() is None:
                return
            status = worker.process.returncode
            reason = f"signal {-status}" if status < 0 else f"status {status}"
            lived = time.monotonic() - worker.started
            worker.failures = 0 if lived > STABLE_SECONDS else worker.failures + 1
            pause = min(MAX_BACKOFF, 0.5 * (2 ** worker.failures - 1))
            worker.restart_at = time.monotonic() + pause
            print(f"serve: worker {worker.index} (pid {worker.process.pid}) exited with {reason}; "
                  f"restarting{f' in {pause:g} s' if pause else ''}", file=sys.stderr, flush=True)
            forget_metrics_gauges(worker.process.pid)
        if time.monotonic() >= worker.restart_at:
            worker.restart_at = None
            self.spawn(worker)

    def stop_all(self):
        """Pass SIGTERM on to every worker and wait while they drain; kill the ones that overrun."""
        running = [worker.process for worker in self.workers if worker.process and worker.process.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + stop_timeout()
        for process in running:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.listener.close()
        if self.metrics_dir:
            shutil.rmtree(self.metrics_dir, ignore_errors=True)


def share_metrics(user):
    """A folder for the workers' metrics files (prometheus_client's multiprocess mode), unless one is given.

    Its files are a few hundred KB per worker, in TMPDIR; with one process (the pod) there is none.
    """
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        return None
    folder = tempfile.mkdtemp(prefix="digit-kiosk-metrics-")
    if user and os.geteuid() == 0:  # the workers write it once they have dropped to `user`
        entry = pwd.getpwnam(user)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder  # inherited by every worker
    return folder


def forget_metrics_gauges(pid):
    """A dead worker's gauges leave the sums; its counters stay, so totals never go down."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def stop_timeout(environ=os.environ):
    """Seconds the supervisor waits for its workers to drain and exit."""
    delay, timeout = drain_settings(environ)
    return delay + timeout + STOP_MARGIN


def run_workers(worker_argv, count, host, port, user=None):
    """Run `count` workers of `python -m serve worker_argv...` on host:port (as `user`); returns the exit status."""
    try:
        supervisor = Supervisor(worker_argv, count, host, port, user)
    except OSError as error:
        print(f"serve: cannot listen on {host}:{port}: {error}", file=sys.stderr)
        return 1
    try:
        return supervisor.run()
    except RuntimeError as error:  # a worker crashed or hung while loading the model; they are all stopped
        print(f"serve: {error}", file=sys.stderr)
        return 1
