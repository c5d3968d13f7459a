"""Graceful stop (serve/drain.py) on real processes: SIGTERM turns /readyz false first, then the socket closes,
requests in flight finish within the drain timeout, the supervisor waits for them, and workers stopped one
after another under load fail no request (bare workers here; behind nginx in test_front.py)."""

import json
import os
import signal
import socket
import time

import pytest

from tests.front_fixtures import Load, ServeProcess, drawn_digit_png, wait_until
from tests.server_fixtures import request

WORKERS = 3


def start(tmp_path, *arguments, env=None):
    return ServeProcess(tmp_path / "serve.log", "--port", "0", "--threads", "2", *arguments, env=env)


def send_half_a_request(server, body):
    """A connection holding a /predict whose headers and first half of the body have arrived."""
    connection = socket.create_connection((server.host, server.port), timeout=10)
    connection.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                       b"Content-Length: %d\r\n\r\n" % len(body) + body[:len(body) // 2])
    time.sleep(0.5)  # let the worker read it, so it is in flight when SIGTERM comes
    return connection


def read_answer(connection):
    answer = b""
    while chunk := connection.recv(65536):
        answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return head.decode("latin-1"), body


def refuses_connections(server):
    try:
        socket.create_connection((server.host, server.port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


@pytest.fixture
def served(tmp_path):
    servers = []

    def serve(*arguments, env=None):
        servers.append(start(tmp_path, *arguments, env=env))
        return servers[-1]

    yield serve
    for server in servers:
        server.stop()


def test_sigterm_turns_readiness_false_before_the_socket_closes(served):
    server = served("--workers", "1", env={"SERVE_DRAIN_DELAY": "3"})
    base_url = f"http://{server.address}"
    assert request(base_url, "GET", "/readyz").json() == {"status": "ready"}
    server.process.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    not_ready = request(base_url, "GET", "/readyz")
    assert not_ready.status == 503 and "stopping" in not_ready.json()["error"]
    assert not_ready.headers["Connection"] == "close"
    alive = request(base_url, "GET", "/healthz")  # liveness is not readiness: no restart while draining
    assert alive.status == 200 and alive.headers["Connection"] == "close"
    assert wait_until(lambda: refuses_connections(server), 10)
    assert server.process.wait(10) == 0


def test_a_request_in_flight_at_sigterm_is_answered_before_the_worker_exits(served):
    server = served("--workers", "1")
    body = drawn_digit_png()
    connection = send_half_a_request(server, body)
    server.process.send_signal(signal.SIGTERM)
    assert wait_until(lambda: refuses_connections(server), 10)  # no new connections...
    time.sleep(1)
    assert server.process.poll() is None  # ...but it waits for the one in flight
    connection.sendall(body[len(body) // 2:])
    head, answer = read_answer(connection)
    connection.close()
    assert head.startswith("HTTP/1.1 200 ") and "Connection: close" in head
    assert json.loads(answer)["digit"] == 1
    assert server.process.wait(10) == 0


def test_the_drain_is_bounded_by_its_timeout(served):
    server = served("--workers", "1", env={"SERVE_DRAIN_TIMEOUT": "1"})
    connection = send_half_a_request(server, drawn_digit_png())  # and the rest never comes
    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(15) == 0
    assert time.monotonic() - started < 5
    connection.close()


def test_the_supervisor_passes_sigterm_on_and_waits_for_requests_in_flight(served):
    server = served("--workers", "2")
    workers = server.worker_pids()
    body = drawn_digit_png()
    connection = send_half_a_request(server, body)
    server.process.send_signal(signal.SIGTERM)
    time.sleep(1.5)
    assert server.process.poll() is None, "the supervisor did not wait for its draining worker"
    connection.sendall(body[len(body) // 2:])
    head, answer = read_answer(connection)
    connection.close()
    assert head.startswith("HTTP/1.1 200 ") and json.loads(answer)["digit"] == 1
    assert server.process.wait(20) == 0
    assert wait_until(lambda: not any(os.path.exists(f"/proc/{pid}") for pid in workers), 10)


@pytest.mark.parametrize("path", ["/predict", "/number"])
def test_workers_stopped_one_by_one_under_load_fail_no_request(served, path):
    """A rolling restart of the bare workers: each gets SIGTERM, drains, exits, and the supervisor starts another."""
    server = served("--workers", str(WORKERS), "--quiet")
    with Load(server.host, server.port, drawn_digit_png(), clients=4, seconds=120, path=path) as load:
        assert wait_until(lambda: load.count() >= 50, 30)
        for _ in range(WORKERS):
            before = server.worker_pids()
            os.kill(before[0], signal.SIGTERM)
            assert wait_until(lambda: before[0] not in server.worker_pids()
                              and len(server.worker_pids()) == WORKERS, 60)
            stopped_at = load.count()
            assert wait_until(lambda: load.count() >= stopped_at + 100, 30)
    assert load.failures == [], load.failures[:5]
    assert set(load.statuses) == {200} and load.count() >= 350
    assert server.log_text().count("exited with status 0; restarting") == WORKERS
