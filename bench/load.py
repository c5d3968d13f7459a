"""A lean HTTP/1.1 load generator: N keep-alive connections driven by one epoll loop, closed-loop.

Each connection sends a request, waits for the whole response, checks it, and sends the next, so N is
the number of concurrent clients. One thread and pre-built request bytes keep the client's own cost
to a few microseconds per request; that cost is measured (process CPU time) and reported, because on
a 2-core machine the client and the server share the cores.
"""

import json
import selectors
import socket
import time
from dataclasses import dataclass, field

import numpy as np

REQUEST_TIMEOUT = 30  # seconds; a request pending longer than this counts as an error and its connection is dropped


def build_request(port, body, content_type, path="/predict"):
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode("ascii") + body


@dataclass
class LoadResult:
    concurrency: int
    sent_at: list = field(default_factory=list)      # seconds since the run started, per completed request
    latencies: list = field(default_factory=list)    # seconds, per completed request
    statuses: dict = field(default_factory=dict)     # HTTP status -> count
    wrong_digits: int = 0                           # 200 answers whose digit is not the label
    errors: int = 0                                 # non-200, broken connections, timeouts
    elapsed: float = 0.0
    client_cpu: float = 0.0
    server_cpu: float = 0.0                         # filled in by callers that can see the server process

    @property
    def completed(self):
        return len(self.latencies)

    @property
    def throughput(self):
        return self.completed / self.elapsed if self.elapsed else 0.0

    def latency_percentile(self, q):
        return float(np.percentile(self.latencies, q)) if self.latencies else None


class _Connection:
    def __init__(self, port):
        self.socket = socket.create_connection(("127.0.0.1", port))
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""
        self.sent = 0.0
        self.expected = None

    def send(self, request, expected):
        self.buffer = b""
        self.expected = expected
        self.sent = time.perf_counter()
        self.socket.sendall(request)  # a few KB: the loopback socket buffer takes it at once

    def response(self):
        """(status, body) once a whole response is buffered, else None."""
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = self.buffer[:end].decode("latin-1").split("\r\n")
        length = 0
        for line in head[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        if len(self.buffer) < end + 4 + length:
            return None
        return int(head[0].split()[1]), self.buffer[end + 4:end + 4 + length]

    def close(self):
        self.socket.close()


def run_load(port, requests, labels=None, concurrency=1, duration=5.0, on_tick=None, tick_seconds=1.0):
    """Keep `concurrency` connections busy for `duration` seconds, cycling through `requests`.

    `labels[i]`, if given, is the digit request i should be answered with. `on_tick(elapsed)` is
    called about every tick_seconds (for sampling server memory). Returns a LoadResult.
    """
    result = LoadResult(concurrency)
    selector = selectors.DefaultSelector()
    counter = 0
    started = time.perf_counter()
    deadline = started + duration
    next_tick = started + tick_seconds
    cpu_started = time.process_time()

    def send_next(connection):
        nonlocal counter
        index = counter % len(requests)
        counter += 1
        connection.send(requests[index], labels[index] if labels is not None else None)

    def replace(connection):
        selector.unregister(connection.socket)
        connection.close()
        result.errors += 1
        if time.perf_counter() < deadline:
            fresh = _Connection(port)
            selector.register(fresh.socket, selectors.EVENT_READ, fresh)
            send_next(fresh)

    for _ in range(concurrency):
        connection = _Connection(port)
        selector.register(connection.socket, selectors.EVENT_READ, connection)
        send_next(connection)

    while selector.get_map():
        for key, _ in selector.select(timeout=0.5):
            connection = key.data
            try:
                data = connection.socket.recv(65536)
            except OSError:
                data = b""
            if not data:
                replace(connection)
                continue
            connection.buffer += data
            answer = connection.response()
            if answer is None:
                continue
            finished = time.perf_counter()
            status, body = answer
            result.statuses[status] = result.statuses.get(status, 0) + 1
            if status != 200:
                result.errors += 1
            elif connection.expected is not None and json.loads(body)["digit"] != connection.expected:
                result.wrong_digits += 1
            result.sent_at.append(connection.sent - started)
            result.latencies.append(finished - connection.sent)
            if finished < deadline:
                send_next(connection)
            else:
                selector.unregister(connection.socket)
                connection.close()
        now = time.perf_counter()
        for key in list(selector.get_map().values()):
            if now - key.data.sent > REQUEST_TIMEOUT:
                replace(key.data)
        if on_tick and now >= next_tick:
            on_tick(now - started)
            next_tick += tick_seconds
    result.elapsed = time.perf_counter() - started
    result.client_cpu = time.process_time() - cpu_started
    selector.close()
    return result
