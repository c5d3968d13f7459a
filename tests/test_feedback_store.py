"""The feedback store, on real SQLite and on a real PostgreSQL server: idempotent, bounded, migrated, durable."""

import io
import sqlite3
import threading
import time
import uuid

import pytest
from PIL import Image, ImageDraw

from serve.feedback import StoreError, open_store
from serve.feedback.entry import Entry
from serve.feedback.store import SCHEMA_VERSION

DAY = 86400
STORED_COLUMNS = {"id", "received_at", "day", "model", "predicted", "verdict", "label", "correct", "image",
                  "strokes", "size", "mode", "number"}


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
    assert store.counts() == {"entries": 1, "corrections": 1, "bytes": entry.size}


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


def test_over_the_entry_bound_the_oldest_confirmations_go_first(make_store):
    store = make_store(FEEDBACK_MAX_ENTRIES=20)
    start = time.time() - 1000
    corrections = [make_entry(label="1", predicted=7, received_at=start + index) for index in range(5)]
    confirmations = [make_entry(received_at=start + 5 + index) for index in range(30)]
    for entry in corrections + confirmations:
        store.add(entry)
    kept = {entry["id"] for entry in store.entries()}
    counts = store.counts()
    assert counts["entries"] == len(kept) <= 20 and counts["corrections"] == 5
    assert {entry.id for entry in corrections} <= kept
    kept_confirmations = [entry.id for entry in confirmations if entry.id in kept]
    assert kept_confirmations == [entry.id for entry in confirmations[-len(kept_confirmations):]]


def test_corrections_are_pruned_only_when_nothing_else_is_left(make_store):
    store = make_store(FEEDBACK_MAX_ENTRIES=10)
    start = time.time() - 1000
    corrections = [make_entry(label="not_digit", predicted=4, received_at=start + index) for index in range(15)]
    for entry in corrections:
        store.add(entry)
    kept = [entry["id"] for entry in store.entries()]
    assert 0 < len(kept) <= 10 and kept == [entry.id for entry in corrections[-len(kept):]]


def test_the_byte_bound_holds(make_store):
    entry_size = make_entry().size
    store = make_store(FEEDBACK_MAX_STORE_BYTES=entry_size * 8)
    for _ in range(20):
        store.add(make_entry())
    counts = store.counts()
    assert counts["bytes"] <= entry_size * 8 and counts["entries"] <= 8
    assert counts["bytes"] == sum(len(entry["image"]) + len(entry["strokes"]) for entry in store.entries())


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


def test_statistics_count_confirmations_and_corrections_per_day_and_model(make_store):
    store = make_store()
    for entry in [make_entry(), make_entry(), make_entry(label="1", predicted=7),
                  make_entry(label="4", predicted=9, verdict="not_digit")]:
        store.add(entry)
    [(day, model, entries, confirmed)] = store.accuracy_by_day()
    assert (model, entries, confirmed) == ("digits-test", 4, 2)
    assert day == time.strftime("%Y-%m-%d", time.gmtime())
    assert sorted(store.confusion()) == [("1", "7", 1), ("4", "not_digit", 1), ("7", "7", 2)]
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
