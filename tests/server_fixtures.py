"""Live-server fixtures (owned by the serve engineer): the real app under real waitress on 127.0.0.1, port 0.

- `live_server`: session-wide base URL ("http://127.0.0.1:PORT") of create_app() with default config.
- `start_server(**config)`: start another server with config overrides (e.g. ARTIFACTS_DIR for fault
  tests); returns its base URL; stopped when the test ends.
"""

import threading

import pytest

from serve.app import create_app
from serve.server import create_server, stop_server


def run_in_thread(app, **server_options):
    """Serve `app` from a daemon thread; returns (server, base_url)."""
    server = create_server(app, host="127.0.0.1", port=0, **server_options)
    thread = threading.Thread(target=server.run, name=f"waitress-{server.effective_port}", daemon=True)
    thread.start()
    return server, f"http://127.0.0.1:{server.effective_port}"


@pytest.fixture(scope="session")
def live_server():
    server, base_url = run_in_thread(create_app())
    yield base_url
    stop_server(server)


@pytest.fixture
def start_server():
    servers = []

    def start(server_options=None, **config):
        server, base_url = run_in_thread(create_app(config), **(server_options or {}))
        servers.append(server)
        return base_url

    yield start
    for server in servers:
        stop_server(server)
