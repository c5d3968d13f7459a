"""What every feedback store does, whatever the database: migrate, add, prune, read back, count.

The SQL is written once with `?` placeholders; every value travels as a parameter, never inside the SQL.
Subclasses supply connections, the dialect's column types and how the driver reports a full disk.
"""

import hashlib
import hmac
import secrets
import threading
import time
from contextlib import contextmanager

from feedback.entry import NUMBER_MODE

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
    # Review: nothing a visitor sends trains a model until an operator (or a rule the operator set) accepts it;
    # entries stored before this version wait for review too. `held_out` is chosen by the server when an entry
    # is accepted; `server_read` is what the server's own model reads in the stored drawing (`read_model`).
    [
        "ALTER TABLE feedback_entries ADD COLUMN review TEXT NOT NULL DEFAULT 'pending'",
        "ALTER TABLE feedback_entries ADD COLUMN held_out INTEGER",
        "ALTER TABLE feedback_entries ADD COLUMN server_read TEXT",
        "ALTER TABLE feedback_entries ADD COLUMN read_model TEXT",
        "CREATE INDEX feedback_entries_review ON feedback_entries (review, received_at)",
        "CREATE TABLE feedback_settings (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
        # Rate limits per client, in the store so that every worker process (and every server of a fleet)
        # counts against the same bucket.
        """CREATE TABLE feedback_buckets (
            name TEXT PRIMARY KEY,
            tokens {real} NOT NULL,
            updated {real} NOT NULL,
            day INTEGER NOT NULL,
            used INTEGER NOT NULL
        )""",
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)
MODE_SINCE_VERSION = 2  # stores from this version on have the `mode` column
REVIEW_SINCE_VERSION = 3  # ... and the `review` and `held_out` columns
PENDING, ACCEPTED, REJECTED = "pending", "accepted", "rejected"
REVIEWS = (PENDING, ACCEPTED, REJECTED)
# Rules an operator may set for new entries: none (every entry waits for review), or accept a visitor's
# confirmation when the server's own reading of the drawing agrees with it.
ACCEPT_RULES = ("none", "confirmations")
# One accepted entry in HELD_OUT_EVERY, drawn by the server, is held out of training for the gate.
HELD_OUT_EVERY = 5
SECONDS_PER_DAY = 86400
# Retention is enforced on writes, at most this often per process.
RETENTION_SWEEP_SECONDS = 600
# When over a bound, prune down to this fraction of it, so pruning runs once per many inserts.
PRUNE_TO = 0.95
PRUNE_BATCH = 256
ENTRY_COLUMNS = ("id, received_at, model, predicted, verdict, label, correct, image, strokes, mode, number, "
                 "review, held_out, server_read, read_model")
NUMBER_PREDICTED = -1  # `predicted` of a number entry: no digit


class StoreError(Exception):
    """The store cannot take or give entries now (HTTP 503); the message says why."""


class StoreFullError(StoreError):
    """The disk or database is full, or the store's bounds are reached by entries it may not drop (HTTP 507)."""


