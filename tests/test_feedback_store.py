"""The feedback store, on real SQLite and on a real PostgreSQL server: idempotent, bounded, migrated, durable."""

import io
import sqlite3
import threading
import time
import uuid
from dataclasses import replace

import pytest
from PIL import Image, ImageDraw

from feedback.entry import Entry
from feedback.store import SCHEMA_VERSION
from serve.feedback import StoreError, StoreFullError, open_store

DAY = 86400
STORED_COLUMNS = {"id", "received_at", "day", "model", "predicted", "verdict", "label", "correct", "image",
                  "strokes", "size", "mode", "number", "review", "held_out", "server_read", "read_model"}


def drawing_png(seed=0):
    image = Image.new("L", (28, 28), 0)
    ImageDraw.Draw(image).line([(6, 4 + seed % 5), (22, 24)], fill=255, width=3)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def make_entry(label="7", predicted=7, verdict="digit", received_at=None, entry_id=None, image=None):
    return Entry(id=entry_id or str(uuid.uuid4()), model="digits-test", predicted=predicted, verdict=verdict,
                 label=label, image=image or drawing_png(), strokes="[[[0.1,0.2,0]]]",
                 received_at=time.time() if received_at is None else received_at)


def store_config(target, **overrides):
    config = {"FEEDBACK_MAX_ENTRIES": 100_000, "FEEDBACK_MAX_STORE_BYTES": 1 << 30, "FEEDBACK_RETENTION_DAYS": 0,
              "FEEDBACK_DB": None, "FEEDBACK_URL": None, **overrides}
    config["FEEDBACK_URL" if str(target).startswith("postgresql://") else "FEEDBACK_DB"] = str(target)
    return config


@pytest.fixture(params=["sqlite", "postgresql"])
def store_target(request, tmp_path):
    """Where a store lives: a SQLite file path, or a fresh PostgreSQL database's URL."""
    if request.param == "sqlite":
        return tmp_path / "nested" / "feedback.sqlite"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def make_store(store_target):
    stores = []

    def make(**overrides):
        stores.append(open_store(store_config(store_target, **overrides)))
        return stores[-1]

    yield make
    for store in stores:
        store.disconnect()


def test_an_entry_is_stored_once_and_its_id_again_is_a_duplicate(make_store):
    store = make_store()
    entry = make_entry(label="1", predicted=7)
    assert store.add(entry) is True
    assert store.add(entry) is False
    assert store.add(make_entry(entry_id=entry.id, label="3")) is False  # the first one stands
    [stored] = list(store.entries())
    assert stored["id"] == entry.id and stored["label"] == "1" and stored["correct"] is False
    assert stored["image"] == entry.image and stored["strokes"] == entry.strokes
    assert store.counts() == {"entries": 1, "corrections": 1, "bytes": entry.size, "pending": 1, "accepted": 0,
                              "rejected": 0}
    assert stored["review"] == "pending" and stored["held_out"] is None


def test_the_schema_is_versioned_and_a_newer_one_is_refused(make_store):
    store = make_store()
    store.add(make_entry())
    assert store.schema_version() == SCHEMA_VERSION
    assert make_store().schema_version() == SCHEMA_VERSION  # migrating again changes nothing
    with store.transaction() as cursor:
        store.run(cursor, "INSERT INTO feedback_schema (version) VALUES (?)", (SCHEMA_VERSION + 1,))
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1}"):
        make_store().add(make_entry())


def test_no_address_or_user_agent_is_stored(make_store):
    store = make_store()
    store.add(make_entry())
    with store.transaction() as cursor:
        store.run(cursor, "SELECT * FROM feedback_entries")
        columns = {description[0] for description in cursor.description}
    assert columns == STORED_COLUMNS


