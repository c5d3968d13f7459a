"""The server as a program: no TensorFlow, refusing a bad model, flags and environment, CLI, slow clients, logs."""

import hashlib
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import time

import pytest
from PIL import Image

from serve.__main__ import build_app, parse_args
from serve.app import create_app
from serve.model import ModelError
from tests.conftest import ARTIFACTS_DIR, ROOT
from tests.server_fixtures import encode, enlarge, post, post_json, request

FORBIDDEN_MODULES = ("tensorflow", "keras", "tf2onnx", "onnx", "train", "convert", "sklearn", "jax", "torch")


def run_python(*args, env=None, timeout=60):
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def test_serving_never_imports_tensorflow_train_or_convert(confident_digits):
    png = encode(enlarge(confident_digits[0][1]), "PNG").hex()
    script = f"""
import json, sys
from serve.app import create_app
import serve.__main__, serve.predict
app = create_app()
answer = app.test_client().post("/predict", data=bytes.fromhex("{png}"), content_type="image/png")
assert answer.status_code == 200, answer.data
print(json.dumps(sorted(sys.modules)))
"""
    result = run_python("-c", script)
    assert result.returncode == 0, result.stderr
    modules = json.loads(result.stdout)
    leaked = [name for name in modules if name.split(".")[0] in FORBIDDEN_MODULES]
    assert leaked == []
    assert "onnxruntime" in modules and "flask" in modules  # the check looked at a real import list


@pytest.fixture
def artifacts_copy(tmp_path, manifest):
    """A private copy of artifacts/ to break."""
    copy = tmp_path / "artifacts"
    shutil.copytree(ARTIFACTS_DIR, copy)
    return copy


def model_file_in(artifacts_dir, manifest, variant=None):
    return artifacts_dir / manifest["variants"][variant or manifest["default_variant"]]["file"]


def remove_model(artifacts, manifest):
    model_file_in(artifacts, manifest).unlink()


def truncate_model(artifacts, manifest):
    path = model_file_in(artifacts, manifest)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def flip_a_byte(artifacts, manifest):
    path = model_file_in(artifacts, manifest)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def remove_other_variant(artifacts, manifest):
    other = next(name for name in manifest["variants"] if name != manifest["default_variant"])
    model_file_in(artifacts, manifest, other).unlink()


def remove_manifest(artifacts, manifest):
    (artifacts / "manifest.json").unlink()


def corrupt_manifest(artifacts, manifest):
    (artifacts / "manifest.json").write_text('{"variants": ')


def manifest_points_outside(artifacts, manifest):
    edited = json.loads(json.dumps(manifest))
    edited["variants"][manifest["default_variant"]]["file"] = "../../etc/passwd"
    (artifacts / "manifest.json").write_text(json.dumps(edited))


def manifest_without_labels(artifacts, manifest):
    edited = {key: value for key, value in manifest.items() if key != "labels"}
    (artifacts / "manifest.json").write_text(json.dumps(edited))


def manifest_without_a_pad(artifacts, manifest):
    edited = {key: value for key, value in manifest.items() if key != "pad"}
    (artifacts / "manifest.json").write_text(json.dumps(edited))


def garbage_with_matching_hash(artifacts, manifest):
    """Not an ONNX graph at all, yet the manifest vouches for it: onnxruntime must refuse it cleanly."""
    garbage = b"this is not an onnx model" * 100
    path = model_file_in(artifacts, manifest)
    path.write_bytes(garbage)
    edited = json.loads(json.dumps(manifest))
    entry = edited["variants"][manifest["default_variant"]]
    entry["sha256"], entry["bytes"] = hashlib.sha256(garbage).hexdigest(), len(garbage)
    (artifacts / "manifest.json").write_text(json.dumps(edited))


