"""Static files: the kiosk page from web/, and the model files named by the loaded manifest under /model/.

Page files are revalidated on every load (ETag, no-cache) so a deploy shows up at once; model files
are content-addressed by their hash, so browsers may keep them for a year without asking again.
Compressible files go out gzipped when the client accepts it, compressed once and kept in memory.
"""

import gzip
import mimetypes
import os
import threading
from pathlib import Path

from flask import Blueprint, Response, current_app, request, send_file
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.security import safe_join

blueprint = Blueprint("files", __name__)

# Explicit types for what the page uses; the platform's mime table differs between systems.
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
    ".wasm": "application/wasm",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
    ".onnx": "application/octet-stream",
}
COMPRESSIBLE = {".html", ".js", ".mjs", ".css", ".json", ".webmanifest", ".wasm", ".svg", ".txt"}
MIN_COMPRESS_BYTES = 1024
REVALIDATE = "no-cache"
IMMUTABLE = "public, max-age=31536000, immutable"
# Never served even if present under web/: npm's install tree and dotfiles (.git, .DS_Store, ...).
HIDDEN_SEGMENTS = {"node_modules"}

gzip_cache = {}  # path -> (mtime_ns, size, gzipped bytes)
gzip_lock = threading.Lock()


def content_type(path):
    suffix = Path(path).suffix.lower()
    return CONTENT_TYPES.get(suffix) or mimetypes.guess_type(path)[0] or "application/octet-stream"


def accepts_gzip():
    return request.accept_encodings["gzip"] > 0


def gzipped(path, stat):
    """The file's gzip encoding, compressed on first use and cached until the file changes."""
    key = str(path)
    cached = gzip_cache.get(key)
    if cached and cached[:2] == (stat.st_mtime_ns, stat.st_size):
        return cached[2]
    with gzip_lock:
        cached = gzip_cache.get(key)
        if cached and cached[:2] == (stat.st_mtime_ns, stat.st_size):
            return cached[2]
        with open(path, "rb") as file:
            data = gzip.compress(file.read(), compresslevel=6, mtime=0)
        gzip_cache[key] = (stat.st_mtime_ns, stat.st_size, data)
        return data


def precompress(web_dir):
    """Gzip every compressible file under web_dir now, so that the first page load does not wait for it."""
    for directory, subdirectories, names in os.walk(web_dir):
        subdirectories[:] = [name for name in subdirectories if not is_hidden(name)]
        for name in names:
            path = Path(directory, name)
            if path.suffix.lower() not in COMPRESSIBLE or is_hidden(name):
                continue
            try:
                stat = path.stat()
                if stat.st_size >= MIN_COMPRESS_BYTES:
                    gzipped(path, stat)
            except OSError:
                pass  # a file that vanished or is unreadable is answered 404 when asked for


def is_hidden(name):
    """Paths never served: dotfiles, npm's tree, and names no browser sends for a plain file."""
    return "\\" in name or "\0" in name or any(s.startswith(".") or s in HIDDEN_SEGMENTS for s in name.split("/"))


def send_page_file(path):
    """A file from web/, revalidated by ETag, gzipped when that helps and the client agrees."""
    try:
        stat = os.stat(path)
    except OSError:
        raise NotFound() from None
    etag = f"{stat.st_mtime_ns:x}-{stat.st_size:x}"
    mimetype = content_type(path)
    suffix = Path(path).suffix.lower()
    compressible = suffix in COMPRESSIBLE and stat.st_size >= MIN_COMPRESS_BYTES
    if compressible and accepts_gzip():
        response = Response(gzipped(path, stat), content_type=mimetype)
        response.headers["Content-Encoding"] = "gzip"
        response.set_etag(etag + "-gzip")
        response.last_modified = stat.st_mtime
    else:
        response = send_file(path, etag=etag, conditional=True, max_age=None)
        response.headers["Content-Type"] = mimetype
    if compressible:
        response.vary.add("Accept-Encoding")
    response.headers["Cache-Control"] = REVALIDATE
    return response.make_conditional(request)


def send_bytes(data, mimetype, etag, cache_control):
    response = Response(data, content_type=mimetype)
    response.set_etag(etag)
    response.headers["Cache-Control"] = cache_control
    return response.make_conditional(request)


@blueprint.get("/model/manifest.json")
def manifest():
    # The manifest read at start-up, not the file on disk now: it must describe the loaded model.
    model = current_app.extensions["model"]
    return send_bytes(model.manifest_bytes, "application/json", model.manifest_sha256, REVALIDATE)


@blueprint.get("/model/<name>")
def model_file(name):
    model = current_app.extensions["model"]
    if name not in model.files:
        raise NotFound(f"no model file {name!r}; /model/manifest.json lists them")
    return send_bytes(model.files[name], content_type(name), model.file_sha256[name], IMMUTABLE)


@blueprint.get("/")
def index():
    return page_file("index.html")


@blueprint.get("/<path:name>")
def page_file(name):
    path = resolve_page_path(name)
    if path is None:
        raise_other_method_or_not_found(name)
    return send_page_file(path)


def resolve_page_path(name):
    """The file under web/ that `name` means, or None (traversal, hidden, directory, missing)."""
    if is_hidden(name):
        return None
    path = safe_join(current_app.config["WEB_DIR"], name)
    if path is None or not os.path.isfile(path):
        return None
    return path


def raise_other_method_or_not_found(name):
    """GET /predict lands here (this route takes any path); say 405 there, not 404."""
    adapter = current_app.url_map.bind("")
    allowed = set(adapter.allowed_methods("/" + name)) - {"GET", "HEAD", "OPTIONS"}
    if allowed:
        raise MethodNotAllowed(valid_methods=sorted(allowed | {"OPTIONS"}))
    raise NotFound(f"no such file: /{name}")