def test_over_the_entry_bound_the_oldest_rejected_entries_go_and_nothing_else(make_store):
    store = make_store(FEEDBACK_MAX_ENTRIES=20)
    start = time.time() - 1000
    corrections = [make_entry(label="1", predicted=7, received_at=start + index) for index in range(5)]
    rejected = [make_entry(label="2", predicted=7, received_at=start + 5 + index) for index in range(10)]
    for entry in corrections + rejected:
        store.add(entry)
    store.review([entry.id for entry in corrections], "accepted")
    store.review([entry.id for entry in rejected], "rejected")
    confirmations = [make_entry(received_at=start + 20 + index) for index in range(10)]
    for entry in confirmations:
        store.add(entry)
    kept = {entry["id"] for entry in store.entries()}
    counts = store.counts()
    assert counts["entries"] == len(kept) <= 20 and counts["accepted"] == 5 and counts["pending"] == 10
    assert {entry.id for entry in corrections + confirmations} <= kept
    kept_rejected = [entry.id for entry in rejected if entry.id in kept]
    assert kept_rejected == [entry.id for entry in rejected[-len(kept_rejected):]] and len(kept_rejected) < 10


def test_a_store_full_of_pending_and_accepted_entries_refuses_new_ones(make_store):
    store = make_store(FEEDBACK_MAX_ENTRIES=10)
    entries = [make_entry(label="not_digit", predicted=4) for _ in range(10)]
    for entry in entries:
        store.add(entry)
    store.review([entry.id for entry in entries[:5]], "accepted")
    with pytest.raises(StoreFullError, match="await review"):
        store.add(make_entry())
    assert sorted(entry["id"] for entry in store.entries()) == sorted(entry.id for entry in entries)
    assert store.counts()["entries"] == 10
    store.review([entries[9].id], "rejected")  # the operator rejects one: room for the next
    assert store.add(make_entry()) is True and store.counts()["entries"] <= 10


def test_the_byte_bound_holds(make_store):
    entry_size = make_entry().size
    store = make_store(FEEDBACK_MAX_STORE_BYTES=entry_size * 8)
    for _ in range(8):
        store.add(make_entry())
    store.review([entry["id"] for entry in store.entries()], "rejected")
    refused = 0
    for _ in range(12):
        try:
            store.add(make_entry())
        except StoreFullError:
            refused += 1
    counts = store.counts()
    assert counts["bytes"] <= entry_size * 8 and counts["entries"] <= 8 and refused >= 4
    assert counts["rejected"] == 0 and counts["pending"] == 12 - refused
    assert counts["bytes"] == sum(len(entry["image"]) + len(entry["strokes"]) for entry in store.entries())


def test_the_server_draws_the_held_out_split_when_an_entry_is_accepted(make_store):
    store = make_store()
    entries = [make_entry(label="1", predicted=7) for _ in range(200)]
    for entry in entries:
        store.add(entry)
    assert store.review([entry.id for entry in entries], "accepted") == 200
    draws = {entry["id"]: entry["held_out"] for entry in store.entries()}
    assert set(draws.values()) == {True, False} and 10 <= sum(draws.values()) <= 75  # one in five, drawn
    store.review([entry.id for entry in entries], "rejected")
    store.review([entry.id for entry in entries], "accepted")
    assert {entry["id"]: entry["held_out"] for entry in store.entries()} == draws  # drawn once, kept


def test_the_confirmations_rule_accepts_only_what_the_server_reads_the_same(make_store):
    store = make_store()
    store.set_accept_rule("confirmations")
    agreed = replace(make_entry(label="7", predicted=7), server_read="7", read_model="digits-test")
    disagreed = replace(make_entry(label="7", predicted=7), server_read="1", read_model="digits-test")
    correction = replace(make_entry(label="1", predicted=7), server_read="1", read_model="digits-test")
    for entry in (agreed, disagreed, correction):
        store.add(entry)
    reviews = {entry["id"]: entry["review"] for entry in store.entries()}
    assert reviews == {agreed.id: "accepted", disagreed.id: "pending", correction.id: "pending"}
    with pytest.raises(ValueError):
        store.set_accept_rule("everything")


