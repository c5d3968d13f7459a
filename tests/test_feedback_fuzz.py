"""Hostile input to POST /feedback, as tests/test_fuzz.py does for /predict: every answer is a stored 201/200
or a JSON 4xx, never a 5xx or a hang; nothing malformed reaches the store. FUZZ_EXAMPLES=N runs N per test."""

import json
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from serve.app import create_app
from tests.feedback_helpers import TOKEN, export, feedback_document, pad_png
from tests.server_fixtures import ServerThread, post
from tests.test_fuzz import FUZZ_SETTINGS, b64, image_bodies, json_values, serialise

STATUSES = {200, 201, 400, 413, 415}
FIELDS = ["id", "model", "predicted", "verdict", "label", "image", "strokes"]


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory):
    database = tmp_path_factory.mktemp("feedback-fuzz") / "feedback.sqlite"
    server = ServerThread(create_app({"FEEDBACK_DB": str(database), "ADMIN_TOKEN": TOKEN,
                                      "FEEDBACK_RATE_PER_MINUTE": 1e9, "FEEDBACK_MAX_PER_CLIENT_DAY": 10**9}))
    yield server.base_url
    server.stop()


field_values = {
    "id": st.one_of(st.uuids().map(str), st.text(max_size=40), json_values),
    "model": st.one_of(st.from_regex(r"[A-Za-z0-9._:+-]{1,100}", fullmatch=True), st.text(max_size=120), json_values),
    "predicted": st.one_of(st.integers(0, 9), st.integers(), json_values),
    "verdict": st.one_of(st.sampled_from(["digit", "unsure", "not_digit"]), st.text(max_size=10), json_values),
    "label": st.one_of(st.integers(0, 9), st.just("not_digit"), st.integers(), json_values),
    "image": st.one_of(st.just(b64(pad_png(28))), image_bodies.map(b64),
                       image_bodies.map(lambda data: "data:image/png;base64," + b64(data)), json_values),
    "strokes": st.one_of(st.none(), st.lists(st.lists(st.lists(st.floats(allow_nan=True, allow_infinity=True),
                                                               max_size=4), max_size=5), max_size=3), json_values),
}


@st.composite
def feedback_documents(draw):
    """Mostly valid documents with a few fields replaced, dropped or added."""
    document = feedback_document(image=b64(pad_png(28)))
    for field in draw(st.lists(st.sampled_from(FIELDS), max_size=3, unique=True)):
        action = draw(st.sampled_from(["replace", "replace", "drop"]))
        if action == "drop":
            document.pop(field, None)
        else:
            document[field] = draw(field_values[field])
    if draw(st.booleans()):
        document[draw(st.text(max_size=8))] = draw(json_values)
    return document


def check_answer(answer):
    assert answer.status in STATUSES, (answer.status, answer.body[:300])
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    document = answer.json()
    if answer.status in (200, 201):
        assert set(document) == {"id"} and str(uuid.UUID(document["id"])) == document["id"]
    else:
        assert set(document) == {"error"} and isinstance(document["error"], str)


@FUZZ_SETTINGS
@given(document=feedback_documents())
def test_mutated_feedback_documents(fuzz_server, document):
    check_answer(post(fuzz_server, serialise(document), "application/json", path="/feedback"))


@FUZZ_SETTINGS
@given(body=st.one_of(st.binary(max_size=2048), json_values.map(serialise)),
       content_type=st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain", ""]))
def test_random_bodies(fuzz_server, body, content_type):
    check_answer(post(fuzz_server, body, content_type, path="/feedback"))


def test_only_well_formed_entries_were_stored(fuzz_server):
    entries = export(fuzz_server)
    for entry in entries:
        assert entry["label"] in [*range(10), "not_digit"] and 0 <= entry["predicted"] <= 9
        assert entry["verdict"] in ("digit", "unsure", "not_digit")
        assert entry["strokes"] is None or all(len(point) == 3 for stroke in entry["strokes"] for point in stroke)
    assert post(fuzz_server, json.dumps(feedback_document()).encode(), "application/json", path="/feedback").status == 201
