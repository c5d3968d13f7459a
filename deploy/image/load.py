"""Steady load for the rollout: clients posting digits to /predict and numbers to /number until told to stop.

Each request opens its own connection, as a kiosk's does after an idle moment, so a request never lands on
a connection that nginx is closing (a reload ends idle keep-alive connections). Every answer but a 200 is a
failure, and so is a connection error or a timeout.
"""

import http.client
import threading
import time
from collections import Counter

TIMEOUT_SECONDS = 30


class Load:
    def __init__(self, host, port, bodies, clients=4):
        """bodies: [(path, content type, bytes)], sent in turn by each client."""
        self.host, self.port, self.bodies = host, port, bodies
        self.outcomes = Counter()  # "200", "503", "ConnectionResetError", ...
        self.failures = []  # (seconds since start, path, outcome), the first few
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self.client, args=(index,), daemon=True) for index in range(clients)]
        self.started = None
        self.seconds = None

    def start(self):
        self.started = time.monotonic()
        for thread in self.threads:
            thread.start()
        return self

    def stop(self):
        self.stopping.set()
        for thread in self.threads:
            thread.join(TIMEOUT_SECONDS + 5)
        self.seconds = time.monotonic() - self.started
        return self

    def client(self, index):
        turn = index
        while not self.stopping.is_set():
            path, content_type, body = self.bodies[turn % len(self.bodies)]
            turn += 1
            outcome = self.send(path, content_type, body)
            with self.lock:
                self.outcomes[outcome] += 1
                if outcome != "200" and len(self.failures) < 20:
                    self.failures.append((round(time.monotonic() - self.started, 2), path, outcome))

    def send(self, path, content_type, body):
        connection = http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT_SECONDS)
        try:
            connection.request("POST", path, body=body, headers={"Content-Type": content_type, "Connection": "close"})
            response = connection.getresponse()
            response.read()
            return str(response.status)
        except (OSError, http.client.HTTPException) as error:
            return type(error).__name__
        finally:
            connection.close()

    @property
    def total(self):
        return sum(self.outcomes.values())

    @property
    def failed(self):
        return self.total - self.outcomes["200"]
