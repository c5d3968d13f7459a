"""The real nginx (deploy/nginx/, rendered by serve/front.py) in front of real server workers.

Slow clients from one address, a 20 MB body, a per-address rate limit, a worker killed under load, and
the scale-out shape: several server hosts in network namespaces behind the nginx upstream.
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from serve.front import FrontConfig, Nginx, free_port, wait_for_port
from tests.conftest import ROOT
from tests.front_fixtures import Load, ServeProcess, child_pids, drawn_digit_png, raise_open_files_limit, wait_until
from tests.server_fixtures import request

SLOW_CONNECTIONS = 1000
SLOW_ADDRESS = "127.0.0.2"  # all of 127.0.0.0/8 is loopback: one "client address" for the slow ones
NORMAL_ADDRESS = "127.0.0.1"
# The load tests measure failover, not the rate limits.
UNLIMITED = {"rate": 100000, "burst": 100000, "number_rate": 100000, "number_burst": 100000}


@pytest.fixture
def start_front(tmp_path):
    """start(upstreams, **FrontConfig options) -> (host, port) of a running nginx; stopped after the test."""
    started = []

    def start(upstreams, **options):
        port = free_port()
        config = FrontConfig(listen=f"127.0.0.1:{port}", upstreams=upstreams, **options)
        nginx = Nginx(config, tmp_path / f"nginx-{len(started)}")
        with open(tmp_path / f"nginx-{len(started)}.log", "w") as log:
            nginx.start(log)
        started.append(nginx)
        wait_for_port("127.0.0.1", port, nginx.process)
        return "127.0.0.1", port

    yield start
    for nginx in started:
        nginx.stop()


@pytest.fixture
def workers(tmp_path):
    server = ServeProcess(tmp_path / "serve.log", "--port", "0", "--workers", "2", "--threads", "2", "--quiet")
    yield server
    server.stop()


@pytest.fixture
def front(start_front, workers):
    # As `make front` does: the workers' one address once per worker, no failure accounting.
    return start_front([workers.address] * 2, max_fails=0, **UNLIMITED)


def post_predict(host, port, body, source=NORMAL_ADDRESS, timeout=10):
    connection = http.client.HTTPConnection(host, port, timeout=timeout, source_address=(source, 0))
    try:
        connection.request("POST", "/predict", body=body, headers={"Content-Type": "image/png"})
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type"), response.read()
    finally:
        connection.close()


def count_open(connections):
    """How many of these non-blocking connections the server still holds open."""
    still_open = 0
    for connection in connections:
        try:
            still_open += connection.recv(1) != b""
        except BlockingIOError:
            still_open += 1  # nothing to read and not closed
        except OSError:
            pass
    return still_open


def test_a_thousand_slow_connections_from_one_address_leave_others_answered(front):
    raise_open_files_limit(SLOW_CONNECTIONS + 1024)
    host, port = front
    body = drawn_digit_png()
    slow = []
    try:
        for _ in range(SLOW_CONNECTIONS):
            connection = socket.create_connection((host, port), timeout=5, source_address=(SLOW_ADDRESS, 0))
            connection.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\n")
            connection.setblocking(False)
            slow.append(connection)
        for round_index in range(8):  # about 4 s of trickling, a byte per connection per round
            for connection in slow:
                try:
                    connection.send(b"X")
                except OSError:
                    pass
            started = time.monotonic()
            status, content_type, answer = post_predict(host, port, body)
            seconds = time.monotonic() - started
            assert status == 200 and "digit" in json.loads(answer), answer[:200]
            assert seconds < 1.0, f"/predict took {seconds:.2f} s behind {SLOW_CONNECTIONS} slow connections"
            if round_index == 0:
                # Held by nginx, not refused (later, its 10 s header timeout may rightly close them).
                assert count_open(slow) >= SLOW_CONNECTIONS * 0.99
            time.sleep(0.5)
    finally:
        for connection in slow:
            connection.close()


def test_a_20_mb_body_gets_a_json_413_with_our_headers(front):
    host, port = front
    answer = request(f"http://{host}:{port}", "POST", "/predict", b"\0" * (20 * 1024 * 1024),
                     {"Content-Type": "image/png"})
    assert answer.status == 413 and answer.headers["Content-Type"] == "application/json"
    assert "request body too large" in answer.json()["error"]
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Content-Security-Policy"].startswith("default-src 'self'")


def test_answers_through_nginx_carry_one_copy_of_the_security_headers(front):
    host, port = front
    for path in ("/", "/healthz", "/model/manifest.json", "/no-such-file"):
        answer = request(f"http://{host}:{port}", "GET", path)
        assert len(answer.headers.get_all("Content-Security-Policy")) == 1, path
        assert answer.headers.get_all("X-Content-Type-Options") == ["nosniff"], path
    assert request(f"http://{host}:{port}", "GET", "/no-such-file").json()["error"]


def test_page_and_model_files_have_the_apps_cache_policy(front, manifest):
    base_url = "http://{}:{}".format(*front)
    for path in ("/", "/sw.js", "/model/manifest.json"):
        assert request(base_url, "GET", path).headers["Cache-Control"] == "no-cache", path
    model_file = manifest["variants"][manifest["default_variant"]]["file"]
    answer = request(base_url, "GET", f"/model/{model_file}")
    assert answer.status == 200 and answer.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert len(answer.body) == manifest["variants"][manifest["default_variant"]]["bytes"]
    etag = request(base_url, "GET", "/sw.js").headers["ETag"]
    assert request(base_url, "GET", "/sw.js", headers={"If-None-Match": etag}).status == 304


def test_too_many_requests_from_one_address_get_a_json_429(start_front, workers):
    host, port = start_front([workers.address], rate=1, burst=1)
    body = drawn_digit_png()
    statuses = [post_predict(host, port, body) for _ in range(6)]
    assert statuses[0][0] == 200
    refused = [status for status in statuses if status[0] == 429]
    assert refused and all(content_type == "application/json" and json.loads(answer)["error"]
                           for _, content_type, answer in refused)


@pytest.mark.parametrize("path", ["/predict", "/number"])  # both free of side effects: nginx sends them again
def test_a_worker_killed_under_load_fails_no_request_and_comes_back(front, workers, path):
    host, port = front
    before = workers.worker_pids()
    with Load(host, port, drawn_digit_png(), clients=4, seconds=60, path=path) as load:
        assert wait_until(lambda: load.count() >= 50, 30)
        os.kill(before[0], signal.SIGKILL)
        killed_at = load.count()
        assert wait_until(lambda: load.count() >= killed_at + 300, 30)
    assert load.failures == [], load.failures[:5]
    assert set(load.statuses) == {200}
    assert wait_until(lambda: len(workers.worker_pids()) == 2 and before[0] not in workers.worker_pids(), 60)


@pytest.mark.parametrize("path", ["/predict", "/number"])
def test_workers_stopped_with_sigterm_under_load_fail_no_request_through_nginx(front, workers, path):
    """A rolling restart behind nginx: each worker drains (serve/drain.py) and the supervisor replaces it."""
    host, port = front
    with Load(host, port, drawn_digit_png(), clients=4, seconds=120, path=path) as load:
        assert wait_until(lambda: load.count() >= 50, 30)
        for _ in range(2):
            before = workers.worker_pids()
            os.kill(before[0], signal.SIGTERM)
            assert wait_until(lambda: before[0] not in workers.worker_pids() and len(workers.worker_pids()) == 2, 60)
            stopped_at = load.count()
            assert wait_until(lambda: load.count() >= stopped_at + 100, 30)
    assert load.failures == [], load.failures[:5]
    assert set(load.statuses) == {200}
    assert workers.log_text().count("exited with status 0; restarting") == 2


class Hosts:
    """Server "hosts": one network namespace each, joined to this one by a veth pair (10.213.N.0/24).

    Creating namespaces needs root; without it each host is a loopback address of its own instead.
    """

    def __init__(self, directory, count):
        self.directory, self.count = directory, count
        self.namespaces, self.servers = [], [None] * count
        if os.geteuid() == 0:  # CI runs as root
            try:
                for index in range(count):
                    self.add_namespace(index)
            except BaseException:
                self.close()
                raise
            self.addresses = [f"10.213.{index}.2" for index in range(count)]
            self.ports = [8000] * count
        else:
            self.addresses = [f"127.0.1.{index + 1}" for index in range(count)]
            self.ports = [free_port(address) for address in self.addresses]

    def add_namespace(self, index):
        namespace = f"dk-front-{os.getpid()}-{index}"
        outside, inside = f"dkf{index}h{os.getpid() % 10000}", f"dkf{index}n{os.getpid() % 10000}"
        subprocess.run(["ip", "netns", "add", namespace], check=True, capture_output=True)
        self.namespaces.append(namespace)
        for command in (
            ["ip", "link", "add", outside, "type", "veth", "peer", "name", inside],
            ["ip", "link", "set", inside, "netns", namespace],
            ["ip", "addr", "add", f"10.213.{index}.1/24", "dev", outside],
            ["ip", "link", "set", outside, "up"],
            ["ip", "-n", namespace, "addr", "add", f"10.213.{index}.2/24", "dev", inside],
            ["ip", "-n", namespace, "link", "set", inside, "up"],
            ["ip", "-n", namespace, "link", "set", "lo", "up"],
        ):
            subprocess.run(command, check=True, capture_output=True)

    def address(self, index):
        return f"{self.addresses[index]}:{self.ports[index]}"

    def start(self, index, generation=0):
        self.servers[index] = ServeProcess(self.directory / f"host-{index}-{generation}.log", "--host",
                                           self.addresses[index], "--port", str(self.ports[index]), "--workers", "1",
                                           "--threads", "2", namespace=self.namespaces[index] if self.namespaces else None)
        return self.servers[index]

    def close(self):
        for server in self.servers:
            if server and server.process.poll() is None:
                server.stop()
        for namespace in self.namespaces:  # deleting the namespace deletes its veth pair too
            subprocess.run(["ip", "netns", "delete", namespace], capture_output=True)


@pytest.fixture
def hosts(tmp_path):
    hosts = Hosts(tmp_path, 3)
    try:
        for index in range(hosts.count):
            hosts.start(index)
        yield hosts
    finally:
        hosts.close()


def predictions_answered(server):
    return server.log_text().count("POST /predict 200")


def test_scale_out_a_host_taken_away_under_load_fails_nothing_and_comes_back(start_front, hosts):
    host, port = start_front([hosts.address(index) for index in range(hosts.count)], max_fails=1,
                             fail_timeout="2s", **UNLIMITED)
    with Load(host, port, drawn_digit_png(), clients=4, seconds=90) as load:
        assert wait_until(lambda: all(predictions_answered(server) >= 5 for server in hosts.servers), 30)
        hosts.servers[0].kill()  # the host is gone mid-request, as if it lost power
        gone_at = load.count()
        assert wait_until(lambda: load.count() >= gone_at + 200, 30)
        assert load.failures == [], load.failures[:5]

        returned = hosts.start(0, generation=1)
        assert wait_until(lambda: predictions_answered(returned) >= 20, 30), "the host that came back gets no traffic"
    assert load.failures == [], load.failures[:5]
    assert set(load.statuses) == {200}


def test_python_m_serve_front_serves_through_nginx_and_stops_everything(tmp_path):
    """What `make front` runs: nginx on HOST:PORT, the workers behind it, both gone after SIGTERM."""
    port = free_port()
    log_path = tmp_path / "front.log"
    with open(log_path, "w") as log:
        front = subprocess.Popen([sys.executable, "-m", "serve.front", "--port", str(port), "--workers", "2",
                                  "--run-dir", str(tmp_path / "run")], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                 env={**os.environ, "HOST": "127.0.0.1"})
    try:
        assert wait_until(lambda: "serve.front: nginx on http://127.0.0.1" in log_path.read_text(), 120), \
            log_path.read_text()[-2000:]
        children = child_pids(front.pid)
        answer = request(f"http://127.0.0.1:{port}", "GET", "/healthz")
        assert answer.status == 200 and answer.headers["Server"] == "nginx"  # nginx answered, no version
        status, _, _ = post_predict("127.0.0.1", port, drawn_digit_png())
        assert status == 200
    finally:
        front.send_signal(signal.SIGTERM)
        returncode = front.wait(30)
    assert returncode == 0
    assert wait_until(lambda: not any(os.path.exists(f"/proc/{pid}") for pid in children), 15)
