"""The feedback routes: POST /feedback for the page, GET /feedback/export and /stats for the operator."""

import base64
import hashlib
import hmac
import json
import os
import time

from flask import Blueprint, Response, current_app, redirect, render_template, request, stream_with_context
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import (
    BadRequest, HTTPException, NotFound, RequestEntityTooLarge, ServiceUnavailable, TooManyRequests,
    Unauthorized, UnsupportedMediaType,
)

from serve.decode import InputError, TooLargeError
from serve.feedback import stats
from serve.feedback.entry import DIGIT_MODE, parse_entry
from serve.feedback.limits import RateLimited
from serve.feedback.store import StoreError, StoreFullError

blueprint = Blueprint("feedback", __name__, template_folder="templates")

COOKIE_NAME = "kiosk_admin"
COOKIE_SECONDS = 8 * 3600
STORE_RETRY_SECONDS = 30
NO_STORE = "no-store"


class InsufficientStorage(HTTPException):
    code = 507
    description = "the feedback store is full"


@blueprint.before_request
def feedback_enabled():
    if current_app.extensions["feedback"] is None and request.endpoint != "feedback.feedback_status":
        raise NotFound("feedback is turned off on this server (SERVE_FEEDBACK=off)")


@blueprint.get("/feedback")
def feedback_status():
    """Lets the page know whether to offer its buttons (a 404 would be an error in the browser's console)."""
    response = current_app.json.response({"feedback": "off" if current_app.extensions["feedback"] is None else "on"})
    # Revalidated like the page, so a second visit costs a 304, not a download.
    response.headers["Cache-Control"] = "no-cache"
    response.add_etag()
    return response.make_conditional(request)


@blueprint.post("/feedback")
def add_feedback():
    feedback = current_app.extensions["feedback"]
    if request.mimetype != "application/json":
        raise UnsupportedMediaType("send the feedback as application/json")
    max_body = current_app.config["FEEDBACK_MAX_BODY"]
    if request.content_length is None or request.content_length > max_body:
        raise RequestEntityTooLarge(f"feedback body too large or of unknown length; the limit is {max_body} bytes")
    try:
        feedback.limits.check(request.remote_addr)
    except RateLimited as error:
        raise TooManyRequests(str(error), retry_after=error.retry_after) from None
    model = current_app.extensions["model"]
    try:
        number_verdicts = model.numbers.verdicts if model.numbers is not None else None
        entry = parse_entry(parse_json(request.get_data(cache=False)), model.labels, model.verdicts, model.pad, number_verdicts)
    except TooLargeError as error:
        raise RequestEntityTooLarge(str(error)) from None
    except InputError as error:
        raise BadRequest(str(error)) from None
    try:
        is_new = feedback.store.add(entry)
    except StoreFullError as error:
        current_app.logger.error("%s", error)
        raise InsufficientStorage("the feedback store is full; the entry was not stored") from None
    except StoreError as error:
        current_app.logger.error("%s", error)
        raise ServiceUnavailable("the feedback store cannot take entries now; try again later",
                                 retry_after=STORE_RETRY_SECONDS) from None
    return {"id": entry.id}, 201 if is_new else 200


def reject_constant(name):
    raise InputError(f"{name} is not a number JSON allows")


def parse_json(body):
    try:
        return json.loads(body, parse_constant=reject_constant)
    except RecursionError:
        raise InputError("JSON nested too deeply") from None
    except InputError:
        raise
    except ValueError as error:
        raise InputError(f"malformed JSON: {str(error)[:200]}") from None


@blueprint.get("/feedback/export")
def export():
    require_operator()
    if request.args.get("format", "jsonl") != "jsonl":
        raise BadRequest('the only export format is "jsonl"')
    store = current_app.extensions["feedback"].store
    try:
        entries = store.entries()
        first = next(entries, None)  # a store that cannot be read fails here, as a JSON 503, not mid-stream
    except StoreError as error:
        raise ServiceUnavailable(str(error), retry_after=STORE_RETRY_SECONDS) from None

    def lines():
        if first is not None:
            yield export_line(first)
            yield from map(export_line, entries)

    response = Response(stream_with_context(lines()), mimetype="application/x-ndjson")
    response.headers["Cache-Control"] = NO_STORE
    response.headers["Content-Disposition"] = 'attachment; filename="feedback.jsonl"'
    return response


def export_line(entry):
    """One entry as the JSON line POST /feedback took, plus when it arrived and whether it was a correction."""
    label = entry["label"]
    document = {
        "id": entry["id"],
        "received_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(entry["received_at"])),
        "mode": entry["mode"],
        "model": entry["model"],
        "predicted": entry["predicted"],
        "verdict": entry["verdict"],
        # A digit's label goes out as POST /feedback took it, a number; a number's stays a string ("007").
        "label": int(label) if entry["mode"] == DIGIT_MODE and label.isdigit() else label,
        "correct": entry["correct"],
        "image": base64.b64encode(entry["image"]).decode("ascii"),
        "strokes": json.loads(entry["strokes"]) if entry["strokes"] else None,
    }
    return json.dumps(document, separators=(",", ":")) + "\n"


@blueprint.get("/stats")
def stats_page():
    if not is_operator():
        return login_page(None)
    try:
        data = stats.page_data(current_app.extensions["feedback"].store, current_app.extensions["model"].pad)
    except StoreError as error:
        raise ServiceUnavailable(str(error), retry_after=STORE_RETRY_SECONDS) from None
    response = Response(render_template("stats.html", **data), mimetype="text/html")
    response.headers["Cache-Control"] = NO_STORE
    return response


@blueprint.post("/stats")
def sign_in():
    """The token form: a right token sets an HttpOnly, SameSite=Strict cookie and goes back to /stats."""
    token = admin_token()
    if not hmac.compare_digest(request.form.get("token", "").encode(), token.encode()):
        return login_page("That is not the admin token.")
    response = redirect("/stats", code=303)
    response.set_cookie(COOKIE_NAME, session_value(token), max_age=COOKIE_SECONDS, path="/", httponly=True,
                        samesite="Strict", secure=request.is_secure)
    return response


def login_page(message):
    response = Response(render_template("login.html", message=message), status=401, mimetype="text/html")
    response.headers["WWW-Authenticate"] = "Bearer"
    response.headers["Cache-Control"] = NO_STORE
    return response


def admin_token():
    """The configured token; without one the operator routes do not exist (404)."""
    token = current_app.extensions["feedback"].admin_token
    if not token:
        raise NotFound("the operator routes are off: no SERVE_ADMIN_TOKEN is configured")
    return token


def session_value(token):
    # The cookie carries a digest of the token, never the token itself.
    return hmac.new(token.encode(), b"digit-kiosk operator", hashlib.sha256).hexdigest()


def is_operator():
    """Whether the request has the token (Authorization: Bearer) or the sign-in cookie; compared in constant time."""
    token = admin_token()
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        return hmac.compare_digest(given.strip().encode(), token.encode())
    cookie = request.cookies.get(COOKIE_NAME, "")
    return hmac.compare_digest(cookie.encode(), session_value(token).encode())


def require_operator():
    if not is_operator():
        raise Unauthorized("this route needs Authorization: Bearer <SERVE_ADMIN_TOKEN>",
                           www_authenticate=WWWAuthenticate("bearer"))


def read_admin_token(config):
    """SERVE_ADMIN_TOKEN exactly as written (Flask would read a token such as 12e3 as a number)."""
    token = config.get("ADMIN_TOKEN")
    if token is not None and not isinstance(token, str):
        token = os.environ.get("SERVE_ADMIN_TOKEN", str(token))
    return token or None
