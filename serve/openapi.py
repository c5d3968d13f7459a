"""GET /openapi.json: the HTTP contract as an OpenAPI 3.1 document, built from the running app's own limits.

docs/API.md is the guide for people. tests/test_openapi.py holds the two to the same routes and limits,
checks this document with openapi-spec-validator and runs schemathesis against the real server with it.
"""

import base64
import io

from flask import Blueprint, current_app
from PIL import Image, ImageDraw

from serve.api import IMAGE_TYPES

blueprint = Blueprint("openapi", __name__)


def ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


def json_body(schema, description=None):
    answer = {"content": {"application/json": {"schema": schema}}}
    return {**answer, "description": description or "JSON"}


def errors(*statuses):
    """{"error": "..."} answers, each with what it means."""
    return {str(status): json_body(ref("Error"), description) for status, description in statuses}


EXAMPLE_ID = "0b9c6a1e-5f0d-4c3e-9a57-2f1d3b8e7c41"


def example_png():
    """A 28x28 pad with one stroke, base64: a real example, so a fuzzer's first request reaches a 200 or 201."""
    image = Image.new("L", (28, 28), 0)
    ImageDraw.Draw(image).line([(14, 4), (14, 24)], fill=255, width=3)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "string"}}}
OPERATOR = [{"bearer": []}, {"cookie": []}]


def probabilities(count):
    return {"type": "array", "items": {"type": "number", "minimum": 0, "maximum": 1},
            "minItems": count, "maxItems": count}


def schemas(config, labels):
    probability = {"type": "number", "minimum": 0, "maximum": 1}
    return {
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
        "Digit": {
            "type": "object", "required": ["digit", "confidence", "probabilities", "verdict", "not_digit", "model"],
            "properties": {"digit": {"type": "integer", "minimum": 0, "maximum": labels - 1},
                           "confidence": probability, "probabilities": probabilities(labels),
                           "verdict": {"enum": ["digit", "unsure", "not_digit"]}, "not_digit": probability,
                           "model": {"type": "string"}},
        },
        "Number": {
            "type": "object", "required": ["number", "digits", "confidence", "verdict", "not_number", "model"],
            "properties": {
                "number": {"type": "string", "pattern": "^[0-9]*$"},
                "digits": {"type": "array", "items": {
                    "type": "object", "required": ["digit", "confidence", "probabilities", "doubtful", "box"],
                    "properties": {"digit": {"type": "integer", "minimum": 0, "maximum": labels - 1},
                                   "confidence": probability, "probabilities": probabilities(labels),
                                   "doubtful": {"type": "boolean"},
                                   "box": {"type": "array", "items": {"type": "integer", "minimum": 0},
                                           "minItems": 4, "maxItems": 4}}}},
                "confidence": probability, "verdict": {"enum": ["number", "unsure", "not_number"]},
                "not_number": probability, "model": {"type": "string"}},
        },
        "Images": {
            "description": "exactly one of image, pixels, images",
            "oneOf": [
                {"type": "object", "required": ["image"],
                 "properties": {"image": {"type": "string", "description": "base64, or a data: URL"}}},
                {"type": "object", "required": ["pixels"],
                 "properties": {"pixels": {"type": "array", "items": {"type": "array", "items": {
                     "type": "number", "minimum": 0, "maximum": 255}}}}},
                {"type": "object", "required": ["images"],
                 "properties": {"images": {"type": "array", "items": {"type": "string"}, "minItems": 1,
                                           "maxItems": config["MAX_BATCH"]}}},
            ],
        },
        "Feedback": {
            "type": "object", "required": ["id", "model", "predicted", "verdict", "label", "image"],
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "mode": {"enum": ["digit", "number"]},
                "model": {"type": "string"},
                "predicted": {"type": ["integer", "string"]},
                "verdict": {"enum": ["digit", "unsure", "not_digit", "number", "not_number"]},
                "label": {"type": ["integer", "string"]},
                "image": {"type": "string", "description": "base64 PNG of the pad"},
                "strokes": {"type": ["array", "null"], "items": {"type": "array", "items": {
                    "type": "array", "items": {"type": "number"}, "minItems": 3, "maxItems": 3}}},
            },
        },
        "Stored": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}},
    }


