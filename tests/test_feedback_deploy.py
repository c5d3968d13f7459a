"""Feedback where we deploy it: the Pi unit's sandbox replayed by hand (systemd is not PID 1 here), a read-only
root, and settings the server cannot use.

The sandbox is the unit's own: `systemd-analyze verify` checks the file, then a private mount namespace makes
every mount read-only (ProtectSystem=strict), hides /home and /root (ProtectHome=yes), gives a private /tmp
(PrivateTmp=yes), puts the checkout at the unit's WorkingDirectory and, when asked, a writable state directory
where StateDirectory= puts it. The server is the unit's ExecStart with the unit's Environment.
"""

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.feedback_helpers import feedback_document, pad_png, post_feedback
from tests.server_fixtures import post, request

UNIT = ROOT / "deploy" / "digit-kiosk.service"
STATE_ROOT = "/var/lib"  # systemd's %S for a system unit


def unit_settings():
    """The unit's [Service] settings: {key: [values]} in file order (Environment= may come more than once)."""
    settings, section = {}, None
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif section == "Service" and "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


def unit_environment():
    """Environment= of the unit, with %S as systemd expands it for a system unit."""
    environment = {}
    for value in unit_settings()["Environment"]:
        for assignment in shlex.split(value.replace("%S", STATE_ROOT)):
            key, _, setting = assignment.partition("=")
            environment[key] = setting
    return environment


def sandbox_script(state_dir, writable_state):
    """Shell that builds the unit's sandbox in this mount namespace; `state_dir` (on the host) becomes its
    StateDirectory, writable only if `writable_state`."""
    settings = unit_settings()
    working_dir = settings["WorkingDirectory"][0]
    [state_name] = settings["StateDirectory"]
    state = f"{STATE_ROOT}/{state_name}"
    return "\n".join([
        # ProtectSystem=strict: every mount read-only, except the API file systems.
        "awk '{print $5}' /proc/self/mountinfo | grep -Ev '^/(proc|sys|dev)(/|$)' | sort -u |"
        " while read -r point; do mount -o remount,bind,ro \"$point\" 2>/dev/null || true; done",
        # The checkout where the unit expects it, read-only like the rest.
        f"mount -t tmpfs -o mode=755 tmpfs {Path(working_dir).parent}",
        f"mkdir {working_dir}",
        f"mount --bind {ROOT} {working_dir}",
        f"mount -o remount,bind,ro {working_dir}",
        # /var/lib as on a fresh Pi: empty but for the state directory systemd makes.
        f"mount -t tmpfs -o mode=755 tmpfs {STATE_ROOT}",
        f"mkdir {state}",
        f"mount -o remount,ro {STATE_ROOT}",
        f"mount --bind {state_dir} {state}",
        f"mount -o remount,bind,{'rw' if writable_state else 'ro'} {state}",
        # PrivateTmp=yes and ProtectHome=yes.
        "mount -t tmpfs tmpfs /tmp",
        *[f"mount -t tmpfs -o ro,mode=755 tmpfs {home}" for home in hidden_homes()],
        f"cd {working_dir}",
    ])


def hidden_homes():
    """What ProtectHome=yes hides, but for a home that holds this machine's Python (a pyenv build in /root on
    the test machine; the Pi's interpreter is /usr/bin/python3)."""
    interpreter = Path(sys.executable).resolve()
    return [home for home in ("/home", "/root") if not interpreter.is_relative_to(home)]


def unit_sandbox(state_dir, writable_state=True):
    """A start_process prefix: the unit's sandbox, then its ExecStart with the test's extra flags (--port 0 ...)."""
    [exec_start] = unit_settings()["ExecStart"]
    # start_process runs `prefix python -m serve --port 0 ...`: keep its flags, run the unit's own command.
    return ["unshare", "--mount", "--propagation", "private", "sh", "-euc",
            sandbox_script(state_dir, writable_state) + f'\nshift 3\nexec {exec_start} "$@"', "sh"]


def start_unit(start_process, state_dir, writable_state=True, **env):
    settings = {**unit_environment(), "SERVE_ADMIN_TOKEN": "", **env}
    return start_process(settings, unit_sandbox(state_dir, writable_state))


def test_the_unit_passes_systemd_analyze_verify():
    # verify checks that ExecStart exists: give it the checkout where the unit expects it.
    working_dir = unit_settings()["WorkingDirectory"][0]
    script = (f"mount -t tmpfs tmpfs {Path(working_dir).parent}; mkdir {working_dir}; "
              f"mount --bind {ROOT} {working_dir}; systemd-analyze verify {working_dir}/deploy/{UNIT.name}")
    result = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-euc", script],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_systemd_analyze_verify_catches_a_broken_unit(tmp_path):
    broken = tmp_path / UNIT.name
    broken.write_text(UNIT.read_text().replace("StateDirectory=digit-kiosk", "StateDirectory=../digit-kiosk"))
    result = subprocess.run(["systemd-analyze", "verify", str(broken)], capture_output=True, text=True, timeout=120)
    assert "StateDirectory= path is not normalized" in result.stderr


def test_the_unit_keeps_feedback_in_its_state_directory():
    settings = unit_settings()
    assert settings["ProtectSystem"] == ["strict"] and settings["StateDirectory"] == ["digit-kiosk"]
    assert unit_environment()["SERVE_FEEDBACK_DB"] == f"{STATE_ROOT}/digit-kiosk/feedback.sqlite"


