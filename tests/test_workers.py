"""`python -m serve --workers N`: N processes on one port, a killed worker comes back; the bare server's own limits."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.conftest import ARTIFACTS_DIR, ROOT
from tests.front_fixtures import ServeProcess, drawn_digit_png, wait_until
from tests.server_fixtures import post, request

WORKERS = 3


@pytest.fixture
def supervised(tmp_path):
    server = ServeProcess(tmp_path / "serve.log", "--port", "0", "--workers", str(WORKERS), "--threads", "2")
    yield server
    server.stop()


def test_n_workers_answer_on_one_port(supervised):
    assert len(supervised.worker_pids()) == WORKERS
    base_url = f"http://{supervised.address}"
    for _ in range(6):
        assert post(base_url, drawn_digit_png(), "image/png").status == 200
    assert f"{WORKERS} worker processes" in supervised.log_text()


def test_a_worker_killed_with_sigkill_is_replaced(supervised):
    before = supervised.worker_pids()
    os.kill(before[0], signal.SIGKILL)
    assert wait_until(lambda: len(supervised.worker_pids()) == WORKERS and supervised.worker_pids() != before, 60)
    assert before[0] not in supervised.worker_pids()
    # The supervisor says so once the new worker is up; give its line a moment to reach the log.
    assert wait_until(lambda: "exited with signal 9; restarting" in supervised.log_text(), 10)
    base_url = f"http://{supervised.address}"
    assert wait_until(lambda: request(base_url, "GET", "/healthz").status == 200, 30)


def test_stopping_the_supervisor_stops_every_worker(tmp_path):
    server = ServeProcess(tmp_path / "serve.log", "--port", "0", "--workers", "2")
    workers = server.worker_pids()
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(30) == 0
    server.log.close()
    assert wait_until(lambda: not any(os.path.exists(f"/proc/{pid}") for pid in workers), 10)


def test_a_body_far_over_the_limit_is_refused_as_json_before_it_is_sent(live_server):
    """waitress answers this one itself (over twice the limit), from the Content-Length alone."""
    host, port = live_server.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                           b"Content-Length: 20000000\r\n\r\n")
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 ")
    assert b"Content-Type: application/json" in head and b"X-Content-Type-Options: nosniff" in head
    assert b"Content-Security-Policy: default-src 'self'" in head
    assert "request body too large" in json.loads(body)["error"]


def test_oversized_headers_are_refused_as_json(live_server):
    answer = request(live_server, "GET", "/healthz", headers={"X-Padding": "a" * 20000})
    assert answer.status == 431 and answer.headers["Content-Type"] == "application/json"
    assert answer.json()["error"]


def test_a_client_trickling_its_request_is_cut_off_at_the_deadline(start_server):
    """A byte every 0.2 s never looks idle to channel_timeout; the whole-request deadline ends it."""
    base_url = start_server(server_options={"request_deadline": 1, "cleanup_interval": 1})
    port = int(base_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.setblocking(False)
        started, closed = time.monotonic(), False
        while time.monotonic() - started < 15 and not closed:
            try:
                connection.send(b"X")
                closed = connection.recv(1024) == b""
            except BlockingIOError:
                pass
            except OSError:
                closed = True
            time.sleep(0.2)
        assert closed, "the trickling connection was never closed"
    assert request(base_url, "GET", "/healthz").status == 200


def test_a_broken_model_is_reported_once_however_many_workers(tmp_path, manifest):
    artifacts = tmp_path / "artifacts"
    shutil.copytree(ARTIFACTS_DIR, artifacts)
    model = artifacts / manifest["variants"][manifest["default_variant"]]["file"]
    model.write_bytes(model.read_bytes()[:1000])
    result = subprocess.run([sys.executable, "-m", "serve", "--artifacts", str(artifacts), "--port", "0",
                             "--workers", str(WORKERS)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("serve: refusing to start: ") and model.name in lines[0], lines