FAULTS = {
    remove_model: "missing",
    truncate_model: "truncated",
    flip_a_byte: "sha256",
    remove_other_variant: "missing",
    remove_manifest: "manifest",
    corrupt_manifest: "not a valid model manifest",
    manifest_points_outside: "not a plain file name",
    manifest_without_labels: "not a valid model manifest",
    manifest_without_a_pad: 'no valid "pad" section',
    garbage_with_matching_hash: "onnxruntime cannot load",
}


@pytest.mark.parametrize("fault", FAULTS, ids=[fault.__name__ for fault in FAULTS])
def test_a_broken_model_stops_the_start_with_a_one_line_reason(artifacts_copy, manifest, fault):
    fault(artifacts_copy, manifest)
    with pytest.raises(ModelError) as raised:
        create_app({"ARTIFACTS_DIR": str(artifacts_copy)})
    message = str(raised.value)
    assert "\n" not in message and FAULTS[fault] in message


@pytest.mark.parametrize("fault", [remove_model, truncate_model, flip_a_byte], ids=lambda fault: fault.__name__)
def test_python_m_serve_refuses_to_start_on_a_broken_model(artifacts_copy, manifest, fault):
    fault(artifacts_copy, manifest)
    result = run_python("-m", "serve", "--artifacts", str(artifacts_copy), "--port", "0")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("serve: refusing to start: "), result.stderr
    assert model_file_in(artifacts_copy, manifest).name in lines[0]


def test_unknown_variant_is_refused(manifest):
    with pytest.raises(ModelError, match="unknown model variant"):
        create_app({"MODEL_VARIANT": "fp64"})


def test_a_server_running_int8_tells_the_page_to_run_int8_too(start_server, manifest, confident_digits):
    base_url = start_server(MODEL_VARIANT="int8")
    served = json.loads(request(base_url, "GET", "/model/manifest.json").body)
    assert served["default_variant"] == "int8" and served["model_id"] != manifest["model_id"]
    label, digit = confident_digits[0]
    answer = post(base_url, encode(Image.fromarray(digit), "PNG"), "image/png").json()
    assert answer["digit"] == label
    assert answer["model"] == served["model_id"]


def test_files_changed_on_disk_after_start_are_never_served(start_server, artifacts_copy, manifest):
    base_url = start_server(ARTIFACTS_DIR=str(artifacts_copy))
    entry = manifest["variants"][manifest["default_variant"]]
    (artifacts_copy / entry["file"]).write_bytes(b"replaced behind the server's back")
    (artifacts_copy / "manifest.json").write_text("{}")
    served = request(base_url, "GET", f"/model/{entry['file']}")
    assert hashlib.sha256(served.body).hexdigest() == entry["sha256"]
    assert json.loads(request(base_url, "GET", "/model/manifest.json").body) == manifest


def test_defaults_bind_localhost_port_5000(monkeypatch):
    monkeypatch.delenv("HOST", raising=False)
    monkeypatch.delenv("PORT", raising=False)
    args = parse_args([])
    assert (args.host, args.port, args.variant) == ("127.0.0.1", 5000, None)


def test_host_and_port_from_environment_and_flags(monkeypatch):
    monkeypatch.setenv("HOST", "0.0.0.0")
    monkeypatch.setenv("PORT", "8080")
    args = parse_args([])
    assert (args.host, args.port) == ("0.0.0.0", 8080)
    args = parse_args(["--host", "127.0.0.2", "--port", "9000", "--threads", "2", "--variant", "int8"])
    assert (args.host, args.port, args.threads, args.variant) == ("127.0.0.2", 9000, 2, "int8")


def test_debug_is_never_on_in_production(monkeypatch):
    monkeypatch.setenv("FLASK_DEBUG", "1")
    monkeypatch.setenv("SERVE_DEBUG", "true")
    app = build_app(parse_args([]))
    assert app.debug is False and app.config["DEBUG"] is False
    assert create_app().debug is True  # the variables above really do switch a plain app to debug


def test_config_from_prefixed_environment(monkeypatch, start_server, confident_digits):
    monkeypatch.setenv("SERVE_MAX_BATCH", "1")
    base_url = start_server()
    png = encode(enlarge(confident_digits[0][1]), "PNG").hex()
    assert post_json(base_url, {"images": [png, png]}).status == 413


