"""The feedback store's figures: write latency over HTTP, kill -9 mid-burst, and the size of a 10k-entry store.

`python -m bench.feedback_store [--posts 500] [--entries 10000] [--kills 5] [--postgres-url URL]`.
Each run uses a fresh SQLite file in a temporary directory, written by a real `python -m serve` process.
"""

import argparse
import base64
import http.client
import io
import json
import os
import random
import signal
import sqlite3
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path

from PIL import Image, ImageDraw

from bench.report import DEFAULT_ARTIFACTS_DIR, DEFAULT_WORK_DIR
from bench.servers import our_server

PAD_SIDE = 280  # what the page sends (reader.contract.PAD_SIDE)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.feedback_store", description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=500, help="sequential POST /feedback timed (default %(default)s)")
    parser.add_argument("--entries", type=int, default=10_000, help="entries in the store whose size is measured")
    parser.add_argument("--kills", type=int, default=5, help="kill -9 rounds (default %(default)s)")
    parser.add_argument("--threads", type=int, default=6, help="posting threads in each kill round")
    parser.add_argument("--acknowledged-before-kill", type=int, default=100,
                        help="entries answered before each kill (default %(default)s)")
    parser.add_argument("--postgres-url", help="also time writes into this PostgreSQL database")
    parser.add_argument("--artifacts", type=Path, default=DEFAULT_ARTIFACTS_DIR, help="model files (default: %(default)s)")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR, help="logs (default: %(default)s)")
    return parser.parse_args(argv)


def drawing(rng):
    """A pad-sized PNG of a few random strokes, white on black, as the page sends it."""
    image = Image.new("L", (PAD_SIDE, PAD_SIDE), 0)
    pen = ImageDraw.Draw(image)
    for _ in range(rng.randint(1, 3)):
        points = [(rng.randint(40, 240), rng.randint(30, 250)) for _ in range(rng.randint(2, 6))]
        pen.line(points, fill=255, width=20, joint="curve")
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def document(rng, image):
    return {"id": str(uuid.uuid4()), "model": "digits-bench", "predicted": rng.randint(0, 9), "verdict": "digit",
            "label": rng.choice([rng.randint(0, 9), "not_digit"]), "image": base64.b64encode(image).decode()}


def start(args, environment):
    server = our_server(args.work_dir, args.artifacts)
    server.environment = {**server.environment, "SERVE_FEEDBACK_RATE_PER_MINUTE": "1e9",
                          "SERVE_FEEDBACK_MAX_PER_CLIENT_DAY": "1000000000", **environment}
    return server.start(pad_png_of_a_one())


def pad_png_of_a_one():
    image = Image.new("L", (PAD_SIDE, PAD_SIDE), 0)
    ImageDraw.Draw(image).line([(140, 40), (140, 240)], fill=255, width=20)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def post(connection, body):
    connection.request("POST", "/feedback", body, {"Content-Type": "application/json"})
    response = connection.getresponse()
    response.read()
    return response.status


def write_latency(args, environment, label):
    """Median and p99 milliseconds of `--posts` sequential POST /feedback on one keep-alive connection."""
    rng = random.Random(0)
    images = [drawing(rng) for _ in range(50)]
    bodies = [json.dumps(document(rng, images[index % 50])) for index in range(args.posts)]
    with start(args, environment) as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        for body in bodies[:20]:  # warm-up: connections, schema, page cache
            post(connection, json.dumps(document(rng, images[0])))
        times = []
        for body in bodies:
            started = time.perf_counter()
            assert post(connection, body) == 201
            times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {"store": label, "posts": len(times), "median_ms": statistics.median(times),
            "p99_ms": times[int(len(times) * 0.99) - 1]}