class QuotaExceeded(Exception):
    """A client's daily byte quota is used up; `retry_after` is in seconds (HTTP 429)."""

    def __init__(self, quota, retry_after):
        super().__init__(f"too much feedback from this client today: the limit is {quota} bytes")
        self.retry_after = retry_after


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
        self.next_bucket_sweep = 0.0
        self.bucket_key = None
        self.migrated = False
        self.migrate_lock = threading.Lock()

    def session(self, exclusive=False, durable=True):
        """A context manager: one transaction on this thread's connection, yielding a cursor (subclasses).

        `durable=False` commits without waiting for the disk: for counters whose loss in a power cut is harmless.
        """
        raise NotImplementedError

    def disconnect(self):
        """Close this thread's connection; the next transaction opens a new one."""
        connection = getattr(self.local, "connection", None)
        self.local.connection = None
        if connection is not None:
            connection.close()

    @contextmanager
    def transaction(self, exclusive=False, durable=True):
        """A transaction on a migrated store; `exclusive` takes the write lock at once."""
        if not self.migrated:
            with self.migrate_lock:
                if not self.migrated:
                    self.migrate()
                    self.migrated = True
        with self.session(exclusive, durable) as cursor:
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
            if self.retention_days:  # also at start-up, so a store that takes no new entries still forgets
                now = time.time()
                self.forget_older_than(cursor, now - self.retention_days * SECONDS_PER_DAY)
                self.next_sweep = now + RETENTION_SWEEP_SECONDS

    def schema_version(self):
        with self.transaction() as cursor:
            return self.fetchone(cursor, "SELECT max(version) FROM feedback_schema")[0]

    def add(self, entry, byte_quota=None):
        """Store `entry`; True if it is new, False if its id was already stored (nothing changes then).

        A new entry waits for review unless the operator's rule accepts it. Raises StoreFullError when the
        bounds are reached and no rejected entry is left to drop: pending and accepted entries are never dropped.
        `byte_quota` (bucket name, bytes a day) counts a new entry's bytes in the same transaction, and raises
        QuotaExceeded, storing nothing, when they would go over.
        """
        with self.transaction(exclusive=True) as cursor:
            is_number = entry.mode == NUMBER_MODE
            review = ACCEPTED if self.rule_accepts(cursor, entry) else PENDING
            self.run(cursor, f"INSERT INTO feedback_entries ({ENTRY_COLUMNS}, day, size) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                     (entry.id, entry.received_at, entry.model, NUMBER_PREDICTED if is_number else entry.predicted,
                      entry.verdict, entry.label, int(entry.correct), entry.image, entry.strokes, entry.mode,
                      entry.predicted if is_number else None, review,
                      draw_held_out() if review == ACCEPTED else None, entry.server_read, entry.read_model,
                      time.strftime("%Y-%m-%d", time.gmtime(entry.received_at)), entry.size))
            if cursor.rowcount != 1:
                return False
            if byte_quota is not None:
                over = self.count(cursor, byte_quota[0], None, byte_quota[1], entry.received_at, entry.size)
                if over is not None:
                    raise QuotaExceeded(byte_quota[1], over[1])  # rolls the insert back
            entries, size = self.fetchone(
                cursor, "UPDATE feedback_totals SET entries = entries + 1, bytes = bytes + ? WHERE id = 1 "
                        "RETURNING entries, bytes", (entry.size,))
            if self.retention_days and entry.received_at >= self.next_sweep:
                self.forget_older_than(cursor, entry.received_at - self.retention_days * SECONDS_PER_DAY)
                self.next_sweep = entry.received_at + RETENTION_SWEEP_SECONDS
                entries, size = self.fetchone(cursor, "SELECT entries, bytes FROM feedback_totals WHERE id = 1")
            if entries > self.max_entries or size > self.max_bytes:
                self.prune(cursor, entries, size)
        return True

    def rule_accepts(self, cursor, entry):
        """Whether the operator's rule accepts `entry` without review."""
        if self.accept_rule(cursor) != "confirmations":
            return False
        return entry.correct and entry.server_read is not None and entry.server_read == entry.label

    def accept_rule(self, cursor=None):
        """The operator's rule for new entries (one of ACCEPT_RULES)."""
        if cursor is None:
            with self.transaction() as cursor:
                return self.accept_rule(cursor)
        row = self.fetchone(cursor, "SELECT value FROM feedback_settings WHERE name = 'accept_rule'")
        return row[0] if row else "none"

    def set_accept_rule(self, rule):
        if rule not in ACCEPT_RULES:
            raise ValueError(f"the rule must be one of {', '.join(ACCEPT_RULES)}")
        with self.transaction(exclusive=True) as cursor:
            self.run(cursor, "INSERT INTO feedback_settings (name, value) VALUES ('accept_rule', ?) "
                             "ON CONFLICT (name) DO UPDATE SET value = excluded.value", (rule,))

    def review(self, ids, decision):
        """Accept or reject the entries `ids`; the number changed. An accepted entry's held-out draw is made once."""
        if decision not in (ACCEPTED, REJECTED):
            raise ValueError(f"a review is {ACCEPTED} or {REJECTED}")
        ids = list(dict.fromkeys(ids))
        held_out = {entry_id: draw_held_out() for entry_id in ids}
        changed = 0
        with self.transaction(exclusive=True) as cursor:
            for entry_id in ids:
                self.run(cursor, "UPDATE feedback_entries SET review = ?, held_out = COALESCE(held_out, ?) "
                                 "WHERE id = ?", (decision, held_out[entry_id] if decision == ACCEPTED else None,
                                                  entry_id))
                changed += cursor.rowcount
        return changed

    def take_token(self, name, per_minute, per_day, now=None, amount=1):
        """Count `amount` (one request, or its bytes) against the bucket `name`: None if allowed, else (which
        limit, seconds to wait).

        A token bucket of `per_minute` tokens refilled at `per_minute` a minute (None: no rate), and at most
        `per_day` counted a UTC day.
        """
        # A rate counter lost in a power cut costs nothing: it need not wait for the disk as entries do.
        with self.transaction(exclusive=True, durable=False) as cursor:
            return self.count(cursor, name, per_minute, per_day, time.time() if now is None else now, amount)

    def count(self, cursor, name, per_minute, per_day, now, amount):
        """take_token inside the caller's transaction."""
        day = int(now // SECONDS_PER_DAY)
        name = self.bucket_name(cursor, name)
        row = self.fetchone(cursor, "SELECT tokens, updated, day, used FROM feedback_buckets WHERE name = ?", (name,))
        tokens, updated, bucket_day, used = row or (float(per_minute or 1), now, day, 0)
        if per_minute is not None:
            tokens = min(float(per_minute), tokens + max(0.0, now - updated) * per_minute / 60)
        if bucket_day != day:
            used = 0
        if used + amount > per_day:
            return "day", SECONDS_PER_DAY - int(now % SECONDS_PER_DAY)
        if per_minute is not None and tokens < 1:
            return "minute", max(1, round((1 - tokens) * 60 / per_minute))
        self.run(cursor, "INSERT INTO feedback_buckets (name, tokens, updated, day, used) VALUES (?, ?, ?, ?, ?) "
                         "ON CONFLICT (name) DO UPDATE SET tokens = excluded.tokens, updated = excluded.updated, "
                         "day = excluded.day, used = excluded.used",
                 (name, tokens - (per_minute is not None), now, day, used + amount))
        # Buckets untouched for a day hold nothing worth keeping: a scan of a small table every 10 minutes,
        # rather than an index written on every count.
        if now >= self.next_bucket_sweep:
            self.run(cursor, "DELETE FROM feedback_buckets WHERE updated < ?", (now - 2 * SECONDS_PER_DAY,))
            self.next_bucket_sweep = now + RETENTION_SWEEP_SECONDS
        return None

    def bucket_name(self, cursor, name):
        """`name` keyed with the store's own secret: no client address is kept in the store, even for a day."""
        if self.bucket_key is None:
            row = self.fetchone(cursor, "SELECT value FROM feedback_settings WHERE name = 'bucket_key'")
            if row is None:
                self.run(cursor, "INSERT INTO feedback_settings (name, value) VALUES ('bucket_key', ?) "
                                 "ON CONFLICT (name) DO NOTHING", (secrets.token_hex(32),))
                row = self.fetchone(cursor, "SELECT value FROM feedback_settings WHERE name = 'bucket_key'")
            self.bucket_key = bytes.fromhex(row[0])
        return hmac.new(self.bucket_key, name.encode(), hashlib.sha256).hexdigest()

    def delete(self, ids=(), day=None):
        """Delete the entries `ids`, or every entry received on `day` (YYYY-MM-DD, UTC); the number deleted."""
        deleted = []
        with self.transaction(exclusive=True) as cursor:
            if day is not None:
                deleted += self.fetchall(cursor, "DELETE FROM feedback_entries WHERE day = ? RETURNING size", (day,))
            for entry_id in dict.fromkeys(ids):
                deleted += self.fetchall(cursor, "DELETE FROM feedback_entries WHERE id = ? RETURNING size",
                                         (entry_id,))
            if deleted:
                self.subtract(cursor, deleted)
        return len(deleted)

    def prune(self, cursor, entries, size):
        """Delete the oldest rejected entries until under the bounds; StoreFullError if they are not enough."""
        entries_goal, bytes_goal = int(self.max_entries * PRUNE_TO), int(self.max_bytes * PRUNE_TO)
        while entries > entries_goal or size > bytes_goal:
            batch = max(1, min(PRUNE_BATCH, entries - entries_goal))
            sizes = self.fetchall(
                cursor, "DELETE FROM feedback_entries WHERE id IN (SELECT id FROM feedback_entries "
                        "WHERE review = ? ORDER BY received_at LIMIT ?) RETURNING size", (REJECTED, batch))
            if not sizes:
                break
            entries, size = self.subtract(cursor, sizes)
        if entries > self.max_entries or size > self.max_bytes:
            # Rolls the insert back: accepted corrections and entries awaiting review are never dropped for it.
            raise StoreFullError("the feedback store is full of entries that are accepted or await review")

    def forget_older_than(self, cursor, cutoff):
        sizes = self.fetchall(cursor, "DELETE FROM feedback_entries WHERE received_at < ? RETURNING size", (cutoff,))
        if sizes:
            self.subtract(cursor, sizes)

    def subtract(self, cursor, sizes):
        return self.fetchone(cursor, "UPDATE feedback_totals SET entries = entries - ?, bytes = bytes - ? "
                                     "WHERE id = 1 RETURNING entries, bytes",
                             (len(sizes), sum(row[0] for row in sizes)))

    def counts(self):
        """{"entries", "corrections", "bytes", "pending", "accepted", "rejected"} now in the store."""
        with self.transaction() as cursor:
            entries, size = self.fetchone(cursor, "SELECT entries, bytes FROM feedback_totals WHERE id = 1")
            corrections = self.fetchone(cursor, "SELECT count(*) FROM feedback_entries WHERE correct = 0")[0]
            reviews = dict(self.fetchall(cursor, "SELECT review, count(*) FROM feedback_entries GROUP BY review"))
        return {"entries": entries, "corrections": corrections, "bytes": size,
                **{review: reviews.get(review, 0) for review in REVIEWS}}

    def accuracy_by_day(self):
        """[(day, model, entries, agreed, entries named for another model)], newest day first.

        `model` is the model the server read the stored drawing with, `agreed` how often that reading is the
        visitor's label: nothing here is the client's claim. Entries never read by the server are left out.
        """
        with self.transaction() as cursor:
            return self.fetchall(cursor, "SELECT day, read_model, count(*), "
                                         "sum(CASE WHEN server_read = label THEN 1 ELSE 0 END), "
                                         "sum(CASE WHEN model = read_model THEN 0 ELSE 1 END) "
                                         "FROM feedback_entries WHERE server_read IS NOT NULL "
                                         "GROUP BY day, read_model ORDER BY day DESC, read_model")

    def confusion(self):
        """[(label, read, count)] of digit entries: what visitors said against what the server reads."""
        with self.transaction() as cursor:
            return self.fetchall(cursor, "SELECT label, server_read, count(*) FROM feedback_entries "
                                         "WHERE mode = 'digit' AND server_read IS NOT NULL GROUP BY 1, 2")

    def latest_corrections(self, limit):
        with self.transaction() as cursor:
            rows = self.fetchall(cursor, f"SELECT {ENTRY_COLUMNS} FROM feedback_entries WHERE correct = 0 "
                                         "ORDER BY received_at DESC LIMIT ?", (limit,))
        return [self.as_dict(row) for row in rows]

    def days(self):
        """[(day, entries)] of every day with entries, newest first."""
        with self.transaction() as cursor:
            return self.fetchall(cursor, "SELECT day, count(*) FROM feedback_entries GROUP BY day ORDER BY day DESC")

    def pending(self, limit):
        """The oldest entries awaiting review, at most `limit`."""
        with self.transaction() as cursor:
            rows = self.fetchall(cursor, f"SELECT {ENTRY_COLUMNS} FROM feedback_entries WHERE review = ? "
                                         "ORDER BY received_at, id LIMIT ?", (PENDING, limit))
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
        entry["held_out"] = None if entry["held_out"] is None else bool(entry["held_out"])
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


def draw_held_out():
    """The server's draw: 1 (held out for the gate) once in HELD_OUT_EVERY, else 0; no client chooses it."""
    return int(secrets.randbelow(HELD_OUT_EVERY) == 0)
