"""Graceful stop of one server process: on SIGTERM it says it is not ready, stops accepting, lets what it holds finish, then exits.

The order is for whoever routes to us. /readyz turns 503 at once, so a balancer that probes it sends no new
work; every answer from then on carries `Connection: close`, so keep-alive clients open their next
connection elsewhere; after DRAIN_DELAY the listening socket is let go (under the supervisor the other
workers keep accepting from it). The process exits when its last connection has closed, or after
DRAIN_TIMEOUT more seconds whatever is left. Kept free of Flask and onnxruntime: the supervisor reads the
same settings to know how long to wait for its workers.
"""

import os
import signal
import threading
import time

from waitress import wasyncore

DEFAULT_DRAIN_DELAY = 0.0  # seconds between readiness going false and the socket closing (SERVE_DRAIN_DELAY)
DEFAULT_DRAIN_TIMEOUT = 10.0  # seconds, after that, for requests in flight to finish (SERVE_DRAIN_TIMEOUT)
# An idle keep-alive connection is closed once it has been idle this long while draining: a client that
# is busy sends its next request sooner (and gets `Connection: close` with the answer), so closing one
# that is idle rarely races a request on its way.
IDLE_GRACE = 1.0
LOOP_SECONDS = 0.1


def drain_settings(environ=os.environ):
    """(delay, timeout) in seconds, from SERVE_DRAIN_DELAY and SERVE_DRAIN_TIMEOUT or their defaults."""
    return (float(environ.get("SERVE_DRAIN_DELAY") or DEFAULT_DRAIN_DELAY),
            float(environ.get("SERVE_DRAIN_TIMEOUT") or DEFAULT_DRAIN_TIMEOUT))


def serve_until_stopped(server, delay, timeout, signals=(signal.SIGTERM, signal.SIGINT)):
    """Run waitress `server` until one of `signals`, then drain it; call from the main thread."""
    stop = threading.Event()

    def request_stop(signum, frame):
        stop.set()
        server.pull_trigger()  # wake the poll() at once

    for signum in signals:
        signal.signal(signum, request_stop)
    while not stop.is_set():
        wasyncore.loop(timeout=LOOP_SECONDS, map=server._map, use_poll=True, count=1)
    drain(server, delay, timeout)


def drain(server, delay, timeout):
    """Stop `server` gracefully (see the module's docstring); returns when it is stopped."""
    server.draining.set()
    started = time.monotonic()
    listening, deadline = True, started + delay + timeout
    while time.monotonic() < deadline:
        if listening and time.monotonic() >= started + delay:
            server.accepting = False
            wasyncore.dispatcher.close(server)  # the listener only; the trigger still wakes the loop
            listening = False
        if not listening and not server.active_channels:
            break
        close_idle(server)
        wasyncore.loop(timeout=LOOP_SECONDS, map=server._map, use_poll=True, count=1)
    server.task_dispatcher.shutdown(cancel_pending=True, timeout=1)
    wasyncore.close_all(server._map)


def close_idle(server):
    """Mark connections that wait for a request, and have for IDLE_GRACE, to be closed."""
    cutoff = time.time() - IDLE_GRACE
    for channel in list(server.active_channels.values()):
        if (not channel.requests and channel.request is None and not channel.total_outbufs_len
                and channel.last_activity < cutoff):
            channel.will_close = True
