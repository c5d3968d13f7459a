"""GET /metrics: Prometheus's text format from the official prometheus_client, behind the admin token.

Requests by route and status, a latency histogram by route, decode refusals by reason, the readers' ids,
and the feedback store's state as its last write found it. Under the supervisor each worker writes its
numbers to files in PROMETHEUS_MULTIPROC_DIR (set by serve/workers.py) and any worker answers /metrics with
the sum over all of them, so a scrape sees the whole server whichever worker takes it.
"""

import os
import time

from flask import Blueprint, Response, current_app, request
from prometheus_client import (
    CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess,
)

from serve.feedback.operator import require_operator

blueprint = Blueprint("metrics", __name__)

REQUESTS = Counter("serve_requests", "HTTP requests answered by the app", ["route", "method", "status"])
LATENCY = Histogram("serve_request_seconds", "Time in the app per request", ["route"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
REFUSALS = Counter("serve_decode_refusals", "Images refused by /predict and /number", ["route", "reason"])
MODEL = Gauge("serve_model_info", "The readers this server loaded (value 1)", ["reader", "model", "variant"],
              multiprocess_mode="max")
# Labelled, so that it is absent (not a misleading 0) until a feedback write has found the store either way.
STORE_UP = Gauge("serve_feedback_store_up", "1 if the last feedback write reached the store, 0 if it answered 503",
                 ["store"], multiprocess_mode="mostrecent")

READING_ROUTES = ("/predict", "/number")
# docs/API.md's error tables: what each refusal of an image means.
REFUSAL_REASONS = {400: "unreadable", 413: "too_large", 415: "unsupported_type", 422: "no_ink"}


def init_app(app):
    """Count every request of `app` and publish its readers; /metrics answers with the operator's token."""
    model = app.extensions["model"]
    MODEL.labels("digits", model.model_id, model.variant).set(1)
    if model.numbers is not None:
        MODEL.labels("numbers", model.numbers.model_id, model.numbers.variant).set(1)
    app.extensions["metrics.store"] = "postgresql" if app.config.get("FEEDBACK_URL") else "sqlite"
    app.before_request(start_clock)
    app.after_request(count)
    app.register_blueprint(blueprint)


def start_clock():
    request.environ["serve.metrics.start"] = time.perf_counter()


def count(response):
    route = request.url_rule.rule if request.url_rule is not None else "unmatched"  # never the raw path
    REQUESTS.labels(route, request.method, str(response.status_code)).inc()
    started = request.environ.get("serve.metrics.start")
    if started is not None:
        LATENCY.labels(route).observe(time.perf_counter() - started)
    if route in READING_ROUTES and response.status_code in REFUSAL_REASONS:
        REFUSALS.labels(route, REFUSAL_REASONS[response.status_code]).inc()
    if route == "/feedback" and request.method == "POST":
        if response.status_code in (200, 201, 503):
            STORE_UP.labels(current_app.extensions["metrics.store"]).set(response.status_code != 503)
    return response


@blueprint.get("/metrics")
def metrics():
    require_operator()
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST,
                    headers={"Cache-Control": "no-store"})
