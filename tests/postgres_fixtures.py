"""PostgreSQL fixtures: Debian's real server (`make postgres` installs it), started for the session as the
`postgres` user in a temporary directory, listening only on a unix socket there, and stopped afterwards.

- `postgres_server`: the socket directory of the running server.
- `postgres_url`: a postgresql:// URL of a fresh, empty database for one test.
"""

import glob
import itertools
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

PORT = 5432  # only names the socket file; nothing listens on TCP
START_SECONDS = 60
database_numbers = itertools.count(1)


def server_binary(name):
    """`name` from the newest PostgreSQL under /usr/lib/postgresql (Debian's layout)."""
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda path: int(path.split("/")[4]))
    if not candidates:
        raise RuntimeError(f"PostgreSQL's {name} is missing: run `make postgres` (Debian's postgresql package)")
    return candidates[-1]


def as_postgres(command, **options):
    return subprocess.run(command, user="postgres", capture_output=True, text=True, check=True, timeout=120, **options)


@pytest.fixture(scope="session")
def postgres_server():
    root = Path(tempfile.mkdtemp(prefix="feedback-postgres-"))
    shutil.chown(root, "postgres", "postgres")
    data, sockets = root / "data", root / "sockets"
    as_postgres([server_binary("initdb"), "--auth=trust", "--username=postgres", "--encoding=UTF8",
                 "--no-instructions", "-D", str(data)])
    sockets.mkdir()
    shutil.chown(sockets, "postgres", "postgres")
    process = subprocess.Popen(
        [server_binary("postgres"), "-D", str(data), "-k", str(sockets), "-p", str(PORT),
         "-c", "listen_addresses=", "-c", "fsync=on", "-c", "max_connections=60"],
        user="postgres", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_until_ready(sockets, process)
        yield sockets
    finally:
        process.send_signal(signal.SIGINT)  # "fast" shutdown: ends client sessions, then a clean checkpoint
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        shutil.rmtree(root, ignore_errors=True)


def wait_until_ready(sockets, process):
    import psycopg

    deadline = time.monotonic() + START_SECONDS
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"postgres exited: {process.stderr.read()[-2000:]}")
        try:
            psycopg.connect(server_url(sockets, "postgres"), connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def server_url(sockets, database):
    return f"postgresql://postgres@/{database}?host={sockets}&port={PORT}"


@pytest.fixture
def postgres_url(postgres_server):
    import psycopg
    from psycopg import sql

    name = f"feedback_test_{next(database_numbers)}"
    with psycopg.connect(server_url(postgres_server, "postgres"), autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return server_url(postgres_server, name)
