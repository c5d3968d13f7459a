"""Slow clients: how many connections trickling a byte a second it takes to stop the bare server, and nginx in front.

    python -m bench.slow_clients [--quick]

From 127.0.0.2, S connections each send one byte of a request line per second (never finishing it);
meanwhile a normal client on 127.0.0.1 asks /healthz and /predict once a second, each with a 5 s timeout.
Setups: `python -m serve --workers 1`, `--workers N`, gunicorn's threaded workers (the alternative weighed in
docs/SERVICE.md), and nginx (`serve/front.py`, deploy/nginx/) in front of N workers.
Not part of `python -m bench`: it needs nginx (`make nginx`); docs/SERVICE.md quotes it.
"""

import http.client
import socket
import tempfile
import time
from pathlib import Path

from bench.http import pad_pngs
from bench.measure import median
from bench.report import Section, format_seconds, run_section, table
from bench.servers import our_server
from bench.workers import gunicorn_server
from serve.front import FrontConfig, Nginx, free_port, wait_for_port
from serve.server import raise_open_files_limit
from serve.workers import default_worker_count

SLOW_ADDRESS, NORMAL_ADDRESS = "127.0.0.2", "127.0.0.1"
PROBE_TIMEOUT = 5.0
ROUNDS = 3


def open_slow(port, count):
    """`count` connections from SLOW_ADDRESS, connecting without waiting (past a full backlog too)."""
    connections = []
    for _ in range(count):
        connection = socket.socket()
        connection.setblocking(False)
        connection.bind((SLOW_ADDRESS, 0))
        connection.connect_ex(("127.0.0.1", port))
        connections.append(connection)
    return connections


def trickle(connections):
    for connection in connections:
        try:
            connection.send(b"G")
        except OSError:
            pass  # not connected yet (in the backlog), or closed by the server


def probe(port, method, path, body=None):
    """Seconds until a normal client's answer, or None when it did not come within PROBE_TIMEOUT."""
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=PROBE_TIMEOUT, source_address=(NORMAL_ADDRESS, 0))
    try:
        connection.request(method, path, body=body, headers={"Content-Type": "image/png"} if body else {})
        response = connection.getresponse()
        response.read()
        return time.perf_counter() - started if response.status == 200 else None
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


def measure_setup(port, counts, body):
    rows = []
    for count in counts:
        slow = open_slow(port, count)
        health, predict = [], []
        try:
            for _ in range(ROUNDS):
                trickle(slow)
                health.append(probe(port, "GET", "/healthz"))
                predict.append(probe(port, "POST", "/predict", body))
                time.sleep(1.0)
        finally:
            for connection in slow:
                connection.close()
        answered = [seconds for seconds in health if seconds is not None]
        answered_predict = [seconds for seconds in predict if seconds is not None]
        rows.append((count, len(answered), format_seconds(median(answered)) if answered else f"> {PROBE_TIMEOUT:g} s",
                     format_seconds(median(answered_predict)) if answered_predict else f"> {PROBE_TIMEOUT:g} s"))
        time.sleep(2.0)  # let the server see the closed connections before the next count
    return rows


def measure(args):
    counts = (100, 1000) if args.quick else (10, 100, 300, 1000, 3000)
    raise_open_files_limit(max(counts) + 1024)
    workers = default_worker_count()
    bodies, _ = pad_pngs(1)
    rows, commands = [], []
    bare = [(f"bare, {count} worker(s)", our_server(args.work_dir, args.artifacts, workers=count)) for count in (1, workers)]
    for setup, server in [*bare, (f"gunicorn gthread, {workers} processes", gunicorn_server(args.work_dir, workers))]:
        with server.start(bodies[0]):
            commands.append(f"`{server.command}`")
            for row in measure_setup(server.port, counts, bodies[0]):
                rows.append([setup, *row])
    server = our_server(args.work_dir, args.artifacts, workers=workers)
    with server.start(bodies[0]), tempfile.TemporaryDirectory(prefix="bench-nginx-") as run_dir:
        port = free_port()
        nginx = Nginx(FrontConfig(listen=f"127.0.0.1:{port}", upstreams=[f"127.0.0.1:{server.port}"] * max(2, workers),
                                  max_fails=0), Path(run_dir))
        with open(Path(args.work_dir) / "logs" / "nginx.log", "w") as log:
            nginx.start(log)
        try:
            wait_for_port("127.0.0.1", port, nginx.process)
            commands.append(f"nginx (serve/front.py) in front of `{server.command}`")
            for row in measure_setup(port, counts, bodies[0]):
                rows.append([f"nginx in front of {workers} workers", *row])
        finally:
            nginx.stop()
    markdown = "\n\n".join([
        f"{ROUNDS} probes per row, one a second while the slow connections trickle. Setups: "
        + "; ".join(commands) + ".",
        table(["Setup", "Slow connections", f"/healthz answered (of {ROUNDS})", "/healthz, median",
               "/predict, median"], rows),
    ])
    return Section("Slow clients", "python -m bench.slow_clients", markdown, [])


if __name__ == "__main__":
    run_section("bench.slow_clients", __doc__.splitlines()[0], measure)
