"""The Flask app factory: `create_app(config)` loads the checked model once and wires the blueprints.

Run it with `python -m serve` (waitress); `flask --app serve.app run` is for development only.
"""

import logging
import threading
import time
from pathlib import Path

from flask import Flask, json, request
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from serve import api, feedback, files, metrics, openapi
from serve.body_budget import DEFAULT_BODY_BUDGET
from serve.decode import DEFAULT_MAX_IMAGE_PIXELS, DEFAULT_MAX_LARGE_DECODES, set_large_decode_limit, set_pixel_limit
from serve.drain import DEFAULT_DRAIN_DELAY, DEFAULT_DRAIN_TIMEOUT
from serve.model import Model

ROOT = Path(__file__).resolve().parent.parent

# One policy for every response, errors and static files included: only our own origin, plus the
# 'wasm-unsafe-eval' that onnxruntime-web needs to compile its WebAssembly.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; connect-src 'self'; "
        "img-src 'self' data: blob:; style-src 'self'; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
}

DEFAULT_CONFIG = dict(
    ARTIFACTS_DIR=str(ROOT / "artifacts"),
    WEB_DIR=str(ROOT / "web"),
    MODEL_VARIANT=None,  # None: the manifest's default_variant
    MAX_CONTENT_LENGTH=5 * 1024 * 1024,  # bytes of request body; more is a 413 (nginx's limit too: serve/front.py)
    MAX_IMAGE_PIXELS=DEFAULT_MAX_IMAGE_PIXELS,
    MAX_LARGE_DECODES=DEFAULT_MAX_LARGE_DECODES,  # images over MAX_DECODED_SIDE decoded at once; others wait
    MAX_BATCH=32,  # images in one {"images": [...]} request
    MAX_BATCH_PIXELS=DEFAULT_MAX_IMAGE_PIXELS,  # pixels of a batch's images in all: as many as one largest image
    BODY_BUDGET=DEFAULT_BODY_BUDGET,  # bytes of request bodies one process holds at once; more wait their turn
    MAX_FORM_PARTS=8,  # multipart needs one part; thousands would only cost parsing time
    DRAIN_DELAY=DEFAULT_DRAIN_DELAY,  # graceful stop (serve/drain.py): seconds of "not ready" before the socket closes
    DRAIN_TIMEOUT=DEFAULT_DRAIN_TIMEOUT,  # and then at most this long for requests in flight
    # Proxies in front that this server trusts to say who the client is (X-Forwarded-For) and whether it came
    # over TLS (X-Forwarded-Proto): 0 when clients reach the server directly, 1 behind `make front`'s nginx.
    # The per-client limits and the operator cookie's Secure flag rest on it.
    TRUSTED_PROXIES=0,
)

access_log = logging.getLogger("serve.access")


def create_app(config=None):
    """Build the app; raises serve.model.ModelError (one line) if the model cannot be trusted."""
    app = Flask(__name__, static_folder=None)
    app.config.from_mapping(DEFAULT_CONFIG, **feedback.CONFIG_DEFAULTS)
    app.config.from_prefixed_env("SERVE")
    if config:
        app.config.from_mapping(config)

    proxies = trusted_proxies(app.config)
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)
    set_pixel_limit(app.config["MAX_IMAGE_PIXELS"])
    set_large_decode_limit(app.config["MAX_LARGE_DECODES"])
    app.extensions["model"] = Model(app.config["ARTIFACTS_DIR"], app.config["MODEL_VARIANT"])
    app.json.sort_keys = False
    app.extensions["draining"] = threading.Event()  # set when the server stops: /readyz turns 503

    app.register_blueprint(api.blueprint)
    app.register_blueprint(openapi.blueprint)
    feedback.init_app(app)
    metrics.init_app(app)
    app.register_blueprint(files.blueprint)
    app.register_error_handler(HTTPException, error_as_json)
    app.before_request(start_timer)
    app.after_request(finish_response)
    return app


def trusted_proxies(config):
    """SERVE_TRUSTED_PROXIES as a count of proxies; anything else is a ConfigError (one line at start-up)."""
    value = config["TRUSTED_PROXIES"]
    if type(value) is not int or not 0 <= value <= 10:
        raise feedback.ConfigError(f"SERVE_TRUSTED_PROXIES must be how many proxies are in front, 0 to 10, not {value!r}")
    return value


def error_as_json(error):
    """Every HTTP error, 500 included, as {"error": "..."} with the right status and headers."""
    response = error.get_response()
    response.data = json.dumps({"error": error.description})
    response.content_type = "application/json"
    return response


def start_timer():
    request.environ["serve.start"] = time.perf_counter()


def finish_response(response):
    response.headers.update(SECURITY_HEADERS)
    if access_log.isEnabledFor(logging.INFO):
        started = request.environ.get("serve.start")
        milliseconds = (time.perf_counter() - started) * 1000 if started else 0.0
        access_log.info("%s %s %d %.2fms", request.method, request.path, response.status_code, milliseconds)
    return response
