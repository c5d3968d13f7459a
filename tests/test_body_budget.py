"""Bounded memory per process: request bodies within SERVE_BODY_BUDGET (serve/body_budget.py), a batch's
pixels within SERVE_MAX_BATCH_PIXELS, and the Deployment's pod (memory limit, memory-backed /tmp) filled
by large bodies from many clients at once without an OOM kill or a failed request."""

import base64
import http.client
import io
import os
import socket
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image, ImageDraw

from bench.large_images import PARALLEL_RESIDENT_BYTES
from tests.conftest import ROOT
from tests.front_fixtures import ServeProcess, wait_until
from tests.server_fixtures import post, post_json, request

MIB = 1024 * 1024
DEPLOYMENT = ROOT / "deploy" / "k8s" / "deployment.yaml"


def noise_png(side, seed=0):
    """An RGB PNG of noise: it does not compress, so the body is about 3 x side^2 bytes."""
    pixels = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, "PNG", compress_level=0)
    return buffer.getvalue()


def stroke_png(side):
    """A side x side black canvas with one white stroke: millions of pixels in a few KB."""
    image = Image.new("L", (side, side), 0)
    ImageDraw.Draw(image).line([(side // 2, side // 8), (side // 2, side * 7 // 8)], fill=255, width=side // 12)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def open_body(base_url, size, sent=0):
    """A connection that has sent the headers of a /predict with a `size`-byte body, and `sent` bytes of it."""
    host, port = base_url.removeprefix("http://").split(":")
    connection = socket.create_connection((host, int(port)), timeout=10)
    connection.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                       b"Content-Length: %d\r\n\r\n" % size + b"\0" * sent)
    return connection


def read_head(connection):
    answer = b""
    while b"\r\n\r\n" not in answer and (chunk := connection.recv(65536)):
        answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return head.decode("latin-1"), body


def test_a_body_over_the_budget_waits_until_the_budget_comes_back(start_server):
    base_url = start_server(BODY_BUDGET=12 * MIB)  # waitress takes bodies up to 10 MiB
    holding = open_body(base_url, 8 * MIB, sent=MIB)  # holds 8 MiB of the budget, its body one eighth sent
    time.sleep(0.3)
    body = noise_png(1200)
    assert 4 * MIB < len(body) < 5 * MIB
    answers = []
    waiting = threading.Thread(target=lambda: answers.append(post(base_url, body, "image/png")))
    waiting.start()
    waiting.join(2)
    assert waiting.is_alive() and not answers  # its body does not fit beside the 8 MiB one: it waits, unread
    assert post(base_url, stroke_png(280), "image/png").status == 200  # a small body still fits
    holding.close()  # a dropped connection gives its reservation back
    waiting.join(30)
    assert [answer.status for answer in answers] in ([200], [422])


def test_the_budget_must_hold_the_largest_body(start_server):
    with pytest.raises(ValueError, match="must hold the largest body"):
        start_server(BODY_BUDGET=MIB)


def test_a_batch_over_its_pixel_budget_is_a_json_413_before_the_image_is_decoded(start_server):
    base_url = start_server(MAX_BATCH_PIXELS=10_000_000)
    image = base64.b64encode(stroke_png(2000)).decode()  # 4 Mpx each
    fits = post_json(base_url, {"images": [image, image]})
    assert fits.status == 200 and len(fits.json()["predictions"]) == 2
    over = post_json(base_url, {"images": [image, image, image]})
    assert over.status == 413
    assert over.json()["error"] == ("images[2]: a batch's images may have 10000000 pixels in all, "
                                    "and the images before this one have 8000000")
    assert post_json(base_url, {"images": [image, image]}).status == 200


def test_the_default_batch_budget_refuses_32_of_the_largest_images(live_server):
    from serve.app import DEFAULT_CONFIG

    side = int(DEFAULT_CONFIG["MAX_IMAGE_PIXELS"] ** 0.5)
    image = base64.b64encode(stroke_png(side)).decode()
    answer = post_json(live_server, {"images": [image] * DEFAULT_CONFIG["MAX_BATCH"]})
    assert answer.status == 413 and answer.json()["error"].startswith("images[1]: a batch's images may have")


def quantity_bytes(text):
    """A Kubernetes quantity such as 384Mi, in bytes."""
    units = {"Ki": 1024, "Mi": MIB, "Gi": 1024 * MIB}
    return int(text[:-2]) * units[text[-2:]] if text[-2:] in units else int(text)


def pod_spec():
    deployment = yaml.safe_load(DEPLOYMENT.read_text())
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {item["name"]: item["value"] for item in container["env"] if "value" in item}
    (tmp,) = [volume for volume in pod["volumes"] if volume["name"] == "tmp"]
    return (quantity_bytes(container["resources"]["limits"]["memory"]), quantity_bytes(tmp["emptyDir"]["sizeLimit"]),
            int(env["SERVE_BODY_BUDGET"]), env)


def test_the_pods_tmp_and_memory_limit_follow_from_the_budgets():
    memory_limit, tmp_size, budget, _ = pod_spec()
    assert tmp_size >= budget  # every spooled body fits in /tmp
    # The server's measured bound with its worst decodes in parallel, plus the spool (a memory-backed
    # emptyDir counts against the pod's memory), with room to spare.
    assert memory_limit >= PARALLEL_RESIDENT_BYTES + tmp_size + 32 * MIB


def memory_cgroup(name):
    """A fresh cgroup (v1 memory controller) under this process's own; its path."""
    line = next(line for line in Path("/proc/self/cgroup").read_text().splitlines() if ":memory:" in line)
    path = Path("/sys/fs/cgroup/memory") / line.split(":", 2)[2].lstrip("/") / name
    path.mkdir()
    return path


def oom_kills(cgroup):
    fields = dict(line.split() for line in (cgroup / "memory.oom_control").read_text().splitlines())
    return int(fields.get("oom_kill", 0))


@pytest.fixture
def pod(tmp_path):
    """`python -m serve` as the Deployment runs it: its env, its memory limit (a cgroup), its /tmp (a tmpfs)."""
    assert os.geteuid() == 0, "the pod test needs root for a cgroup and a tmpfs (CI runs as root)"
    memory_limit, tmp_size, _, env = pod_spec()
    cgroup = memory_cgroup(f"digit-kiosk-pod-{os.getpid()}")
    (cgroup / "memory.limit_in_bytes").write_text(str(memory_limit))
    # The pod's /tmp is a tmpfs of its sizeLimit; mounted on a folder of its own and named by TMPDIR, not over
    # /tmp itself, which may hold the checkout (CI may clone there).
    pod_tmp = tmp_path / "pod-tmp"
    pod_tmp.mkdir()
    enter = (f"echo $$ > {cgroup}/cgroup.procs\n"
             f"mount -t tmpfs -o size={tmp_size},mode=1777 tmpfs {pod_tmp}\n")
    prefix = ["unshare", "--mount", "--propagation", "private", "sh", "-euc", enter + 'exec "$@"', "sh"]
    pod_env = {key: value for key, value in env.items() if key.startswith(("SERVE_", "WORKERS"))}
    server = ServeProcess(tmp_path / "pod.log", "--host", "127.0.0.1", "--port", "0", "--quiet", prefix=prefix,
                          env={**pod_env, "SERVE_BODY_BUDGET": os.environ.get("SERVE_BODY_BUDGET", pod_env["SERVE_BODY_BUDGET"]),
                               "TMPDIR": str(pod_tmp)})
    try:
        yield server, cgroup
    finally:
        server.stop()
        wait_until(lambda: not (cgroup / "cgroup.procs").read_text().strip(), 10)
        cgroup.rmdir()


def test_large_bodies_from_many_clients_fill_the_pod_without_an_oom_kill_or_a_failure(pod):
    """24 clients x 4.8 MB at once is 115 MB of bodies against a 64 MiB /tmp: without the budget (set
    SERVE_BODY_BUDGET=1073741824 to see it) the spool fills and requests fail."""
    server, cgroup = pod
    body = noise_png(1270)  # about 4.8 MB, under the 5 MiB body limit
    statuses, failures, lock = Counter(), [], threading.Lock()

    def client(seed):
        for _ in range(3):
            connection = http.client.HTTPConnection(server.host, server.port, timeout=60)
            try:
                connection.request("POST", "/predict", body=body, headers={"Content-Type": "image/png"})
                response = connection.getresponse()
                response.read()
                with lock:
                    statuses[response.status] += 1
            except (OSError, http.client.HTTPException) as error:
                with lock:
                    failures.append(repr(error))
            finally:
                connection.close()

    clients = [threading.Thread(target=client, args=(seed,)) for seed in range(24)]  # 115 MB of bodies at once
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join(300)
    assert failures == [], failures[:5]
    assert set(statuses) <= {200, 422} and sum(statuses.values()) == 3 * len(clients), statuses
    assert oom_kills(cgroup) == 0 and server.process.poll() is None
    assert request(f"http://{server.address}", "GET", "/healthz").status == 200
