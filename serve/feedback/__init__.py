"""Visitors' feedback: POST /feedback stores a confirmation or a correction, operators read /stats and the export.

The store is SQLite (SERVE_FEEDBACK_DB) unless SERVE_FEEDBACK_URL names a PostgreSQL database.
SERVE_FEEDBACK=off turns all of it off; without SERVE_ADMIN_TOKEN the operator routes are off.
"""

import logging
import threading
import time
from pathlib import Path

from feedback.store import StoreError, StoreFullError
from serve.feedback.limits import ClientLimits

__all__ = ["CONFIG_DEFAULTS", "ConfigError", "init_app", "open_store", "StoreError", "StoreFullError"]

CONFIG_DEFAULTS = {
    "FEEDBACK": "on",  # "off" (or false, 0, no) turns feedback off
    "FEEDBACK_DB": str(Path(__file__).resolve().parents[2] / "data" / "feedback.sqlite"),
    "FEEDBACK_URL": None,  # postgresql://... for a fleet's central store
    "ADMIN_TOKEN": None,  # Bearer token of /stats and /feedback/export
    "FEEDBACK_MAX_BODY": 512 * 1024,  # bytes of one POST /feedback; a 280x280 PNG of a drawing is ~5 KB
    "FEEDBACK_RATE_PER_MINUTE": 60,  # per client, in bursts of up to as many
    "FEEDBACK_MAX_PER_CLIENT_DAY": 5000,
    "FEEDBACK_MAX_BYTES_PER_CLIENT_DAY": 25 * 1024 ** 2,  # stored drawing bytes; a pad drawing is ~5 KB
    "ADMIN_SIGN_IN_PER_MINUTE": 5,  # operator sign-in attempts per client, in bursts of up to as many
    "ADMIN_SIGN_IN_PER_DAY": 100,
    "FEEDBACK_MAX_ENTRIES": 100_000,
    "FEEDBACK_MAX_STORE_BYTES": 1024 ** 3,
    # Drawings may hold phone numbers or PINs (number mode): every entry, accepted or not, is deleted after this
    # many days (0 keeps entries until the operator deletes them).
    "FEEDBACK_RETENTION_DAYS": 90,
    # A store that cannot be opened is tried again this long after (on the next request that needs it),
    # and clients are told to come back then (Retry-After).
    "FEEDBACK_STORE_RETRY_SECONDS": 30,
}
OFF_VALUES = {"off", "false", "0", "no"}
# Each limit: its parser and the smallest value that makes sense.
LIMITS = {
    "FEEDBACK_MAX_BODY": (int, 1024),
    "FEEDBACK_RATE_PER_MINUTE": (float, 0.001),
    "FEEDBACK_MAX_PER_CLIENT_DAY": (int, 1),
    "FEEDBACK_MAX_BYTES_PER_CLIENT_DAY": (int, 1024),
    "ADMIN_SIGN_IN_PER_MINUTE": (float, 0.001),
    "ADMIN_SIGN_IN_PER_DAY": (int, 1),
    "FEEDBACK_MAX_ENTRIES": (int, 1),
    "FEEDBACK_MAX_STORE_BYTES": (int, 1024),
    "FEEDBACK_RETENTION_DAYS": (float, 0),
    "FEEDBACK_STORE_RETRY_SECONDS": (float, 0.1),
}
log = logging.getLogger("serve.feedback")


class ConfigError(ValueError):
    """A feedback setting the server cannot use; the message names it, in one line."""


class StoreUnavailable(StoreError):
    """The store could not be opened at start-up or at the last retry; `retry_after` says when it is tried again."""

    def __init__(self, message, retry_after):
        super().__init__(message)
        self.retry_after = retry_after