def kill_rounds(args, database):
    """Rounds of: threads posting, SIGKILL mid-burst, then every acknowledged id looked up in the file."""
    rounds = []
    for _ in range(args.kills):
        server = start(args, {"SERVE_FEEDBACK_DB": str(database)})
        acknowledged, lock, stop = [], threading.Lock(), threading.Event()

        def work(seed):
            rng = random.Random(seed)
            image = drawing(rng)
            while not stop.is_set():
                body = document(rng, image)
                try:
                    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
                    if post(connection, json.dumps(body)) in (200, 201):
                        with lock:
                            acknowledged.append(body["id"])
                except (OSError, http.client.HTTPException):
                    return

        threads = [threading.Thread(target=work, args=(seed,)) for seed in range(args.threads)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while len(acknowledged) < args.acknowledged_before_kill and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(random.uniform(0, 0.3))  # then at a random point of the burst
        server.process.send_signal(signal.SIGKILL)
        server.process.wait()
        stop.set()
        for thread in threads:
            thread.join(30)
        with sqlite3.connect(database) as connection:
            integrity = connection.execute("PRAGMA integrity_check").fetchone()[0]
            stored = {row[0] for row in connection.execute("SELECT id FROM feedback_entries")}
        rounds.append({"acknowledged": len(acknowledged), "lost": len(set(acknowledged) - stored),
                       "integrity": integrity, "rows_after": len(stored)})
    return rounds


def store_size(args, directory):
    """Bytes on disk of a SQLite store holding `--entries` pad drawings, written through the store itself."""
    from feedback.entry import Entry
    from serve.feedback import open_store

    path = directory / "size.sqlite"
    store = open_store({"FEEDBACK_DB": str(path), "FEEDBACK_MAX_ENTRIES": 10**9, "FEEDBACK_MAX_STORE_BYTES": 1 << 40,
                        "FEEDBACK_RETENTION_DAYS": 0})
    rng = random.Random(1)
    images = [drawing(rng) for _ in range(500)]
    for index in range(args.entries):
        store.add(Entry(id=str(uuid.uuid4()), model="digits-bench", predicted=rng.randint(0, 9), verdict="digit",
                        label=str(rng.randint(0, 9)), image=images[index % len(images)], strokes=None,
                        received_at=time.time()))
    store.disconnect()
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    files = [path, path.with_name(path.name + "-wal")]
    return {"entries": args.entries, "bytes": sum(file.stat().st_size for file in files if file.exists()),
            "image_bytes_mean": statistics.mean(len(image) for image in images)}


def main(argv=None):
    args = parse_args(argv)
    print(f"load average before the run: {' '.join(f'{load:.1f}' for load in os.getloadavg())} "
          f"on {os.cpu_count()} CPUs (the figures below move with it)\n")
    with tempfile.TemporaryDirectory(prefix="feedback-bench-") as directory:
        directory = Path(directory)
        latencies = [write_latency(args, {"SERVE_FEEDBACK_DB": str(directory / "latency.sqlite")}, "SQLite")]
        if args.postgres_url:
            latencies.append(write_latency(args, {"SERVE_FEEDBACK_URL": args.postgres_url}, "PostgreSQL"))
        print("| store | posts | median | p99 |\n|---|---|---|---|")
        for row in latencies:
            print(f"| {row['store']} | {row['posts']} | {row['median_ms']:.2f} ms | {row['p99_ms']:.2f} ms |")
        rounds = kill_rounds(args, directory / "kill.sqlite")
        print("\n| kill -9 round | acknowledged (201/200) | lost | integrity_check | rows after |\n|---|---|---|---|---|")
        for number, row in enumerate(rounds, 1):
            print(f"| {number} | {row['acknowledged']} | {row['lost']} | {row['integrity']} | {row['rows_after']} |")
        size = store_size(args, directory)
        print(f"\n{size['entries']:,} entries (pad PNGs of {size['image_bytes_mean']:.0f} bytes on average): "
              f"{size['bytes']:,} bytes on disk ({size['bytes'] / size['entries']:.0f} bytes an entry)")


if __name__ == "__main__":
    main()
