"""Per-client limits on POST /feedback: a token bucket for the rate and a cap on entries per day."""

import threading
import time

SECONDS_PER_DAY = 86400
MAX_CLIENTS = 4096  # clients remembered at once; the least recently seen is forgotten first


class RateLimited(Exception):
    """Over a limit; `retry_after` is in seconds."""

    def __init__(self, message, retry_after):
        super().__init__(message)
        self.retry_after = retry_after


class ClientLimits:
    """`per_minute` posts a minute (bursts up to that many) and `per_day` a day, for each client address."""

    def __init__(self, per_minute, per_day):
        self.per_minute = per_minute
        self.per_day = per_day
        self.clients = {}  # address -> [tokens, last refill, day number, posts that day]; oldest first
        self.lock = threading.Lock()

    def check(self, client, now=None):
        """Count one post from `client`, or raise RateLimited."""
        now = time.monotonic() if now is None else now
        day = int(time.time() // SECONDS_PER_DAY)
        with self.lock:
            state = self.clients.pop(client, None) or [float(self.per_minute), now, day, 0]
            if len(self.clients) >= MAX_CLIENTS:
                del self.clients[next(iter(self.clients))]
            self.clients[client] = state
            state[0] = min(self.per_minute, state[0] + (now - state[1]) * self.per_minute / 60)
            state[1] = now
            if state[2] != day:
                state[2:] = [day, 0]
            if state[3] >= self.per_day:
                raise RateLimited(f"too much feedback from this client today: the limit is {self.per_day}",
                                  SECONDS_PER_DAY - int(time.time() % SECONDS_PER_DAY))
            if state[0] < 1:
                raise RateLimited(f"too much feedback at once: the limit is {self.per_minute} a minute",
                                  max(1, round((1 - state[0]) * 60 / self.per_minute)))
            state[0] -= 1
            state[3] += 1