class Feedback:
    """The store, the limits and the operator's token of a server that takes feedback."""

    def __init__(self, store, limits, bytes_per_client_day, sign_in_limits, admin_token, retry_seconds):
        self.store = store
        self.retry_seconds = retry_seconds
        self.limits = limits
        self.bytes_per_client_day = bytes_per_client_day
        self.sign_in_limits = sign_in_limits
        self.admin_token = admin_token
        self.problem = None  # why the store could not be opened last time, or None once it is open
        self.retry_at = 0.0
        self.lock = threading.Lock()

    def open(self):
        """Open the store (at start-up, and again at most every `retry_seconds` while it fails).

        Raises StoreUnavailable while it cannot be opened, created or written; the reason is one log line.
        """
        if self.problem is None and self.store.migrated:
            return
        with self.lock:
            now = time.monotonic()
            if self.problem is not None and now < self.retry_at:
                raise StoreUnavailable(self.problem, self.retry_after)
            try:
                self.store.open()
            except StoreError as error:
                if str(error) != self.problem:  # said once, and again only if the reason changes
                    log.error("feedback unavailable, retrying every %g s: %s", self.retry_seconds, error)
                self.problem, self.retry_at = str(error), now + self.retry_seconds
                raise StoreUnavailable(self.problem, self.retry_after) from None
            if self.problem is not None:
                log.warning("feedback available again: %s", self.store.describe())
            self.problem = None

    def byte_quota(self, client):
        """The store's byte_quota for a new entry from `client`."""
        return f"feedback-bytes:{client}", self.bytes_per_client_day

    @property
    def retry_after(self):
        """Whole seconds a client should wait before trying a store that failed (Retry-After)."""
        return max(1, round(self.retry_at - time.monotonic()))

    @property
    def available(self):
        """Whether the store is open now (trying it again if a retry is due)."""
        try:
            self.open()
        except StoreError:
            return False
        return True


def read_limits(config):
    """The numeric feedback settings, checked; a bad one is a ConfigError naming the variable."""
    values = {}
    for name, (parse, smallest) in LIMITS.items():
        given = config.get(name, CONFIG_DEFAULTS[name])
        try:
            value = parse(given)
            if isinstance(given, bool) or not smallest <= value < float("inf") or (parse is int and value != float(given)):
                raise ValueError
        except (TypeError, ValueError, OverflowError):
            kind = "a whole number" if parse is int else "a number"
            raise ConfigError(f"SERVE_{name} must be {kind} of at least {smallest}, not {given!r}") from None
        values[name] = value
    return values


def open_store(config):
    """The store the config asks for; nothing touches the database until it is opened or used."""
    limits = read_limits(config)
    bounds = {
        "max_entries": limits["FEEDBACK_MAX_ENTRIES"],
        "max_bytes": limits["FEEDBACK_MAX_STORE_BYTES"],
        "retention_days": limits["FEEDBACK_RETENTION_DAYS"],
    }
    url = config.get("FEEDBACK_URL")
    if url:
        from feedback.postgres_store import PostgresStore, check_url

        try:
            return PostgresStore(check_url(url), **bounds)
        except ValueError as error:
            raise ConfigError(f"SERVE_FEEDBACK_URL: {error}") from None
    from feedback.sqlite_store import SQLiteStore

    return SQLiteStore(config["FEEDBACK_DB"], **bounds)


def init_app(app):
    """Register the routes; app.extensions["feedback"] is a Feedback, or None when turned off.

    The store is opened here, so a store that cannot be used is said at start-up (one log line); the
    server starts all the same, answers feedback with 503 and tries the store again later. A setting
    that cannot be used (a URL that is not PostgreSQL's, a limit that is not a number) is a ConfigError.
    """
    from serve.feedback.operator import read_admin_token
    from serve.feedback.routes import blueprint

    config = app.config
    enabled = str(config["FEEDBACK"]).lower() not in OFF_VALUES
    feedback = None
    if enabled:
        limits = read_limits(config)
        store = open_store(config)
        feedback = Feedback(
            store=store,
            limits=ClientLimits(store, "feedback", limits["FEEDBACK_RATE_PER_MINUTE"],
                                limits["FEEDBACK_MAX_PER_CLIENT_DAY"]),
            bytes_per_client_day=limits["FEEDBACK_MAX_BYTES_PER_CLIENT_DAY"],
            sign_in_limits=ClientLimits(store, "sign-in", limits["ADMIN_SIGN_IN_PER_MINUTE"],
                                        limits["ADMIN_SIGN_IN_PER_DAY"], what="signing in"),
            admin_token=read_admin_token(config),
            retry_seconds=limits["FEEDBACK_STORE_RETRY_SECONDS"],
        )
        config["FEEDBACK_MAX_BODY"] = limits["FEEDBACK_MAX_BODY"]
    app.extensions["feedback"] = feedback
    app.register_blueprint(blueprint)
    # A server that drops root opens its store after the drop (open_at_start), or the SQLite files it
    # creates would be root's and the user it becomes could not write them.
    if not config.get("FEEDBACK_OPEN_LATER"):
        open_at_start(app)


def open_at_start(app):
    """Open the feedback store now, as the server starts: a store that cannot be used is one log line."""
    feedback = app.extensions.get("feedback")
    if feedback is None:
        return
    try:
        feedback.open()
    except StoreError:
        pass  # logged; each feedback request answers 503 until a retry opens it
