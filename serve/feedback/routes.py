"""The feedback routes: POST /feedback for the page, GET /feedback/export and /stats for the operator."""

import base64
import datetime
import json
import re
import time

from flask import Blueprint, Response, current_app, redirect, render_template, request, stream_with_context
from werkzeug.exceptions import (
    BadRequest, HTTPException, NotFound, RequestEntityTooLarge, ServiceUnavailable, TooManyRequests,
    UnsupportedMediaType,
)

from feedback.entry import DIGIT_MODE
from feedback.store import ACCEPT_RULES, ACCEPTED, REJECTED, QuotaExceeded, StoreError, StoreFullError
from serve.decode import InputError, TooLargeError
from serve.feedback import StoreUnavailable, stats
from serve.feedback.limits import RateLimited
from serve.feedback.operator import (
    NO_STORE, checked_ids, csrf_token, is_operator, login_page, require_form_operator, require_operator, sign_in,
    sign_out,
)
from serve.feedback.parse import parse_entry
from serve.feedback.reading import read_again

blueprint = Blueprint("feedback", __name__, template_folder="templates")

MAX_REVIEW_BATCH = 500  # entries one review form may accept, reject or delete
DAY_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}")


class InsufficientStorage(HTTPException):
    code = 507
    description = "the feedback store is full"


@blueprint.before_request
def feedback_enabled():
    if request.endpoint == "feedback.feedback_status":
        return
    feedback = current_app.extensions["feedback"]
    if feedback is None:
        raise NotFound("feedback is turned off on this server (SERVE_FEEDBACK=off)")
    try:
        feedback.open()
    except StoreUnavailable as error:
        raise ServiceUnavailable("feedback is unavailable: its store cannot be opened; try again later",
                                 retry_after=error.retry_after) from None


@blueprint.get("/feedback")
def feedback_status():
    """Lets the page know whether to offer its buttons (a 404 would be an error in the browser's console).

    "unavailable": the store cannot be opened now; Retry-After says when the server tries it again.
    """
    feedback = current_app.extensions["feedback"]
    state = "off" if feedback is None else "on" if feedback.available else "unavailable"
    response = current_app.json.response({"feedback": state})
    if state == "unavailable":
        response.headers["Retry-After"] = str(feedback.retry_after)
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
        feedback.limits.check(request.remote_addr)  # counted in the store: a full or failing one says so here
    except RateLimited as error:
        raise TooManyRequests(str(error), retry_after=error.retry_after) from None
    except StoreError as error:
        raise store_refusal(error) from None
    model = current_app.extensions["model"]
    try:
        number_verdicts = model.numbers.verdicts if model.numbers is not None else None
        entry = parse_entry(parse_json(request.get_data(cache=False)), model.labels, model.verdicts, model.pad, number_verdicts)
        entry = read_again(entry, model, current_app.config["MAX_IMAGE_PIXELS"])
    except TooLargeError as error:
        raise RequestEntityTooLarge(str(error)) from None
    except InputError as error:
        raise BadRequest(str(error)) from None
    try:
        is_new = feedback.store.add(entry, byte_quota=feedback.byte_quota(request.remote_addr))
    except QuotaExceeded as error:
        raise TooManyRequests(str(error), retry_after=error.retry_after) from None
    except StoreError as error:
        raise store_refusal(error) from None
    return {"id": entry.id}, 201 if is_new else 200


def store_refusal(error):
    """The HTTP error for a store that did not take an entry: 507 when full, else 503 (logged either way)."""
    current_app.logger.error("%s", error)
    if isinstance(error, StoreFullError):
        return InsufficientStorage("the feedback store is full (entries awaiting review count too); "
                                   "the entry was not stored")
    return ServiceUnavailable("the feedback store cannot take entries now; try again later",
                              retry_after=store_retry_seconds())


def store_unavailable(error):
    """A store that failed an operator's read or write: 503 with the store's Retry-After."""
    return ServiceUnavailable(str(error), retry_after=store_retry_seconds())


def store_retry_seconds():
    return round(current_app.extensions["feedback"].retry_seconds) or 1


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
        raise store_unavailable(error) from None

    def lines():
        if first is not None:
            yield export_line(first)
            yield from map(export_line, entries)

    response = Response(stream_with_context(lines()), mimetype="application/x-ndjson")
    response.headers["Cache-Control"] = NO_STORE
    response.headers["Content-Disposition"] = 'attachment; filename="feedback.jsonl"'
    return response


def export_line(entry):
    """One entry as the JSON line POST /feedback took, plus when it arrived, whether it was a correction, its
    review, the server's held-out draw (null until accepted) and the server's own reading."""
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
        "review": entry["review"],
        "held_out": entry["held_out"],
        "server_read": entry["server_read"],
        "read_model": entry["read_model"],
    }
    return json.dumps(document, separators=(",", ":")) + "\n"


@blueprint.get("/stats")
def stats_page():
    if not is_operator():
        return login_page(None)
    try:
        data = stats.page_data(current_app.extensions["feedback"].store, current_app.extensions["model"].pad)
    except StoreError as error:
        raise store_unavailable(error) from None
    response = Response(render_template("stats.html", csrf=csrf_token(), **data), mimetype="text/html")
    response.headers["Cache-Control"] = NO_STORE
    return response


blueprint.add_url_rule("/stats", "sign_in", sign_in, methods=["POST"])
blueprint.add_url_rule("/stats/sign-out", "sign_out", sign_out, methods=["POST"])


@blueprint.post("/stats/review")
def review():
    """Accept or reject the ticked entries (form fields `id`, `decision`); back to /stats."""
    require_form_operator()
    decision = request.form.get("decision")
    if decision not in (ACCEPTED, REJECTED):
        raise BadRequest(f'"decision" must be {ACCEPTED} or {REJECTED}')
    ids = checked_ids(request.form, MAX_REVIEW_BATCH)
    try:
        current_app.extensions["feedback"].store.review(ids, decision)
    except StoreError as error:
        raise store_unavailable(error) from None
    return redirect("/stats#review", code=303)


def is_day(text):
    """Whether `text` is a real calendar date written YYYY-MM-DD (2024-13-01 matches the pattern, not the calendar)."""
    if not DAY_PATTERN.fullmatch(text):
        return False
    try:
        datetime.date.fromisoformat(text)
    except ValueError:
        return False
    return True


@blueprint.post("/stats/delete")
def delete():
    """Delete the ticked entries (form fields `id`), or every entry of one day (`day`, YYYY-MM-DD); back to /stats."""
    require_form_operator()
    day = request.form.get("day")
    if day is not None:
        if not is_day(day):
            raise BadRequest('"day" must be a UTC date, YYYY-MM-DD')
        ids = []
    else:
        ids = checked_ids(request.form, MAX_REVIEW_BATCH)
    try:
        current_app.extensions["feedback"].store.delete(ids, day)
    except StoreError as error:
        raise store_unavailable(error) from None
    return redirect("/stats", code=303)


@blueprint.post("/stats/rule")
def set_rule():
    """The rule for new entries (form field `rule`, one of ACCEPT_RULES); back to /stats."""
    require_form_operator()
    rule = request.form.get("rule")
    if rule not in ACCEPT_RULES:
        raise BadRequest(f'"rule" must be one of {", ".join(ACCEPT_RULES)}')
    try:
        current_app.extensions["feedback"].store.set_accept_rule(rule)
    except StoreError as error:
        raise store_unavailable(error) from None
    return redirect("/stats#review", code=303)