def test_python_m_serve_answers_on_localhost_and_logs_each_request(tmp_path, confident_digits):
    process = subprocess.Popen([sys.executable, "-m", "serve", "--port", "0", "--threads", "2"], cwd=ROOT,
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "HOST": "", "PORT": ""})
    try:
        banner = process.stderr.readline()
        match = re.search(r"on http://(127\.0\.0\.1):(\d+)", banner)
        assert match, banner
        base_url = f"http://127.0.0.1:{match.group(2)}"
        assert request(base_url, "GET", "/healthz").status == 200
        assert post(base_url, encode(enlarge(confident_digits[0][1]), "PNG"), "image/png").status == 200
        assert post(base_url, b"junk", "image/png").status == 400
        log_lines = [process.stderr.readline() for _ in range(3)]
    finally:
        process.terminate()
        process.wait(10)
    assert re.search(r"GET /healthz 200 \d+\.\d\dms$", log_lines[0]), log_lines
    assert re.search(r"POST /predict 200 \d+\.\d\dms$", log_lines[1]), log_lines
    assert re.search(r"POST /predict 400 \d+\.\d\dms$", log_lines[2]), log_lines


def test_empty_host_and_port_variables_fall_back_to_defaults(monkeypatch):
    monkeypatch.setenv("HOST", "")
    monkeypatch.setenv("PORT", "")
    args = parse_args([])
    assert (args.host, args.port) == ("127.0.0.1", 5000)


def test_predict_cli_reads_files_without_a_server(tmp_path, confident_digits, manifest):
    label, digit = confident_digits[3]
    good = tmp_path / "digit.png"
    enlarge(digit).save(good)
    blank = tmp_path / "blank.png"
    Image.new("L", (60, 60), 255).save(blank)
    missing = tmp_path / "missing.png"
    result = run_python("-m", "serve.predict", str(good), str(blank), str(missing))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert re.fullmatch(rf"{re.escape(str(good))}: {label} \(\d+\.\d%\)", lines[0])
    assert "no ink" in lines[1] and "cannot read file" in lines[2]

    result = run_python("-m", "serve.predict", "--json", "--variant", "int8", str(good))
    assert result.returncode == 0
    answer = json.loads(result.stdout)
    assert answer["file"] == str(good) and answer["digit"] == label and answer["model"] == f"{manifest['model_id']}-int8"


def test_slow_clients_do_not_hold_the_workers(start_server, confident_digits):
    base_url = start_server(server_options={"threads": 2})
    port = int(base_url.rsplit(":", 1)[1])
    stalled = []
    for _ in range(8):
        connection = socket.create_connection(("127.0.0.1", port))
        # Headers complete, body promised but never sent.
        connection.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                           b"Content-Length: 5000\r\n\r\n\x89PNG")
        stalled.append(connection)
    try:
        label, digit = confident_digits[0]
        answer = post(base_url, encode(enlarge(digit), "PNG"), "image/png")
        assert answer.status == 200 and answer.json()["digit"] == label
    finally:
        for connection in stalled:
            connection.close()


def test_stalled_connections_are_closed_after_the_channel_timeout(start_server):
    base_url = start_server(server_options={"channel_timeout": 1, "cleanup_interval": 1})
    port = int(base_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=20) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # headers never finished
        started = time.monotonic()
        assert connection.recv(1024) == b""  # closed by the server, not by our 20 s timeout
        assert time.monotonic() - started < 20


def test_request_log_line_has_method_path_status_latency(live_server, caplog):
    caplog.set_level(logging.INFO, logger="serve.access")
    request(live_server, "GET", "/healthz?probe=1")
    messages = [record.getMessage() for record in caplog.records if record.name == "serve.access"]
    assert any(re.fullmatch(r"GET /healthz 200 \d+\.\d\dms", message) for message in messages), messages
