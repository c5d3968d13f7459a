"""The production WSGI server: waitress with our limits and timeouts (used by `python -m serve` and tests)."""

import json
import logging
import resource
import socket
import time

from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask, WSGITask
from waitress.utilities import RequestEntityTooLarge

from serve.body_budget import BodyBudget, BudgetedParser

DEFAULT_HOST = "127.0.0.1"  # the kiosk's browser is local; exposing the API is a deliberate choice
DEFAULT_PORT = 5000
DEFAULT_THREADS = 4
# Idle keep-alive or stalled connections are closed after this many seconds of silence.
CHANNEL_TIMEOUT = 15
CLEANUP_INTERVAL = 5
# A request (headers and body) must have arrived whole this many seconds after its first byte, so a
# client trickling a byte every few seconds, which channel_timeout never sees as silent, is cut off.
REQUEST_DEADLINE = 30
# Per process. Connections are cheap while they wait in the event loop (poll(), not select(), so more
# than 1024 descriptors work); past this many, new ones wait in the listen backlog.
CONNECTION_LIMIT = 1000
BACKLOG = 1024
MAX_REQUEST_HEADER_BYTES = 16 * 1024
OPEN_FILES_WANTED = CONNECTION_LIMIT + 256


class WholeAnswerMixin:
    """Send the status line and headers with the first body bytes, not in a send() of their own.

    A worker killed mid-answer then leaves either nothing on the wire, which nginx retries on another
    worker, or the whole of a small answer: never headers without their body, which nothing can retry.
    """

    def build_response_header(self):
        # A draining server (serve/drain.py) tells each client to take its next request elsewhere.
        if self.channel.server.draining.is_set():
            self.set_close_on_finish()
        return super().build_response_header()

    def write(self, data):
        if self.wrote_header:
            return super().write(data)
        self.channel.holding = True
        try:
            super().write(data)
        finally:
            self.channel.holding = False
        self.channel.release_held()


class WholeAnswerTask(WholeAnswerMixin, WSGITask):
    pass


class JsonErrorTask(WholeAnswerMixin, ErrorTask):
    """waitress's own answers (body or headers over the limit, broken framing) as our JSON errors."""

    def execute(self):
        # Imported here: serve.app brings onnxruntime, which the worker supervisor must not load.
        from serve.app import SECURITY_HEADERS

        error = self.request.error
        if isinstance(error, RequestEntityTooLarge):
            message = f"request body too large: the limit is {self.channel.server.body_limit} bytes"
        else:
            message = f"{error.reason}: {error.body}"
        body = json.dumps({"error": message}).encode()
        self.status = f"{error.code} {error.reason}"
        self.response_headers.extend([("Content-Type", "application/json"), *SECURITY_HEADERS.items()])
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class DeadlineChannel(HTTPChannel):
    """A connection that remembers when its current request began to arrive, and writes whole answers."""

    task_class = WholeAnswerTask
    error_task_class = JsonErrorTask
    request_started = 0.0
    holding = False

    def __init__(self, *args, **kwargs):
        self.held = []
        super().__init__(*args, **kwargs)

    def write_soon(self, data):
        if self.holding and isinstance(data, bytes):
            self.held.append(data)
            return len(data)
        self.release_held()
        return super().write_soon(data)

    def release_held(self):
        if self.held:
            data, self.held = b"".join(self.held), []
            super().write_soon(data)

    def received(self, data):
        if self.request is None and data:
            self.request_started = time.time()
        return super().received(data)

    def parser_class(self, adj):
        return BudgetedParser(adj, self.server.body_budget)

    def readable(self):
        # A body that does not fit the budget waits in the client's socket until it does. The wait is ours, not
        # the client's silence, so channel_timeout does not count it; REQUEST_DEADLINE still bounds it.
        if self.request is not None and not self.request.may_read():
            self.last_activity = time.time()
            return False
        return super().readable()

    def handle_close(self):
        # The requests of a dropped connection give their body budget back (their buffers go with them).
        for request in [self.request, *self.requests]:
            if request is not None:
                request.release_budget()
        super().handle_close()


class GuardedServer(TcpWSGIServer):
    """waitress's TCP server that also closes connections whose request is not in by REQUEST_DEADLINE."""

    channel_class = DeadlineChannel
    request_deadline = REQUEST_DEADLINE
    body_limit = None  # the app's MAX_CONTENT_LENGTH, for JsonErrorTask's message
    draining = None  # the app's "draining" event, set by serve/drain.py when the server is stopping
    body_budget = None  # serve/body_budget.py: bytes of request bodies held at once

    def maintenance(self, now):
        super().maintenance(now)
        cutoff = now - self.request_deadline
        for channel in self.active_channels.values():
            if channel.request is not None and not channel.requests and channel.request_started < cutoff:
                channel.will_close = True


def raise_open_files_limit(wanted=OPEN_FILES_WANTED):
    """Lift the soft descriptor limit (often 1024) towards `wanted`, within the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def create_server(app, host=DEFAULT_HOST, port=DEFAULT_PORT, threads=DEFAULT_THREADS,
                  channel_timeout=CHANNEL_TIMEOUT, cleanup_interval=CLEANUP_INTERVAL,
                  request_deadline=REQUEST_DEADLINE, listen_socket=None):
    """A waitress server for `app`, bound to host:port or to an inherited `listen_socket`; .run() serves, .close() stops."""
    # waitress warns whenever a request waits for a free thread, which is normal under load.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    raise_open_files_limit()
    adjustments = Adjustments(
        host=host,
        port=port,
        threads=threads,
        ident="",  # no Server: header, so no version banner
        channel_timeout=channel_timeout,
        cleanup_interval=cleanup_interval,
        connection_limit=CONNECTION_LIMIT,
        backlog=BACKLOG,
        asyncore_use_poll=True,
        max_request_header_size=MAX_REQUEST_HEADER_BYTES,
        # Bodies a little over the app's limit still reach Flask; far bigger ones are refused by waitress
        # as soon as their Content-Length is read (JsonErrorTask), before they are buffered to disk.
        max_request_body_size=2 * app.config["MAX_CONTENT_LENGTH"],
        expose_tracebacks=False,
        # Forwarding headers reach the app only when it trusts proxies (its ProxyFix reads them); else dropped.
        clear_untrusted_proxy_headers=not app.config.get("TRUSTED_PROXIES"),
    )
    if listen_socket is None:
        server = GuardedServer(app, adj=adjustments)
    else:
        sockinfo = (listen_socket.family, listen_socket.type, listen_socket.proto, listen_socket.getsockname())
        server = GuardedServer(app, _sock=listen_socket, adj=adjustments, bind_socket=False, sockinfo=sockinfo)
    server.request_deadline = request_deadline
    server.body_limit = app.config["MAX_CONTENT_LENGTH"]
    server.draining = app.extensions["draining"]
    server.body_budget = BodyBudget(int(app.config["BODY_BUDGET"]), adjustments.max_request_body_size)
    return server


def bind_listener(host, port, backlog=BACKLOG):
    """A listening TCP socket that worker processes inherit, so they all answer on one port."""
    family, kind, protocol, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                            flags=socket.AI_PASSIVE)[0]
    listener = socket.socket(family, kind, protocol)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    listener.bind(address)
    listener.listen(backlog)
    listener.set_inheritable(True)
    return listener
