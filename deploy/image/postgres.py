"""A real PostgreSQL for the fleet's shared feedback store: Debian's server on 127.0.0.1, stopped and started at will.

The pods run on the host's network (fleet.py), so they reach it at 127.0.0.1:PORT. Trust authentication on
loopback only: it lives for one check, in a temporary directory.
"""

import glob
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

START_SECONDS = 60


def server_binary(name):
    """`name` from the newest PostgreSQL under /usr/lib/postgresql (Debian's layout)."""
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda path: int(path.split("/")[4]))
    if not candidates:
        raise SystemExit(f"PostgreSQL's {name} is missing: `make postgres` installs Debian's")
    return candidates[-1]


class Postgres:
    def __init__(self, port, database="feedback"):
        self.port = port
        self.database = database
        self.root = Path(tempfile.mkdtemp(prefix="digit-kiosk-check-postgres-"))
        shutil.chown(self.root, "postgres", "postgres")
        self.data = self.root / "data"
        self.process = None
        subprocess.run([server_binary("initdb"), "--auth=trust", "--username=postgres", "--encoding=UTF8",
                        "--no-instructions", "-D", str(self.data)], user="postgres", check=True, capture_output=True)

    @property
    def url(self):
        return f"postgresql://postgres@127.0.0.1:{self.port}/{self.database}"

    def start(self):
        self.process = subprocess.Popen(
            [server_binary("postgres"), "-D", str(self.data), "-k", str(self.root), "-p", str(self.port),
             "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=60"],
            user="postgres", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.wait_until_ready()
        return self

    def wait_until_ready(self):
        import psycopg

        deadline = time.monotonic() + START_SECONDS
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres exited: {self.process.stderr.read()[-2000:]}")
            try:
                with psycopg.connect(self.url.rsplit("/", 1)[0] + "/postgres", connect_timeout=2, autocommit=True) as db:
                    if not db.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)).fetchone():
                        db.execute(f'CREATE DATABASE "{self.database}"')
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self):
        """A "fast" shutdown: client sessions are ended, as in an outage of the store."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def remove(self):
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
