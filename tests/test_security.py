"""Exposure: security headers on every response, no banner, no traversal or listing, honest MIME types, caching."""

import gzip
import os

import pytest

from serve import files
from serve.app import SECURITY_HEADERS
from tests.server_fixtures import encode, enlarge, post, request

EXPECTED_CSP = (
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; connect-src 'self'; "
    "img-src 'self' data: blob:; style-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
WASM_BYTES = os.urandom(3000) + b"\0" * 20_000  # compressible, like real wasm


@pytest.fixture
def web_server(start_server, tmp_path):
    """A server whose web/ is a known tree, next to a secret it must never serve."""
    (tmp_path / "secret.txt").write_text("TOP SECRET outside web/")
    web = tmp_path / "web"
    (web / "vendor").mkdir(parents=True)
    (web / "sub" / "deeper").mkdir(parents=True)
    (web / "node_modules" / "pkg").mkdir(parents=True)
    (web / "index.html").write_text("<!doctype html><title>kiosk</title>" + "<p>digits</p>" * 200)
    (web / "main.js").write_text("export const answer = 42;\n" * 100)
    (web / "vendor" / "runtime.mjs").write_text("export default 1;\n")
    (web / "vendor" / "runtime.wasm").write_bytes(WASM_BYTES)
    (web / "style.css").write_text("body { margin: 0 }\n")
    (web / "icon.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    (web / "sub" / "deeper" / "note.txt").write_text("deep file")
    (web / ".env").write_text("PASSWORD=hunter2")
    (web / "node_modules" / "pkg" / "package.json").write_text('{"name": "pkg"}')
    return start_server(WEB_DIR=str(web))


def all_kinds_of_responses(base_url, manifest, digit):
    """One request of every kind the server answers, errors included."""
    model_file = manifest["variants"][manifest["default_variant"]]["file"]
    png = encode(enlarge(digit), "PNG")
    return {
        "page": request(base_url, "GET", "/"),
        "module": request(base_url, "GET", "/main.js"),
        "wasm gzip": request(base_url, "GET", "/vendor/runtime.wasm", headers={"Accept-Encoding": "gzip"}),
        "manifest": request(base_url, "GET", "/model/manifest.json"),
        "model": request(base_url, "GET", f"/model/{model_file}"),
        "not modified": request(base_url, "GET", "/model/manifest.json", headers={"If-None-Match": "*"}),
        "healthz": request(base_url, "GET", "/healthz"),
        "prediction": post(base_url, png, "image/png"),
        "400": post(base_url, b"junk", "image/png"),
        "404": request(base_url, "GET", "/no/such/file.js"),
        "405": request(base_url, "GET", "/predict"),
        "405 page": request(base_url, "POST", "/index.html", b"x", {"Content-Type": "text/plain"}),
        "413": post(base_url, b"\0" * (5 * 1024 * 1024 + 1), "image/png"),
        "415": post(base_url, b"x", "text/plain"),
        "422": post(base_url, encode(enlarge(digit * 0), "PNG"), "image/png"),
        "options": request(base_url, "OPTIONS", "/predict"),
        "head": request(base_url, "HEAD", "/"),
    }


def test_security_headers_on_every_response_and_no_banner(web_server, manifest, confident_digits):
    assert SECURITY_HEADERS["Content-Security-Policy"] == EXPECTED_CSP
    answers = all_kinds_of_responses(web_server, manifest, confident_digits[0][1])
    assert answers["not modified"].status == 304 and answers["413"].status == 413
    for kind, answer in answers.items():
        assert answer.headers["Content-Security-Policy"] == EXPECTED_CSP, kind
        assert answer.headers["X-Content-Type-Options"] == "nosniff", kind
        assert "Server" not in answer.headers, kind
        assert "Via" not in answer.headers, kind
        assert "waitress" not in str(answer.headers).lower(), kind
        if answer.status >= 400:
            assert answer.headers["Content-Type"] == "application/json", kind
            assert set(answer.json()) == {"error"}, kind


def test_answers_written_by_waitress_itself_carry_no_banner(live_server):
    answer = request(live_server, "GET", "/healthz", headers={"X-Padding": "a" * 20_000})
    assert answer.status == 431
    assert "Server" not in answer.headers and b"waitress" not in answer.body.lower()


def test_kiosk_page_and_vendored_runtime_are_served(live_server):
    page = request(live_server, "GET", "/")
    assert page.status == 200 and page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert page.headers["Content-Security-Policy"] == EXPECTED_CSP
    web = os.path.join(os.path.dirname(os.path.dirname(__file__)), "web")
    for name in sorted(os.listdir(os.path.join(web, "vendor"))):
        if name.endswith((".mjs", ".wasm")):
            answer = request(live_server, "GET", f"/vendor/{name}")
            assert answer.status == 200
            expected = "application/wasm" if name.endswith(".wasm") else "text/javascript; charset=utf-8"
            assert answer.headers["Content-Type"] == expected


@pytest.mark.parametrize("path, content_type", [
    ("/", "text/html; charset=utf-8"),
    ("/index.html", "text/html; charset=utf-8"),
    ("/main.js", "text/javascript; charset=utf-8"),
    ("/vendor/runtime.mjs", "text/javascript; charset=utf-8"),
    ("/vendor/runtime.wasm", "application/wasm"),
    ("/style.css", "text/css; charset=utf-8"),
    ("/icon.svg", "image/svg+xml"),
    ("/sub/deeper/note.txt", "text/plain; charset=utf-8"),
])
def test_static_files_have_their_mime_types_and_are_revalidated(web_server, path, content_type):
    answer = request(web_server, "GET", path)
    assert answer.status == 200
    assert answer.headers["Content-Type"] == content_type
    assert answer.headers["Cache-Control"] == "no-cache"
    assert answer.headers["ETag"]
    again = request(web_server, "GET", path, headers={"If-None-Match": answer.headers["ETag"]})
    assert again.status == 304 and again.body == b""


def test_wasm_is_gzipped_when_the_client_accepts_it(web_server):
    plain = request(web_server, "GET", "/vendor/runtime.wasm")
    zipped = request(web_server, "GET", "/vendor/runtime.wasm", headers={"Accept-Encoding": "gzip, deflate, br"})
    refused = request(web_server, "GET", "/vendor/runtime.wasm", headers={"Accept-Encoding": "gzip;q=0, br"})
    assert plain.body == WASM_BYTES and "Content-Encoding" not in plain.headers
    assert refused.body == WASM_BYTES and "Content-Encoding" not in refused.headers
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert len(zipped.body) < len(WASM_BYTES) and gzip.decompress(zipped.body) == WASM_BYTES
    for answer in (plain, zipped, refused):
        assert answer.headers["Content-Type"] == "application/wasm"
        assert "Accept-Encoding" in answer.headers["Vary"]
    assert zipped.headers["ETag"] != plain.headers["ETag"]  # caches must not mix the two encodings
    again = request(web_server, "GET", "/vendor/runtime.wasm",
                    headers={"Accept-Encoding": "gzip", "If-None-Match": zipped.headers["ETag"]})
    assert again.status == 304


def test_precompress_prepares_every_compressible_file(tmp_path, web_server):
    web = tmp_path / "web"
    files.gzip_cache.clear()
    files.precompress(web)
    assert set(files.gzip_cache) == {str(web / "index.html"), str(web / "main.js"), str(web / "vendor" / "runtime.wasm")}


def test_a_changed_file_is_served_fresh(web_server, tmp_path):
    first = request(web_server, "GET", "/main.js", headers={"Accept-Encoding": "gzip"})
    (tmp_path / "web" / "main.js").write_text("export const answer = 43;\n" * 100)
    second = request(web_server, "GET", "/main.js", headers={"Accept-Encoding": "gzip"})
    assert gzip.decompress(second.body).startswith(b"export const answer = 43;")
    assert second.headers["ETag"] != first.headers["ETag"]


TRAVERSALS = [
    "/../secret.txt",
    "/%2e%2e/secret.txt",
    "/%2E%2E/secret.txt",
    "/%2e%2e%2fsecret.txt",
    "/..%2fsecret.txt",
    "/sub/../../secret.txt",
    "/sub/%2e%2e/%2e%2e/secret.txt",
    "/sub/deeper/..%2f..%2f..%2fsecret.txt",
    "/..\\secret.txt",
    "/%5c..%5csecret.txt",
    "/sub\\..\\..\\secret.txt",
    "//etc/passwd",
    "/%2fetc%2fpasswd",
    "/etc/passwd",
    "/model/..%2f..%2fsecret.txt",
    "/model/%2e%2e%2fmanifest.json",
    "/model/../serve/app.py",
    "/vendor/runtime.wasm%00.txt",
    "/.env",
    "/sub/./../.env",
    "/%2eenv",
    "/node_modules/pkg/package.json",
    "/sub/",
    "/sub",
    "/vendor/",
    "/sub/deeper/",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_no_path_traversal_hidden_files_or_directory_listing(web_server, path):
    answer = request(web_server, "GET", path)
    assert answer.status in (400, 404), (answer.status, answer.body[:200])
    assert answer.headers["Content-Type"] == "application/json"
    assert b"SECRET" not in answer.body and b"hunter2" not in answer.body and b"root:" not in answer.body
    assert answer.headers["Content-Security-Policy"] == EXPECTED_CSP


def test_model_route_serves_only_manifest_files(live_server, manifest):
    assert request(live_server, "GET", "/model/").status == 404
    assert request(live_server, "GET", "/model/digits.onnx").status == 404
    for variant in manifest["variants"].values():
        assert request(live_server, "GET", f"/model/{variant['file']}").status == 200
