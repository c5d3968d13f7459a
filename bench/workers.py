"""Workers: one port, N processes, three ways (our supervisor's shared socket, SO_REUSEPORT, gunicorn), and nginx in front.

    python -m bench.workers [--quick]

Each runs N = one per core processes of the same app with the same threads per process; the load
(bench/load.py: closed loop, keep-alive, PNGs of MNIST digits) alternates between them round after round.
The fourth row is `make front`'s shape: nginx (deploy/nginx/) in front of our N workers.
Not part of `python -m bench` (it needs nginx: `make nginx`); docs/SERVICE.md and deploy/README.md quote it.
"""

import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.http import DIGITS, pad_pngs, pool
from bench.load import build_request, run_load
from bench.measure import median
from bench.report import Section, format_seconds, run_section, table
from bench.servers import SERVE_ENVIRONMENT, ServerProcess, our_server, process_cpu_seconds, process_memory
from serve.front import FrontConfig, Nginx, free_port, wait_for_port
from serve.server import DEFAULT_THREADS
from serve.workers import default_worker_count, die_with_parent

CONCURRENCY = (1, 4, 16)


STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def unblock_and_die_with_parent():
    """In each worker before exec: the launcher blocks the stop signals for sigwait(); its children must not."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    die_with_parent()


def run_reuseport(count):
    """N `python -m serve` workers, each accepting from its own SO_REUSEPORT socket on one port."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    sockets = []
    for _ in range(count):
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        listener.bind(("127.0.0.1", sockets[0].getsockname()[1] if sockets else 0))
        listener.listen(1024)
        sockets.append(listener)
    workers = [subprocess.Popen([sys.executable, "-m", "serve", "--quiet", "--workers", "1",
                                 "--listen-fd", str(listener.fileno())], pass_fds=[listener.fileno()],
                                preexec_fn=unblock_and_die_with_parent) for listener in sockets]
    port = sockets[0].getsockname()[1]
    for listener in sockets:  # the kernel would hash connections to our copies too, and nobody accepts them
        listener.close()
    print(f"reuseport: {count} workers on http://127.0.0.1:{port}", file=sys.stderr, flush=True)
    try:
        signal.sigwait(STOP_SIGNALS)
    finally:
        for worker in workers:
            worker.terminate()
            worker.wait()


class Fronted:
    """nginx in front of a started ServerProcess, measured like one: its CPU and memory include nginx's."""

    def __init__(self, server, work_dir, count):
        self.server, self.run_dir = server, tempfile.mkdtemp(prefix="bench-nginx-")
        self.port = free_port()
        self.name = f"nginx in front of ours, {count} workers"
        self.command = f"nginx (serve/front.py, deploy/nginx/) in front of `{server.command}`"
        config = FrontConfig(listen=f"127.0.0.1:{self.port}", upstreams=[f"127.0.0.1:{server.port}"] * max(2, count),
                             max_fails=0, rate=10 ** 6, burst=10 ** 6)  # one load generator is one address
        self.nginx = Nginx(config, Path(self.run_dir))
        with open(Path(work_dir) / "logs" / "nginx.log", "w") as log:
            self.nginx.start(log)
        wait_for_port("127.0.0.1", self.port, self.nginx.process)

    def nginx_pids(self):
        from bench.servers import child_pids

        return [self.nginx.process.pid, *child_pids(self.nginx.process.pid)]

    def cpu_seconds(self):
        return self.server.cpu_seconds() + sum(process_cpu_seconds(pid) for pid in self.nginx_pids())

    def memory(self):
        own = [process_memory(pid) for pid in self.nginx_pids()]
        return tuple(a + b for a, b in zip(self.server.memory(), (sum(m[0] for m in own), sum(m[1] for m in own))))

    def stop(self):
        self.nginx.stop()


def gunicorn_server(work_dir, count):
    """gunicorn's threaded workers on the same app, threads and port 0, for comparison."""
    arguments = ["-m", "gunicorn", "--workers", str(count), "--worker-class", "gthread", "--threads",
                 str(DEFAULT_THREADS), "--bind", "127.0.0.1:0", "serve.app:create_app()"]
    return ServerProcess(f"gunicorn gthread, {count} processes", arguments, Path(work_dir) / "logs" / "gunicorn.log",
                         SERVE_ENVIRONMENT)


def contenders(work_dir, artifacts_dir, count):
    logs = work_dir / "logs"
    reuseport = ["-c", f"from bench.workers import run_reuseport; run_reuseport({count})"]
    return [
        our_server(work_dir, artifacts_dir, workers=count),
        ServerProcess(f"SO_REUSEPORT, {count} waitress processes", reuseport, logs / "reuseport.log", SERVE_ENVIRONMENT),
        gunicorn_server(work_dir, count),
    ]


def measure(args):
    rounds, duration, warmup = (1, 0.5, 0.3) if args.quick else (3, 4.0, 1.0)
    count = default_worker_count()
    bodies, labels = pad_pngs(DIGITS)
    servers = contenders(args.work_dir, args.artifacts, count)
    started = []
    try:
        for server in servers:
            started.append(server.start(bodies[0]))
        servers.append(Fronted(servers[0], args.work_dir, count))
        started.append(servers[-1])
        results = {(server, concurrency): [] for server in servers for concurrency in CONCURRENCY}
        requests = {server: [build_request(server.port, body, "image/png") for body in bodies] for server in servers}
        for server in servers:
            run_load(server.port, requests[server], labels, concurrency=4, duration=warmup)
        for concurrency in CONCURRENCY:
            for round_index in range(rounds):
                for server in servers if round_index % 2 == 0 else servers[::-1]:
                    cpu_before = server.cpu_seconds()
                    run = run_load(server.port, requests[server], labels, concurrency=concurrency, duration=duration)
                    run.server_cpu = server.cpu_seconds() - cpu_before
                    results[server, concurrency].append(run)
        memory = {server: server.memory()[0] for server in servers}
    finally:
        for server in reversed(started):
            server.stop()
    rows = []
    for concurrency in CONCURRENCY:
        for server in servers:
            runs = results[server, concurrency]
            pooled = pool(runs)
            rows.append([server.name, concurrency, f"{median([run.throughput for run in runs]):,.0f}", pooled.errors,
                         format_seconds(pooled.latency_percentile(50)), format_seconds(pooled.latency_percentile(99)),
                         f"{100 * pooled.server_cpu / pooled.elapsed:.0f}%", f"{memory[server] / 1e6:.0f} MB"])
    markdown = "\n\n".join([
        f"{count} processes each, {DEFAULT_THREADS} threads per process; {rounds} round(s) of {duration:g} s per "
        "server and concurrency, alternating; req/s is the median over rounds. Commands: "
        + ", ".join(f"`{server.command}`" for server in servers) + ".",
        table(["Server", "Clients", "Req/s", "Errors", "p50", "p99", "Server CPU", "Resident, all processes"], rows),
        "Server CPU is percent of one core (100% per core), nginx's included in its row. The clients keep their "
        "connections open, so how evenly the first connections are spread over the processes decides how many "
        "cores work. The load generator runs on the same cores.",
    ])
    return Section("Workers: one port, N processes", "python -m bench.workers", markdown, [])


if __name__ == "__main__":
    run_section("bench.workers", __doc__.splitlines()[0], measure)
