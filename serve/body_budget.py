"""A per-process budget for request bodies: what waitress holds at once, in memory or spooled to /tmp.

Each request that has a body reserves its Content-Length (a chunked one, waitress's body limit) when its
headers are in, and gives it back when its answer is done or its connection drops. A body that does not
fit waits: its connection is not read (the client's send blocks) until enough is given back, within the
server's whole-request deadline. So however many clients send large bodies at once, the spool in /tmp
(a memory-backed emptyDir in the pod) and the bodies in memory stay within SERVE_BODY_BUDGET, and no
client gets an error for it, only a wait.
"""

import threading

from waitress.parser import HTTPRequestParser

DEFAULT_BODY_BUDGET = 32 * 1024 * 1024  # bytes (SERVE_BODY_BUDGET): three bodies at waitress's 10 MiB limit


class BodyBudget:
    """Bytes of request bodies this process may hold at once."""

    def __init__(self, limit, largest_body):
        if limit < largest_body:
            raise ValueError(f"BODY_BUDGET ({limit} bytes) must hold the largest body accepted ({largest_body})")
        self.limit, self.used, self.lock = limit, 0, threading.Lock()

    def reserve(self, parser, size):
        """Reserve `size` bytes for `parser`'s body if they fit; whether they did."""
        with self.lock:
            if self.used + size > self.limit:
                return False
            self.used += size
            parser.reserved = size
            return True

    def release(self, parser):
        """Give back `parser`'s reservation, once: the answer's end and a dropped connection may both ask."""
        with self.lock:
            self.used -= parser.reserved
            parser.reserved = 0
            assert self.used >= 0, "released more body budget than was reserved"


class BudgetedParser(HTTPRequestParser):
    """waitress's request parser, reserving the body's size from `budget` once the headers are in."""

    reserved = 0  # bytes held
    waiting = 0  # bytes wanted but not yet free: the channel does not read until they are

    def __init__(self, adj, budget):
        super().__init__(adj)
        self.budget = budget

    def received(self, data):
        headers_were_in = self.headers_finished
        consumed = super().received(data)
        if (not headers_were_in and self.headers_finished and self.error is None and self.body_rcv is not None
                and self.budget is not None):
            size = self.adj.max_request_body_size if self.chunked else self.content_length
            if not self.budget.reserve(self, size):
                self.waiting = size
        return consumed

    def may_read(self):
        """Whether the body may be read now: nothing is waited for, or it has just been reserved."""
        if self.waiting and self.budget.reserve(self, self.waiting):
            self.waiting = 0
        return not self.waiting

    def release_budget(self):
        if self.reserved:
            self.budget.release(self)

    def close(self):
        self.release_budget()
        super().close()
