"""The embedded store: one SQLite file in WAL mode, every commit synced to disk (synchronous=FULL)."""

import os
import sqlite3
from contextlib import contextmanager
from pathlib import Path

from feedback.store import Store, StoreError, StoreFullError

# Several server processes may share the file: a writer waits this long for another's lock.
BUSY_TIMEOUT_SECONDS = 10
SQLITE_FULL = 13
SQLITE_CANTOPEN = 14


class SQLiteStore(Store):
    def __init__(self, path, **bounds):
        super().__init__(**bounds)
        self.path = Path(path)

    def connect(self):
        connection = getattr(self.local, "connection", None)
        if connection is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:  # a read-only root, a missing state directory: say which
                raise StoreError(f"feedback store: cannot create {self.path.parent}: {error.strerror}") from None
            connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
            try:
                connection.execute("PRAGMA journal_mode=WAL").fetchone()
                connection.execute("PRAGMA synchronous=FULL")
            except sqlite3.Error:
                connection.close()
                raise
            self.local.connection = connection
        return connection

    @contextmanager
    def session(self, exclusive=False, durable=True):
        try:
            connection = self.connect()
            # In WAL mode, NORMAL commits without an fsync (the WAL is synced at the next FULL commit or checkpoint).
            connection.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            # IMMEDIATE takes the write lock up front, so two writers never deadlock upgrading a read lock.
            connection.execute("BEGIN IMMEDIATE" if exclusive else "BEGIN")
        except sqlite3.Error as error:
            self.disconnect()
            raise translate(error, self.path) from None
        try:
            yield connection.cursor()
            connection.execute("COMMIT")
        except BaseException as error:
            try:
                connection.execute("ROLLBACK")
            except sqlite3.Error:
                self.disconnect()  # a connection that cannot roll back is not reused
            if isinstance(error, sqlite3.Error):
                raise translate(error, self.path) from None
            raise

    def describe(self):
        return f"SQLite {self.path}"


def translate(error, path):
    """A StoreError (StoreFullError for a full disk) with the file and SQLite's one-line reason."""
    code = getattr(error, "sqlite_errorcode", None)
    kind = StoreFullError if code == SQLITE_FULL else StoreError
    reason = os_reason(path) if code == SQLITE_CANTOPEN else None
    return kind(f"feedback store {path}: {error}" + (f" ({reason})" if reason else ""))


def os_reason(path):
    """Why the system will not let us open `path` for writing ("Read-only file system"), which SQLite leaves out."""
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o640))
    except OSError as error:
        return error.strerror
    return None
