"""Live-server fixtures (owned by the serve engineer): the real app under real waitress on 127.0.0.1, port 0.

- `live_server`: session-wide base URL ("http://127.0.0.1:PORT") of create_app() with default config.
- `start_server(server_options=None, **config)`: another server with config overrides (e.g.
  ARTIFACTS_DIR for fault tests) and waitress options; returns its base URL; stopped after the test.
- `request(base_url, method, path, body=None, headers=None)`: one real HTTP exchange -> Answer.
"""

import http.client
import json
import threading
import urllib.parse
from dataclasses import dataclass

import pytest
from waitress import wasyncore

from serve.app import create_app
from serve.server import create_server


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self):
        return json.loads(self.body)


def request(base_url, method, path, body=None, headers=None, timeout=30):
    """Send one request on a fresh connection; the path goes on the wire exactly as given."""
    address = urllib.parse.urlsplit(base_url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=timeout)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return Answer(response.status, response.headers, response.read())
    finally:
        connection.close()


def post(base_url, body, content_type, path="/predict", **headers):
    headers = {"Content-Type": content_type, **headers} if content_type else headers
    return request(base_url, "POST", path, body, headers)


def post_json(base_url, document, path="/predict"):
    return post(base_url, json.dumps(document).encode(), "application/json", path=path)


class ServerThread:
    """waitress serving `app` from a daemon thread, stoppable: its loop polls a stop flag."""

    def __init__(self, app, **server_options):
        self.server = create_server(app, host="127.0.0.1", port=0, **server_options)
        self.base_url = f"http://127.0.0.1:{self.server.effective_port}"
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, name=f"waitress-{self.server.effective_port}", daemon=True)
        self.thread.start()

    def run(self):
        while not self.stopping.is_set():
            wasyncore.loop(timeout=0.2, map=self.server._map, count=1)
        # Closed from the loop's own thread, so select() never sees a closed descriptor.
        for channel in list(self.server._map.values()):
            channel.close()

    def stop(self):
        self.stopping.set()
        self.thread.join(10)
        self.server.task_dispatcher.shutdown(cancel_pending=True, timeout=5)


@pytest.fixture(scope="session")
def live_server():
    server = ServerThread(create_app())
    yield server.base_url
    server.stop()


@pytest.fixture
def start_server():
    servers = []

    def start(server_options=None, **config):
        servers.append(ServerThread(create_app(config), **(server_options or {})))
        return servers[-1].base_url

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def confident_digits(manifest, model_path):
    """One real MNIST test digit per label that the shipped model reads with confidence > 0.99.

    Returns [(label, uint8 [28, 28] white-on-black)], so encoding tests fail only because of encoding.
    """
    import numpy as np
    import onnxruntime

    from train.data import load_mnist

    dataset = load_mnist()
    session = onnxruntime.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    input_name, output_name = manifest["input"]["name"], manifest["outputs"]["probabilities"]["name"]
    chosen = {}
    for image, label in zip(dataset["x_test"][:2000], dataset["y_test"][:2000]):
        label = int(label)
        if label in chosen:
            continue
        pixels = image.astype(np.float32) / np.iinfo(image.dtype).max
        probabilities = session.run([output_name], {input_name: pixels})[0]
        if int(np.argmax(probabilities)) == label and probabilities[label] > 0.99:
            chosen[label] = image
        if len(chosen) == 10:
            break
    return sorted(chosen.items())


def enlarge(digit, side=280):
    """A 28x28 MNIST digit as a PIL greyscale image of side x side, white ink on black, like a canvas."""
    from PIL import Image

    return Image.fromarray(digit, "L").resize((side, side), Image.Resampling.BILINEAR)


def encode(image, image_format, **options):
    import io

    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()
