"""Never root: `python -m serve.front` (`make front`) and `python -m serve --user` started as root run nginx's
workers and every server process as an unprivileged user, and still answer; the unit and the image name one."""

import configparser
import os
import pwd
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from serve.front import free_port
from serve.privileges import default_user
from tests.conftest import ROOT
from tests.front_fixtures import ServeProcess, child_pids, drawn_digit_png, wait_until
from tests.server_fixtures import post, request


@pytest.fixture(autouse=True)
def as_root():
    assert os.geteuid() == 0, "these tests start servers as root, as `make front` may be (CI runs as root)"


def uid_of(pid):
    """The process's real, effective, saved and filesystem uids."""
    line = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("Uid:"))
    return {int(value) for value in line.split()[1:]}


def command_of(pid):
    return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ").strip()


def descendants(pid):
    found = []
    for child in child_pids(pid):
        found += [child, *descendants(child)]
    return found


def test_make_front_as_root_runs_nginx_workers_and_server_workers_unprivileged(tmp_path):
    expected = pwd.getpwnam(default_user()).pw_uid
    assert expected != 0
    port = free_port()
    log_path = tmp_path / "front.log"
    with open(log_path, "w") as log:
        front = subprocess.Popen([sys.executable, "-m", "serve.front", "--port", str(port), "--workers", "2",
                                  "--run-dir", str(tmp_path / "run")], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                 env={**os.environ, "HOST": "127.0.0.1"})
    try:
        assert wait_until(lambda: "serve.front: nginx on" in log_path.read_text(), 120), log_path.read_text()[-2000:]
        base_url = f"http://127.0.0.1:{port}"
        assert post(base_url, drawn_digit_png(), "image/png").status == 200
        assert request(base_url, "GET", "/").status == 200
        processes = {pid: command_of(pid) for pid in descendants(front.pid)}
        nginx_workers = [pid for pid, command in processes.items() if command.startswith("nginx: worker process")]
        server_workers = [pid for pid, command in processes.items() if "--listen-fd" in command]
        assert nginx_workers and len(server_workers) == 2, processes
        # A server worker is root while it loads the model (the second may still be loading now), never after.
        assert wait_until(lambda: all(uid_of(pid) == {expected} for pid in server_workers), 60), \
            {processes[pid]: uid_of(pid) for pid in server_workers}
        for pid in nginx_workers:
            assert uid_of(pid) == {expected}, f"{processes[pid]} runs as {uid_of(pid)}"
        # Root is left only to the processes that start others and read no request: nginx's master and our
        # supervisor (and the launcher itself).
        privileged = [processes[pid] for pid in processes if 0 in uid_of(pid)]
        assert len(privileged) == 2 and any(command.startswith("nginx: master process") for command in privileged)
        assert any(" -m serve " in command and "--listen-fd" not in command for command in privileged), privileged
    finally:
        front.send_signal(signal.SIGTERM)
        assert front.wait(40) == 0


def test_python_m_serve_with_user_drops_root_once_bound(tmp_path):
    server = ServeProcess(tmp_path / "serve.log", "--port", "0", "--workers", "1", "--user", "nobody")
    try:
        assert uid_of(server.process.pid) == {pwd.getpwnam("nobody").pw_uid}
        assert post(f"http://{server.address}", drawn_digit_png(), "image/png").status == 200
        # nobody cannot write the checkout's data/ (root's here): the store's trouble is said at start.
        if not os.access(ROOT, os.W_OK) or ROOT.stat().st_uid == 0:
            assert "feedback will answer 503" in server.log_text()
    finally:
        server.stop()


def test_a_root_user_is_refused(tmp_path):
    result = subprocess.run([sys.executable, "-m", "serve", "--port", "0", "--workers", "1", "--user", "root"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "name an unprivileged user" in result.stderr


def test_the_unit_and_the_image_run_as_an_unprivileged_user():
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read_string((ROOT / "deploy" / "digit-kiosk.service").read_text())
    assert unit["Service"]["User"] not in ("", "root", "0")
    assert unit["Service"]["NoNewPrivileges"] == "yes"
    (user,) = re.findall(r"^USER (\S+)", (ROOT / "deploy" / "Containerfile").read_text(), re.MULTILINE)
    assert user.split(":")[0] not in ("0", "root")
