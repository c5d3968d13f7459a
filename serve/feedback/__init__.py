"""Visitors' feedback: POST /feedback stores a confirmation or a correction, operators read /stats and the export.

The store is SQLite (SERVE_FEEDBACK_DB) unless SERVE_FEEDBACK_URL names a PostgreSQL database.
SERVE_FEEDBACK=off turns all of it off; without SERVE_ADMIN_TOKEN the operator routes are off.
"""

from dataclasses import dataclass
from pathlib import Path

from serve.feedback.limits import ClientLimits
from serve.feedback.store import Store, StoreError, StoreFullError

__all__ = ["CONFIG_DEFAULTS", "init_app", "open_store", "StoreError", "StoreFullError"]

CONFIG_DEFAULTS = {
    "FEEDBACK": "on",  # "off" (or false, 0, no) turns feedback off
    "FEEDBACK_DB": str(Path(__file__).resolve().parents[2] / "data" / "feedback.sqlite"),
    "FEEDBACK_URL": None,  # postgresql://... for a fleet's central store
    "ADMIN_TOKEN": None,  # Bearer token of /stats and /feedback/export
    "FEEDBACK_MAX_BODY": 512 * 1024,  # bytes of one POST /feedback; a 280x280 PNG of a drawing is ~5 KB
    "FEEDBACK_RATE_PER_MINUTE": 60,  # per client, in bursts of up to as many
    "FEEDBACK_MAX_PER_CLIENT_DAY": 5000,
    "FEEDBACK_MAX_ENTRIES": 100_000,
    "FEEDBACK_MAX_STORE_BYTES": 1024 ** 3,
    "FEEDBACK_RETENTION_DAYS": 365,  # 0 keeps entries until the bounds prune them
}
OFF_VALUES = {"off", "false", "0", "no"}


@dataclass
class Feedback:
    store: Store
    limits: ClientLimits
    admin_token: str | None


def open_store(config):
    """The store the config asks for; nothing touches the database until the first use."""
    bounds = {
        "max_entries": int(config["FEEDBACK_MAX_ENTRIES"]),
        "max_bytes": int(config["FEEDBACK_MAX_STORE_BYTES"]),
        "retention_days": float(config["FEEDBACK_RETENTION_DAYS"]),
    }
    url = config.get("FEEDBACK_URL")
    if url:
        if not str(url).startswith(("postgresql://", "postgres://")):
            raise ValueError("SERVE_FEEDBACK_URL must be a postgresql:// URL")
        from serve.feedback.postgres_store import PostgresStore

        return PostgresStore(str(url), **bounds)
    from serve.feedback.sqlite_store import SQLiteStore

    return SQLiteStore(config["FEEDBACK_DB"], **bounds)


def init_app(app):
    """Register the routes; app.extensions["feedback"] is a Feedback, or None when turned off."""
    from serve.feedback.routes import blueprint, read_admin_token

    config = app.config
    enabled = str(config["FEEDBACK"]).lower() not in OFF_VALUES
    app.extensions["feedback"] = Feedback(
        store=open_store(config),
        limits=ClientLimits(float(config["FEEDBACK_RATE_PER_MINUTE"]), int(config["FEEDBACK_MAX_PER_CLIENT_DAY"])),
        admin_token=read_admin_token(config),
    ) if enabled else None
    app.register_blueprint(blueprint)
