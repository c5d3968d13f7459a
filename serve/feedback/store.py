"""What every feedback store does, whatever the database: migrate, add, prune, read back, count.

The SQL is written once with `?` placeholders; every value travels as a parameter, never inside the SQL.
Subclasses supply connections, the dialect's column types and how the driver reports a full disk.
"""

import threading
import time
from contextlib import contextmanager

from serve.feedback.entry import NUMBER_MODE

# Each migration is the list of statements that takes the schema from the previous version to its own.
# {blob} and {real} are the dialect's column types; they are constants, never data.
MIGRATIONS = [
    [
        """CREATE TABLE feedback_entries (
            id TEXT PRIMARY KEY,
            received_at {real} NOT NULL,
            day TEXT NOT NULL,
            model TEXT NOT NULL,
            predicted INTEGER NOT NULL,
            verdict TEXT NOT NULL,
            label TEXT NOT NULL,
            correct INTEGER NOT NULL,
            image {blob} NOT NULL,
            strokes TEXT,
            size INTEGER NOT NULL
        )""",
        "CREATE INDEX feedback_entries_pruning ON feedback_entries (correct, received_at)",
        "CREATE INDEX feedback_entries_received ON feedback_entries (received_at)",
        # Running totals, updated in the same transaction as each insert, so bounding the store costs no scan.
        """CREATE TABLE feedback_totals (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            entries INTEGER NOT NULL,
            bytes BIGINT NOT NULL
        )""",
        "INSERT INTO feedback_totals (id, entries, bytes) VALUES (1, 0, 0)",
    ],
    # Number-mode entries. Adding columns is instant in both databases, where retyping `predicted` would copy
    # the table; so a number entry keeps its answer in `number` and NUMBER_PREDICTED in `predicted`.
    [
        "ALTER TABLE feedback_entries ADD COLUMN mode TEXT NOT NULL DEFAULT 'digit'",
        "ALTER TABLE feedback_entries ADD COLUMN number TEXT",
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)
MODE_SINCE_VERSION = 2  # stores from this version on have the `mode` column
SECONDS_PER_DAY = 86400
# Retention is enforced on writes, at most this often per process.
RETENTION_SWEEP_SECONDS = 600
# When over a bound, prune down to this fraction of it, so pruning runs once per many inserts.
PRUNE_TO = 0.95
PRUNE_BATCH = 256
ENTRY_COLUMNS = "id, received_at, model, predicted, verdict, label, correct, image, strokes, mode, number"
NUMBER_PREDICTED = -1  # `predicted` of a number entry: no digit


class StoreError(Exception):
    """The store cannot take or give entries now (HTTP 503); the message says why."""


class StoreFullError(StoreError):
    """The disk or database is full (HTTP 507)."""


class Store:
    """A bounded table of feedback entries; thread-safe (one connection per thread)."""

    blob_type = "BLOB"
    real_type = "REAL"

    def __init__(self, max_entries, max_bytes, retention_days):
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.retention_days = retention_days
        self.local = threading.local()
        self.next_sweep = 0.0
        self.migrated = False
        self.migrate_lock = threading.Lock()

    def session(self, exclusive=False):
        """A context manager: one transaction on this thread's connection, yielding a cursor (subclasses)."""
        raise NotImplementedError

    def disconnect(self):
        """Close this thread's connection; the next transaction opens a new one."""
        connection = getattr(self.local, "connection", None)
        self.local.connection = None
        if connection is not None:
            connection.close()

    @contextmanager
    def transaction(self, exclusive=False):
        """A transaction on a migrated store; `exclusive` takes the write lock at once."""
        if not self.migrated:
            with self.migrate_lock:
                if not self.migrated:
                    self.migrate()
                    self.migrated = True
        with self.session(exclusive) as cursor:
            yield cursor

    def migrate(self):
        """Bring the schema to SCHEMA_VERSION; refuses a database written by a newer version."""
        with self.session(exclusive=True) as cursor:
            cursor.execute("CREATE TABLE IF NOT EXISTS feedback_schema (version INTEGER NOT NULL)")
            row = self.fetchone(cursor, "SELECT max(version) FROM feedback_schema")
            version = row[0] or 0
            if version > SCHEMA_VERSION:
                raise StoreError(f"the feedback store has schema version {version}; this server knows {SCHEMA_VERSION}")
            for number in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[number - 1]:
                    cursor.execute(statement.format(blob=self.blob_type, real=self.real_type))
                self.run(cursor, "INSERT INTO feedback_schema (version) VALUES (?)", (number,))
        return SCHEMA_VERSION

    def open(self):
        """Migrate, then prove the store takes writes; raises StoreError (one line) when it cannot."""
        with self.migrate_lock:
            self.migrate()
            self.migrated = True
        with self.transaction(exclusive=True) as cursor:
            # A write that changes nothing: a read-only file or database refuses it all the same.
            self.run(cursor, "UPDATE feedback_totals SET entries = entries WHERE id = 1")

    def schema_version(self):
        with self.transaction() as cursor:
            return self.fetchone(cursor, "SELECT max(version) FROM feedback_schema")[0]

    def add(self, entry):
        """Store `entry`; True if it is new, False if its id was already stored (nothing changes then)."""
        with self.transaction(exclusive=True) as cursor:
            is_number = entry.mode == NUMBER_MODE
            self.run(cursor, f"INSERT INTO feedback_entries ({ENTRY_COLUMNS}, day, size) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                     (entry.id, entry.received_at, entry.model, NUMBER_PREDICTED if is_number else entry.predicted,
                      entry.verdict, entry.label, int(entry.correct), entry.image, entry.strokes, entry.mode,
                      entry.predicted if is_number else None,
                      time.strftime("%Y-%m-%d", time.gmtime(entry.received_at)), entry.size))
            if cursor.rowcount != 1:
                return False
            entries, size = self.fetchone(
                cursor, "UPDATE feedback_totals SET entries = entries + 1, bytes = bytes + ? WHERE id = 1 "
                        "RETURNING entries, bytes", (entry.size,))
            if entries > self.max_entries or size > self.max_bytes:
                self.prune(cursor, entries, size)
            if self.retention_days and entry.received_at >= self.next_sweep:
                self.forget_older_than(cursor, entry.received_at - self.retention_days * SECONDS_PER_DAY)
                self.next_sweep = entry.received_at + RETENTION_SWEEP_SECONDS
        return True

    def prune(self, cursor, entries, size):
        """Delete the oldest confirmations, then (only if there are none left) the oldest corrections."""
        entries_goal, bytes_goal = int(self.max_entries * PRUNE_TO), int(self.max_bytes * PRUNE_TO)
        while entries > entries_goal or size > bytes_goal:
            batch = max(1, min(PRUNE_BATCH, entries - entries_goal))
            sizes = self.fetchall(
                cursor, "DELETE FROM feedback_entries WHERE id IN (SELECT id FROM feedback_entries "
                        "ORDER BY correct DESC, received_at LIMIT ?) RETURNING size", (batch,))
            if not sizes:
                break
            entries, size = self.subtract(cursor, sizes)

    def forget_older_than(self, cursor, cutoff):
        sizes = self.fetchall(cursor, "DELETE FROM feedback_entries WHERE received_at < ? RETURNING size", (cutoff,))
        if sizes:
            self.subtract(cursor, sizes)

    def subtract(self, cursor, sizes):
        return self.fetchone(cursor, "UPDATE feedback_totals SET entries = entries - ?, bytes = bytes - ? "
                                     "WHERE id = 1 RETURNING entries, bytes",
                             (len(sizes), sum(row[0] for row in sizes)))

    def counts(self):
        """{"entries", "corrections", "bytes"} now in the store."""
        with self.transaction() as cursor:
            entries, size = self.fetchone(cursor, "SELECT entries, bytes FROM feedback_totals WHERE id = 1")
            corrections = self.fetchone(cursor, "SELECT count(*) FROM feedback_entries WHERE correct = 0")[0]
        return {"entries": entries, "corrections": corrections, "bytes": size}

    def accuracy_by_day(self):
        """[(day, model, entries, confirmed)], newest day first (the number reader has model ids of its own)."""
        with self.transaction() as cursor:
            return self.fetchall(cursor, "SELECT day, model, count(*), sum(correct) FROM feedback_entries "
                                         "GROUP BY day, model ORDER BY day DESC, model")

    def confusion(self):
        """[(label, shown, count)] of digit entries: what visitors said against what the page showed."""
        with self.transaction() as cursor:
            return self.fetchall(cursor, "SELECT label, CASE WHEN verdict = 'not_digit' THEN 'not_digit' "
                                         "ELSE CAST(predicted AS TEXT) END, count(*) FROM feedback_entries "
                                         "WHERE mode = 'digit' GROUP BY 1, 2")

    def latest_corrections(self, limit):
        with self.transaction() as cursor:
            rows = self.fetchall(cursor, f"SELECT {ENTRY_COLUMNS} FROM feedback_entries WHERE correct = 0 "
                                         "ORDER BY received_at DESC LIMIT ?", (limit,))
        return [self.as_dict(row) for row in rows]

    def entries(self, page_size=500):
        """Every entry, oldest first, read a page at a time so no read holds the database for long."""
        after = (-1.0, "")
        while True:
            with self.transaction() as cursor:
                rows = self.fetchall(cursor, f"SELECT {ENTRY_COLUMNS} FROM feedback_entries "
                                             "WHERE received_at > ? OR (received_at = ? AND id > ?) "
                                             "ORDER BY received_at, id LIMIT ?",
                                     (after[0], after[0], after[1], page_size))
            yield from (self.as_dict(row) for row in rows)
            if len(rows) < page_size:
                return
            after = (rows[-1][1], rows[-1][0])

    @staticmethod
    def as_dict(row):
        """An entry as Entry's fields: a number entry's "predicted" is its number."""
        names = [name.strip() for name in ENTRY_COLUMNS.split(",")]
        entry = dict(zip(names, row))
        entry["image"] = bytes(entry["image"])
        entry["correct"] = bool(entry["correct"])
        number = entry.pop("number")
        if entry["mode"] == NUMBER_MODE:
            entry["predicted"] = number
        return entry

    def run(self, cursor, sql, parameters=()):
        cursor.execute(sql, parameters)

    def fetchone(self, cursor, sql, parameters=()):
        self.run(cursor, sql, parameters)
        return cursor.fetchone()

    def fetchall(self, cursor, sql, parameters=()):
        self.run(cursor, sql, parameters)
        return cursor.fetchall()