def reading(answer, what, limits, extra_errors=()):
    """POST /predict or /number: an image in any of the accepted forms, one answer or a batch's."""
    png = example_png()
    image = {"schema": {"type": "string", "format": "binary"}}
    content = {mime: image for mime in IMAGE_TYPES}
    content["multipart/form-data"] = {"schema": {"type": "object", "required": ["image"], "properties": {
        "image": {"type": "string", "format": "binary"}}}}
    content["application/json"] = {"schema": ref("Images"), "examples": {
        "one": {"value": {"image": png}}, "batch": {"value": {"images": [png, png]}}}}
    batch = {"type": "object", "required": ["predictions"], "properties": {"predictions": {
        "type": "array", "items": ref(answer)}}}
    return {"post": {
        "operationId": f"read{answer}", "summary": f"read {what} in an image",
        "requestBody": {"required": True, "content": content,
                        "description": f"at most {limits['MAX_CONTENT_LENGTH']} bytes; an image at most "
                                       f"{limits['MAX_IMAGE_PIXELS']} pixels; a batch 1 to {limits['MAX_BATCH']} "
                                       f"images of {limits['MAX_BATCH_PIXELS']} pixels in all"},
        "responses": {
            "200": json_body({"oneOf": [ref(answer), batch]}, "the reading, or a batch's in order"),
            **errors((400, "unreadable input"), (413, "over a limit"), (415, "another Content-Type or encoding"),
                     (422, "no ink"), *extra_errors),
        },
    }}


def operator_get(operation_id, summary, content, parameters=()):
    return {"get": {
        "operationId": operation_id, "summary": summary, "security": OPERATOR, "parameters": list(parameters),
        "responses": {"200": {"description": summary, "content": content},
                      **errors((400, "a bad parameter"), (401, "no or a wrong token"), (404, "no admin token set")),
                      **errors((503, "the store cannot be read now"))},
    }}


IDS = {"type": ["string", "array"], "items": {"type": "string"}, "description": "one field per entry id"}


def operator_form(operation_id, summary, fields):
    """POST /stats/...: an operator's form (the Bearer token, or the session cookie and its CSRF token)."""
    properties = {"csrf": {"type": "string"}, **fields}
    return {"post": {
        "operationId": operation_id, "summary": summary, "security": OPERATOR,
        "requestBody": {"required": bool(fields), "content": {"application/x-www-form-urlencoded": {
            "schema": {"type": "object", "properties": properties}}}},
        "responses": {"303": {"description": "done: back to /stats"},
                      **errors((400, "a bad field"), (401, "no or a wrong token"), (403, "a missing or stale CSRF token"),
                               (404, "no admin token set"), (503, "the store cannot be written now"))},
    }}