def test_under_the_units_sandbox_feedback_is_stored(start_process, tmp_path):
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    server = start_unit(start_process, state_dir)
    assert request(server.base_url, "GET", "/feedback").json() == {"feedback": "on"}
    answer = post_feedback(server.base_url, feedback_document())
    assert answer.status == 201, answer.body
    assert (state_dir / "feedback.sqlite").stat().st_size > 0  # in the state directory, on the host's disk
    assert "Traceback" not in server.log_path.read_text()


def test_under_a_read_only_root_feedback_is_503_predict_answers_and_the_store_is_retried(start_process, tmp_path):
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    server = start_unit(start_process, state_dir, writable_state=False, SERVE_FEEDBACK_STORE_RETRY_SECONDS=1)
    status = request(server.base_url, "GET", "/feedback")
    assert status.json() == {"feedback": "unavailable"} and int(status.headers["Retry-After"]) >= 1
    for _ in range(3):
        answer = post_feedback(server.base_url, feedback_document())
        assert answer.status == 503 and answer.headers["Content-Type"] == "application/json"
        assert int(answer.headers["Retry-After"]) >= 1 and "try again" in answer.json()["error"]
        assert post(server.base_url, pad_png(), "image/png").status == 200
        assert post(server.base_url, pad_png(side=280), "image/png", path="/number").status in (200, 422)
    time.sleep(1.1)  # past the retry: the server tries the store again, and it still fails
    assert post_feedback(server.base_url, feedback_document()).status == 503
    log = server.log_path.read_text()
    [line] = [line for line in log.splitlines() if "feedback unavailable" in line]  # said once, at start-up
    assert "Read-only file system" in line and "/var/lib/digit-kiosk/feedback.sqlite" in line, line
    assert "Traceback" not in log
    # The operator fixes the disk (here: the mount); the server tries the store again and takes entries.
    subprocess.run(["nsenter", "-t", str(server.process.pid), "-m", "mount", "-o", "remount,bind,rw",
                    f"{STATE_ROOT}/digit-kiosk"], check=True, timeout=30)
    time.sleep(1.1)
    assert request(server.base_url, "GET", "/feedback").json() == {"feedback": "on"}
    assert post_feedback(server.base_url, feedback_document()).status == 201
    assert "feedback available again" in server.log_path.read_text()


BAD_SETTINGS = {
    "url not postgresql": ({"SERVE_FEEDBACK_URL": "mysql://kiosk@db/feedback"}, "SERVE_FEEDBACK_URL"),
    "url port not a number": ({"SERVE_FEEDBACK_URL": "postgresql://kiosk:secret@db:port/feedback"}, "port"),
    "url unparseable": ({"SERVE_FEEDBACK_URL": "postgresql://kiosk:secret@db/feedback?nonsense=1"}, "SERVE_FEEDBACK_URL"),
    "rate a word": ({"SERVE_FEEDBACK_RATE_PER_MINUTE": "lots"}, "SERVE_FEEDBACK_RATE_PER_MINUTE"),
    "rate zero": ({"SERVE_FEEDBACK_RATE_PER_MINUTE": "0"}, "SERVE_FEEDBACK_RATE_PER_MINUTE"),
    "daily cap negative": ({"SERVE_FEEDBACK_MAX_PER_CLIENT_DAY": "-5"}, "SERVE_FEEDBACK_MAX_PER_CLIENT_DAY"),
    "entries a fraction": ({"SERVE_FEEDBACK_MAX_ENTRIES": "10.5"}, "SERVE_FEEDBACK_MAX_ENTRIES"),
    "retention nan": ({"SERVE_FEEDBACK_RETENTION_DAYS": "NaN"}, "SERVE_FEEDBACK_RETENTION_DAYS"),
    "store bytes infinite": ({"SERVE_FEEDBACK_MAX_STORE_BYTES": "1e999"}, "SERVE_FEEDBACK_MAX_STORE_BYTES"),
}


@pytest.mark.parametrize("name", BAD_SETTINGS)
def test_a_setting_the_server_cannot_use_refuses_the_start_in_one_line(name, tmp_path):
    env, named = BAD_SETTINGS[name]
    result = subprocess.run([sys.executable, "-m", "serve", "--port", "0", "--workers", "1"], cwd=ROOT,
                            env={**os.environ, "SERVE_FEEDBACK_DB": str(tmp_path / "f.sqlite"), **env},
                            capture_output=True, text=True, timeout=120)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("serve: refusing to start:") and named in lines[0] and "secret" not in lines[0]


def test_a_fleet_database_that_does_not_answer_is_503_and_predict_answers(start_server):
    from serve.front import free_port

    base_url = start_server(FEEDBACK_URL=f"postgresql://kiosk:secret@127.0.0.1:{free_port()}/feedback")
    assert request(base_url, "GET", "/feedback").json() == {"feedback": "unavailable"}
    answer = post_feedback(base_url, feedback_document())
    assert answer.status == 503 and int(answer.headers["Retry-After"]) >= 1 and "secret" not in answer.body.decode()
    assert post(base_url, pad_png(), "image/png").status == 200
