"""Visitors' feedback: POST /feedback stores a confirmation or a correction, operators read /stats and the export.

The store is SQLite (SERVE_FEEDBACK_DB) unless SERVE_FEEDBACK_URL names a PostgreSQL database.
"""

from serve.feedback.store import StoreError, StoreFullError

__all__ = ["open_store", "StoreError", "StoreFullError"]


def open_store(config):
    """The store the app's config asks for; nothing touches the database until the first use."""
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
