"""The feedback store under real faults, with real server processes: kill -9 mid-burst, several writers,
a read-only store and a full disk. Nothing answered 201/200 is ever lost, and /predict keeps answering."""

import http.client
import json
import sqlite3
import threading
import time
import urllib.parse

import pytest

from tests.feedback_helpers import TOKEN, export, feedback_document, pad_png
from tests.server_fixtures import post, request

UNLIMITED = {"SERVE_FEEDBACK_RATE_PER_MINUTE": 10**9, "SERVE_FEEDBACK_MAX_PER_CLIENT_DAY": 10**9,
             "SERVE_ADMIN_TOKEN": TOKEN}
BURST_SECONDS = 60  # a functional deadline for every loop of posts below


def send(base_url, document, timeout=10):
    """POST one entry on a fresh connection; (status, body) or None when the connection failed."""
    address = urllib.parse.urlsplit(base_url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=timeout)
    try:
        connection.request("POST", "/feedback", json.dumps(document), {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException):  # refused, reset, or an answer cut short: not acknowledged
        return None
    finally:
        connection.close()


def burst(targets, documents_per_thread, threads):
    """Threads posting fresh entries round-robin to `targets` (a list of base URLs, changeable while running)."""
    acknowledged, statuses, stop = [], [], threading.Event()
    lock = threading.Lock()

    def work(number):
        deadline = time.monotonic() + BURST_SECONDS
        for index in range(documents_per_thread):
            if stop.is_set() or time.monotonic() > deadline:
                return
            document = feedback_document(label=index % 10, predicted=7)
            answer = send(targets[(number + index) % len(targets)], document)
            with lock:
                statuses.append(answer and answer[0])
                if answer and answer[0] in (200, 201):
                    acknowledged.append(document["id"])

    workers = [threading.Thread(target=work, args=(number,)) for number in range(threads)]
    for worker in workers:
        worker.start()
    return acknowledged, statuses, stop, workers


def stored_ids(database):
    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return [row[0] for row in connection.execute("SELECT id FROM feedback_entries")]


def test_kill_9_during_a_burst_loses_no_acknowledged_entry(start_process, tmp_path):
    database = tmp_path / "feedback.sqlite"
    env = {"SERVE_FEEDBACK_DB": database, **UNLIMITED}
    acknowledged_in_all_rounds = []
    for _ in range(3):
        server = start_process(env)
        acknowledged, _, stop, workers = burst([server.base_url], 400, threads=6)
        deadline = time.monotonic() + BURST_SECONDS
        while len(acknowledged) < 60 and time.monotonic() < deadline:
            time.sleep(0.01)
        server.kill()
        stop.set()
        for worker in workers:
            worker.join(30)
        # Killed mid-burst: after 60 acknowledged posts, with the threads still posting (on a loaded machine
        # the kill can fall between two posts, so a post cut off in flight is likely, not certain).
        assert len(acknowledged) >= 60
        acknowledged_in_all_rounds += acknowledged
    ids = stored_ids(database)
    assert set(acknowledged_in_all_rounds) <= set(ids) and len(ids) == len(set(ids))
    server = start_process(env)  # opens cleanly, and every entry is still there once
    assert send(server.base_url, {**feedback_document(), "id": acknowledged_in_all_rounds[0]})[0] == 200
    assert len(export(server.base_url)) == len(ids)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_several_server_processes_and_threads_neither_lose_nor_duplicate(start_process, tmp_path, backend, request):
    if backend == "sqlite":
        env = {"SERVE_FEEDBACK_DB": tmp_path / "feedback.sqlite", **UNLIMITED}
    else:
        env = {"SERVE_FEEDBACK_URL": request.getfixturevalue("postgres_url"), **UNLIMITED}
    servers = [start_process(env) for _ in range(3)]
    documents = [feedback_document(label=index % 10, predicted=index % 10) for index in range(90)]
    results, lock = [], threading.Lock()

    def work(number):
        # Every entry is posted twice, to two different servers, by two different threads.
        for index in range(number, len(documents) * 2, 6):
            document = documents[index % len(documents)]
            answer = send(servers[(index + number) % 3].base_url, document)
            with lock:
                results.append((document["id"], answer and answer[0]))

    workers = [threading.Thread(target=work, args=(number,)) for number in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(BURST_SECONDS)
    created = sorted(entry_id for entry_id, status in results if status == 201)
    assert {status for _, status in results} <= {200, 201} and len(results) == 180
    assert created == sorted(document["id"] for document in documents)
    exported = [entry["id"] for entry in export(servers[0].base_url)]
    assert sorted(exported) == created


def mount_namespace(script):
    """A prefix that runs the server in its own mount namespace after `script` (mounts vanish with it)."""
    return ["unshare", "--mount", "--propagation", "private", "sh", "-euc", script + '\nexec "$@"', "sh"]


def test_a_read_only_store_answers_503_and_predict_keeps_answering(start_process, tmp_path):
    store_dir = tmp_path / "store"
    store_dir.mkdir()
    env = {"SERVE_FEEDBACK_DB": store_dir / "feedback.sqlite", **UNLIMITED}
    writable = start_process(env)
    assert send(writable.base_url, feedback_document())[0] == 201
    writable.stop()
    server = start_process(env, mount_namespace(f"mount --bind {store_dir} {store_dir}\n"
                                                f"mount -o remount,bind,ro {store_dir}"))
    for _ in range(3):
        status, body = send(server.base_url, feedback_document())
        assert status == 503 and "try again" in json.loads(body)["error"]
        assert post(server.base_url, pad_png(), "image/png").status == 200
    assert request(server.base_url, "GET", "/healthz").status == 200


def test_a_full_disk_answers_507_and_predict_keeps_answering(start_process, tmp_path):
    store_dir = tmp_path / "store"
    store_dir.mkdir()
    env = {"SERVE_FEEDBACK_DB": store_dir / "feedback.sqlite", **UNLIMITED}
    server = start_process(env, mount_namespace(f"mount -t tmpfs -o size=256k tmpfs {store_dir}"))
    statuses = []
    deadline = time.monotonic() + BURST_SECONDS
    while 507 not in statuses and len(statuses) < 500 and time.monotonic() < deadline:
        statuses.append(send(server.base_url, feedback_document())[0])
    assert statuses[0] == 201 and statuses[-1] == 507 and set(statuses) <= {201, 507}
    for _ in range(3):
        assert post(server.base_url, pad_png(), "image/png").status == 200
        status, body = send(server.base_url, feedback_document())
        assert status == 507 and "full" in json.loads(body)["error"]
    assert len(export(server.base_url)) == statuses.count(201)  # what was answered 201 is all there