def test_rate_buckets_are_shared_by_every_handle_on_the_store_and_keep_no_address(make_store):
    first, second = make_store(), make_store()  # two worker processes' handles on one store
    now = 1.7e9
    results = [(first if index % 2 else second).take_token("feedback:198.51.100.7", 4, 1000, now)
               for index in range(6)]
    assert results[:4] == [None] * 4 and results[4][0] == "minute" and results[5][0] == "minute"
    assert first.take_token("feedback:198.51.100.8", 4, 1000, now) is None  # another client, another bucket
    with first.transaction() as cursor:
        names = [row[0] for row in first.fetchall(cursor, "SELECT name FROM feedback_buckets")]
    assert len(names) == 2 and not any("198.51" in name for name in names)


def test_entries_older_than_the_retention_are_forgotten(make_store):
    store = make_store(FEEDBACK_RETENTION_DAYS=30)
    now = time.time()
    old = make_entry(label="2", predicted=3, received_at=now - 31 * DAY)
    store.add(old)
    recent = make_entry(received_at=now - 29 * DAY)
    store.add(recent)
    store.next_sweep = 0  # as on a server that has run for more than a sweep interval
    store.add(make_entry(received_at=now))
    ids = [entry["id"] for entry in store.entries()]
    assert old.id not in ids and recent.id in ids and store.counts()["entries"] == 2


def test_export_pages_through_every_entry_in_order(make_store):
    store = make_store()
    start = time.time() - 100
    added = [make_entry(received_at=start + index // 3) for index in range(23)]  # ties on the timestamp too
    for entry in added:
        store.add(entry)
    exported = [entry["id"] for entry in store.entries(page_size=5)]
    assert sorted(exported) == sorted(entry.id for entry in added) and len(set(exported)) == 23


def test_statistics_count_the_servers_reading_against_the_label_per_day_and_model(make_store):
    store = make_store()
    read = lambda entry, reading, model="digits-server": replace(entry, server_read=reading, read_model=model)
    # The clients claim the page showed 7, 7, 7 and 9; the server's own reading is what counts.
    for entry in [read(make_entry(), "7"), read(make_entry(), "1"), read(make_entry(label="1", predicted=7), "1"),
                  read(make_entry(label="4", predicted=9, verdict="not_digit"), "not_digit"), make_entry()]:
        store.add(entry)
    [(day, model, entries, agreed, other_model)] = store.accuracy_by_day()
    assert (model, entries, agreed, other_model) == ("digits-server", 4, 2, 4)  # the unread entry is left out
    assert day == time.strftime("%Y-%m-%d", time.gmtime())
    assert sorted(store.confusion()) == [("1", "1", 1), ("4", "not_digit", 1), ("7", "1", 1), ("7", "7", 1)]
    assert [entry["label"] for entry in store.latest_corrections(5)] == ["4", "1"]


def test_threads_writing_at_once_neither_lose_nor_duplicate(make_store):
    store = make_store()
    entries = [make_entry() for _ in range(60)]
    results = []

    def write(offset):
        # Every thread writes every entry, each starting elsewhere, so each id races between threads.
        for index in range(len(entries)):
            results.append((entries[(index + offset) % len(entries)].id, store.add(entries[(index + offset) % 60])))

    threads = [threading.Thread(target=write, args=(offset * 15,)) for offset in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    new = [entry_id for entry_id, is_new in results if is_new]
    assert sorted(new) == sorted(entry.id for entry in entries)
    assert store.counts()["entries"] == 60 == len(list(store.entries()))


def test_sqlite_store_is_created_on_first_use_in_wal_mode_synced_in_full(tmp_path):
    path = tmp_path / "data" / "feedback.sqlite"
    store = open_store(store_config(path))
    assert not path.exists()
    store.add(make_entry())
    assert path.exists()
    assert store.connect().execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
