"""Servers as real processes (`python -m serve`), for tests that kill them, run several, or change their disk.

`start_process(env, prefix=())`: a server on a free port with `env` added to its environment, started
through `prefix` (e.g. an `unshare` mount namespace); returns a ServerProcess, whose `base_url` waits until
it listens (so several start at once). All are stopped at the end.
"""

import functools
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT

START_SECONDS = 60


class ServerProcess:
    def __init__(self, env, log_path, prefix=()):
        self.log_path = log_path
        self.log = open(log_path, "w")
        self.process = subprocess.Popen(
            [*prefix, sys.executable, "-m", "serve", "--port", "0", "--threads", "4", "--quiet"], cwd=ROOT,
            stdout=self.log, stderr=self.log, env={**os.environ, "HOST": "", "PORT": "", **env},
            start_new_session=True)

    @functools.cached_property
    def base_url(self):
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            match = re.search(r"on http://127\.0\.0\.1:(\d+)", self.log_path.read_text())
            if match:
                return f"http://127.0.0.1:{match.group(1)}"
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"server did not start: {self.log_path.read_text()[-2000:]}")

    def kill(self):
        """SIGKILL: no shutdown code of ours runs."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


@pytest.fixture
def start_process(tmp_path):
    processes = []

    def start(env, prefix=()):
        processes.append(ServerProcess({key: str(value) for key, value in env.items()},
                                       tmp_path / f"server-{len(processes)}.log", prefix))
        return processes[-1]

    yield start
    for process in processes:
        process.stop()