def openapi_document(config, labels, model_id):
    """The document for an app with `config`, whose reader (`model_id`) has `labels` classes."""
    text = {"schema": {"type": "string"}}
    json_object = {"application/json": {"schema": {"type": "object"}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Digit kiosk", "version": "1",
                 "description": "Reads handwritten digits and numbers; docs/API.md is the guide. Every error "
                                "is JSON {\"error\": \"...\"}."},
        "paths": {
            "/predict": reading("Digit", "a digit", config),
            "/number": reading("Number", "a number", config, [(503, "this server has no number reader")]),
            "/feedback": {
                "get": {"summary": "whether feedback is on", "responses": {
                    "200": {**json_body({"type": "object", "required": ["feedback"],
                                         "properties": {"feedback": {"enum": ["on", "off", "unavailable"]}}}),
                            "headers": RETRY_AFTER},
                    "304": {"description": "unchanged (If-None-Match)"}}},
                "post": {"operationId": "addFeedback", "summary": "a visitor's confirmation or correction",
                         "requestBody": {"required": True, "description": f"at most {config['FEEDBACK_MAX_BODY']} bytes",
                                         "content": {"application/json": {"schema": ref("Feedback"), "example": {
                                             "id": EXAMPLE_ID, "model": model_id, "predicted": 1, "verdict": "digit",
                                             "label": 1, "image": example_png()}}}},
                         "responses": {
                             "201": {**json_body(ref("Stored"), "stored"), "links": {"ExportIt": {
                                 "operationId": "exportFeedback", "description": "the entry is in the export"}}},
                             "200": json_body(ref("Stored"), "that id was already stored"),
                             **errors((400, "a missing or wrong field"), (404, "feedback is off"),
                                      (413, "over a limit"), (415, "not application/json"), (507, "the store is full")),
                             "429": {**json_body(ref("Error"), "over the per-client rate"), "headers": RETRY_AFTER},
                             "503": {**json_body(ref("Error"), "the store cannot be written now"),
                                     "headers": RETRY_AFTER},
                         }},
            },
            "/feedback/export": operator_get(
                "exportFeedback", "every stored entry, one JSON object a line", {"application/x-ndjson": text},
                [{"name": "format", "in": "query", "schema": {"enum": ["jsonl"]}}]),
            "/stats": {
                "get": {"summary": "the operator's page", "security": OPERATOR, "responses": {
                    "200": {"description": "the page", "content": {"text/html": text}},
                    "401": {"description": "the token form", "content": {"text/html": text}},
                    **errors((404, "no admin token set"), (503, "the store cannot be read now"))}},
                "post": {"summary": "sign in with the token form", "requestBody": {"required": True, "content": {
                    "application/x-www-form-urlencoded": {"schema": {"type": "object", "properties": {
                        "token": {"type": "string"}, "form": {"type": "string"}}}}}},
                         "responses": {"303": {"description": "signed in: the cookie, and back to /stats"},
                                       "401": {"description": "the form again", "content": {"text/html": text}},
                                       **errors((404, "no admin token set")),
                                       "429": {**json_body(ref("Error"), "too many tries"), "headers": RETRY_AFTER}}},
            },
            "/stats/review": operator_form("reviewFeedback", "accept or reject entries", {
                "decision": {"enum": ["accepted", "rejected"]}, "id": IDS}),
            "/stats/delete": operator_form("deleteFeedback", "delete entries, or every entry of one day", {
                "id": IDS, "day": {"type": "string", "format": "date", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
                                      "description": "a UTC day, YYYY-MM-DD"}}),
            "/stats/rule": operator_form("setFeedbackRule", "the rule for new entries", {
                "rule": {"enum": ["none", "confirmations"]}}),
            "/stats/sign-out": operator_form("signOut", "end the operator's session", {}),
            "/metrics": operator_get("metrics", "Prometheus's text format", {"text/plain": text}),
            "/healthz": {"get": {"summary": "alive, and which readers are loaded", "responses": {
                "200": json_body({"type": "object", "required": ["status", "model", "variant"], "properties": {
                    "status": {"const": "ok"}, "model": {"type": "string"}, "variant": {"type": "string"},
                    "numbers": {"type": "object"}}})}}},
            "/readyz": {"get": {"summary": "taking new work", "responses": {
                "200": json_body({"type": "object", "required": ["status"], "properties": {
                    "status": {"const": "ready"}}}),
                **errors((503, "stopping"))}}},
            "/openapi.json": {"get": {"summary": "this document", "responses": {
                "200": {"description": "OpenAPI 3.1", "content": json_object}}}},
            "/model/manifest.json": {"get": {"summary": "the loaded model's manifest", "responses": {
                "200": {"description": "the manifest", "content": json_object}, "304": {"description": "unchanged"}}}},
            "/model/{file}": {"get": {
                "summary": "a model file the manifest names",
                "parameters": [{"name": "file", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "the file", "content": {"application/octet-stream": text}},
                              "304": {"description": "unchanged"}, **errors((404, "no such model file"))}}},
            "/": {"get": {"summary": "the kiosk page", "responses": {
                "200": {"description": "web/index.html", "content": {"text/html": text}},
                "304": {"description": "unchanged"}}}},
            "/{path}": {"get": {
                "summary": "a file of the page",
                "parameters": [{"name": "path", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "the file", "content": {"*/*": text}},
                              "304": {"description": "unchanged"}, **errors((404, "no such file"))}}},
        },
        "components": {
            "schemas": schemas(config, labels),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                                "cookie": {"type": "apiKey", "in": "cookie", "name": "kiosk_admin"}},
        },
    }


def with_security_headers(document, headers):
    """Every answer carries `headers` (serve/app.py's SECURITY_HEADERS), exactly: say so on each response."""
    required = {name: {"required": True, "schema": {"const": value}} for name, value in headers.items()}
    for item in document["paths"].values():
        for operation in item.values():
            for response in operation["responses"].values():
                response["headers"] = {**required, **response.get("headers", {})}
    return document


@blueprint.get("/openapi.json")
def openapi():
    from serve.app import SECURITY_HEADERS  # serve.app imports this module

    model = current_app.extensions["model"]
    document = openapi_document(current_app.config, len(model.manifest["labels"]), model.model_id)
    return with_security_headers(document, SECURITY_HEADERS)
