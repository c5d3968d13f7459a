"""Per-client limits: a token bucket for the rate and a cap a day, kept in the feedback store.

The buckets live in the store, not in a process, so N worker processes (or a fleet's servers on one
PostgreSQL) hold the documented limit together. The client is the address the request came from, after
ProxyFix has taken it from X-Forwarded-For for the configured number of trusted proxies (serve/app.py).
"""


class RateLimited(Exception):
    """Over a limit; `retry_after` is in seconds."""

    def __init__(self, message, retry_after):
        super().__init__(message)
        self.retry_after = retry_after


class ClientLimits:
    """`per_minute` requests a minute (bursts up to that many) and `per_day` a day, for each client, of one kind."""

    def __init__(self, store, kind, per_minute, per_day, what="feedback"):
        self.store = store
        self.kind = kind
        self.per_minute = per_minute
        self.per_day = per_day
        self.what = what

    def check(self, client, now=None):
        """Count one request from `client`, or raise RateLimited; StoreError when the store cannot count."""
        over = self.store.take_token(f"{self.kind}:{client}", self.per_minute, self.per_day, now)
        if over is None:
            return
        limit, retry_after = over
        if limit == "day":
            raise RateLimited(f"too much {self.what} from this client today: the limit is {self.per_day}", retry_after)
        raise RateLimited(f"too much {self.what} at once: the limit is {self.per_minute:g} a minute", retry_after)
