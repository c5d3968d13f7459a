"""Nothing anonymous trains a model without review, and the limits hold per real client for the whole server.

Real server processes (2 workers on one port), real SQLite, real nginx (`python -m serve.front`), clients on
several loopback addresses (all of 127.0.0.0/8 is this machine).
"""

import argparse
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import urllib.parse
from pathlib import Path

import numpy as np

from serve.front import free_port, wait_for_port
from serve.privileges import default_user
from tests.conftest import ROOT
from tests.feedback_helpers import TOKEN, export, feedback_document, operator_post, operator_session
from tests.front_fixtures import wait_until
from train.feedback import HELD_OUT_FILE, load_held_out, mix_into_training, read_corrections

POISON = 1000
POISON_ADDRESSES = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]


def send(base_url, document, source="127.0.0.1", headers=None):
    """POST one entry from `source` on a fresh connection: (status, JSON body)."""
    address = urllib.parse.urlsplit(base_url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30, source_address=(source, 0))
    try:
        connection.request("POST", "/feedback", json.dumps(document),
                           {"Content-Type": "application/json", **(headers or {})})
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        connection.close()


def test_a_thousand_wrong_labels_from_several_addresses_never_train_without_acceptance(start_process, tmp_path):
    database = tmp_path / "feedback.sqlite"
    server = start_process({"SERVE_FEEDBACK_DB": database, "SERVE_ADMIN_TOKEN": TOKEN, "WORKERS": 2,
                            "SERVE_FEEDBACK_RATE_PER_MINUTE": 10**6, "SERVE_FEEDBACK_MAX_PER_CLIENT_DAY": 10**6})
    # One script: the drawing is a 7, every label says 1, and each entry claims to be accepted and not held out.
    statuses, lock = [], threading.Lock()

    def poison(number):
        for index in range(number, POISON, 8):
            document = feedback_document(label=1, predicted=7, review="accepted", held_out=False)
            status, _ = send(server.base_url, document, POISON_ADDRESSES[index % len(POISON_ADDRESSES)])
            with lock:
                statuses.append(status)

    threads = [threading.Thread(target=poison, args=(number,)) for number in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert statuses.count(201) == POISON
    assert read_corrections(database) == []
    args = argparse.Namespace(feedback=str(database), feedback_weight=20, output_dir=tmp_path / "build")
    x_train, y_train, kinds = np.zeros((3, 28, 28, 1), np.float32), np.zeros(3, np.uint8), np.full(3, "plain")
    x_mixed, _, _ = mix_into_training(args, x_train, y_train, kinds)
    assert len(x_mixed) == 3 and load_held_out(args.output_dir)[1].size == 0
    # The operator accepts twelve real corrections on /stats; those, and only those, reach training and the gate.
    real = [feedback_document(label="not_digit", predicted=7) for _ in range(12)]
    assert all(send(server.base_url, document, "127.0.0.9")[0] == 201 for document in real)
    cookie, csrf = operator_session(server.base_url)
    fields = [("csrf", csrf), ("decision", "accepted")] + [("id", document["id"]) for document in real]
    assert operator_post(server.base_url, "/stats/review", fields, cookie).status == 303
    accepted = {document["id"] for document in real}
    read = read_corrections(database)
    assert {entry_id for entry_id, _, _, _ in read} == accepted
    mix_into_training(args, x_train, y_train, kinds)
    held_out = [json.loads(line)["id"] for line in (args.output_dir / HELD_OUT_FILE).read_text().splitlines()]
    assert set(held_out) <= accepted
    assert held_out == [entry_id for entry_id, _, _, is_held_out in read if is_held_out]  # the server's draw
    reviews = {entry["review"] for entry in export(server.base_url) if entry["id"] not in accepted}
    assert reviews == {"pending"}


def test_one_clients_burst_across_two_workers_is_held_to_the_documented_rate(start_process, tmp_path):
    server = start_process({"SERVE_FEEDBACK_DB": tmp_path / "feedback.sqlite", "WORKERS": 2,
                            "SERVE_FEEDBACK_RATE_PER_MINUTE": 10})
    statuses = [send(server.base_url, feedback_document(), "127.0.0.2")[0] for _ in range(30)]
    # Each fresh connection may land on either worker: per-process buckets would let up to 20 through.
    assert statuses.count(201) in (10, 11) and set(statuses) == {201, 429}, statuses  # 11: a refill while posting
    assert send(server.base_url, feedback_document(), "127.0.0.3")[0] == 201  # another client, its own bucket


def test_two_clients_behind_make_front_are_limited_separately(tmp_path):
    """The issue's measurement: behind `make front`, client B is no longer locked out by client A's burst."""
    port = free_port()
    log_path = tmp_path / "front.log"
    # The front's workers run as its --user when started as root: the store goes where that user may write
    # (pytest's own folders are root's alone).
    store = Path(tempfile.mkdtemp(prefix="front-store-"))
    if os.geteuid() == 0:
        shutil.chown(store, default_user())
    env = {**os.environ, "HOST": "127.0.0.1", "SERVE_FEEDBACK_DB": str(store / "feedback.sqlite"),
           "SERVE_FEEDBACK_RATE_PER_MINUTE": "5"}
    with open(log_path, "w") as log:
        front = subprocess.Popen([sys.executable, "-m", "serve.front", "--port", str(port), "--workers", "2",
                                  "--run-dir", str(tmp_path / "run")], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                 env=env)
    try:
        assert wait_until(lambda: "serve.front: nginx on http://127.0.0.1" in log_path.read_text(), 120), \
            log_path.read_text()[-2000:]
        wait_for_port("127.0.0.1", port, front)  # the banner comes as nginx starts, not once it listens
        base_url = f"http://127.0.0.1:{port}"
        # A forged X-Forwarded-For does not make a new client: nginx appends the real address, the app trusts one hop.
        client_a = [send(base_url, feedback_document(), "127.0.0.2", {"X-Forwarded-For": f"10.0.0.{index}"})[0]
                    for index in range(8)]
        client_b = [send(base_url, feedback_document(), "127.0.0.3")[0] for _ in range(3)]
        assert client_a == [201] * 5 + [429] * 3 and client_b == [201] * 3
    finally:
        front.send_signal(signal.SIGTERM)
        front.wait(30)
        shutil.rmtree(store, ignore_errors=True)
