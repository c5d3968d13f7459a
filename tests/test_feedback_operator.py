"""The operator's sign-in over HTTP: throttled guessing, a signed cookie whose expiry the server checks, sign-out,
Secure behind a trusted TLS proxy, and CSRF tokens on every form of /stats."""

import time

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from serve.app import create_app
from serve.feedback.operator import COOKIE_NAME, SESSION_SECONDS, serializer
from tests.feedback_helpers import (TOKEN, export, feedback_document, operator_post, operator_session, post_feedback,
                                    sign_in)
from tests.server_fixtures import request


@pytest.fixture
def operator_server(start_server, tmp_path):
    return start_server(FEEDBACK_DB=str(tmp_path / "feedback.sqlite"), ADMIN_TOKEN=TOKEN)


def test_guessing_the_token_is_throttled_with_429_and_the_right_token_waits_too(start_server, tmp_path):
    base_url = start_server(FEEDBACK_DB=str(tmp_path / "feedback.sqlite"), ADMIN_TOKEN=TOKEN, ADMIN_SIGN_IN_PER_MINUTE=5)
    statuses = [sign_in(base_url, f"guess-{number}").status for number in range(8)]
    assert statuses == [401] * 5 + [429] * 3
    answer = sign_in(base_url)  # even the right token, from this client, until the bucket refills
    assert answer.status == 429 and int(answer.headers["Retry-After"]) >= 1 and "Set-Cookie" not in answer.headers


def test_the_cookie_is_signed_and_its_expiry_is_checked_by_the_server(operator_server, tmp_path):
    cookie, _ = operator_session(operator_server)
    assert request(operator_server, "GET", "/stats", headers={"Cookie": cookie}).status == 200
    name, _, value = cookie.partition("=")
    forged = f"{name}={value[:-2]}{'AA' if not value.endswith('AA') else 'BB'}"
    assert request(operator_server, "GET", "/stats", headers={"Cookie": forged}).status == 401
    # The same payload, signed with the server's key but dated past the session's lifetime.
    app = create_app({"FEEDBACK_DB": str(tmp_path / "other.sqlite"), "ADMIN_TOKEN": TOKEN})
    with app.test_request_context():
        current = serializer("session")

    class Yesterday(TimestampSigner):
        def get_timestamp(self):
            return int(time.time()) - SESSION_SECONDS - 60

    stale = URLSafeTimedSerializer(current.secret_key, salt=current.salt, signer=Yesterday).dumps({"csrf": "x"})
    fresh = URLSafeTimedSerializer(current.secret_key, salt=current.salt).dumps({"csrf": "x"})
    assert request(operator_server, "GET", "/stats", headers={"Cookie": f"{COOKIE_NAME}={fresh}"}).status == 200
    assert request(operator_server, "GET", "/stats", headers={"Cookie": f"{COOKIE_NAME}={stale}"}).status == 401


def test_sign_out_clears_the_cookie_and_needs_the_csrf_token(operator_server):
    cookie, csrf = operator_session(operator_server)
    refused = operator_post(operator_server, "/stats/sign-out", [("csrf", "not-it")], cookie)
    assert refused.status == 403 and "CSRF" in refused.json()["error"]
    answer = operator_post(operator_server, "/stats/sign-out", [("csrf", csrf)], cookie)
    cleared = answer.headers["Set-Cookie"]
    assert answer.status == 303 and cleared.startswith(f"{COOKIE_NAME}=;") and "Max-Age=0" in cleared


@pytest.mark.parametrize("path, fields", [
    ("/stats/review", [("decision", "rejected"), ("id", "00000000-0000-4000-8000-000000000000")]),
    ("/stats/rule", [("rule", "confirmations")]),
])
def test_every_form_needs_its_csrf_token(operator_server, path, fields):
    cookie, csrf = operator_session(operator_server)
    assert operator_post(operator_server, path, fields, cookie).status == 403
    assert operator_post(operator_server, path, [("csrf", csrf + "x"), *fields], cookie).status == 403
    assert operator_post(operator_server, path, [("csrf", csrf), *fields], cookie).status == 303


def test_the_sign_in_form_must_come_from_the_server(operator_server):
    answer = request(operator_server, "POST", "/stats", f"token={TOKEN}".encode(),
                     {"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status == 401 and b"stale" in answer.body and "Set-Cookie" not in answer.headers


def test_the_operator_rejects_and_sets_a_rule_from_the_form(operator_server):
    documents = [feedback_document(label=1, predicted=7), feedback_document(label=7, predicted=7)]
    for document in documents:
        assert post_feedback(operator_server, document).status == 201
    cookie, csrf = operator_session(operator_server)
    page = request(operator_server, "GET", "/stats", headers={"Cookie": cookie}).body.decode()
    assert "2 await review" in page and all(f'value="{document["id"]}"' in page for document in documents)
    assert operator_post(operator_server, "/stats/review", [("csrf", csrf), ("decision", "rejected"),
                                                            ("id", documents[0]["id"])], cookie).status == 303
    assert operator_post(operator_server, "/stats/rule", [("csrf", csrf), ("rule", "confirmations")], cookie).status == 303
    # A confirmation the server reads the same (the drawing is a 7) is accepted by the rule; a correction waits.
    confirmation, correction = feedback_document(label=7, predicted=7), feedback_document(label=3, predicted=7)
    assert post_feedback(operator_server, confirmation).status == 201
    assert post_feedback(operator_server, correction).status == 201
    page = request(operator_server, "GET", "/stats", headers={"Cookie": cookie}).body.decode()
    assert "2 await review" in page and "1 accepted, 1 rejected" in page
    assert f'value="{correction["id"]}"' in page and f'value="{confirmation["id"]}"' not in page


@pytest.mark.parametrize("trusted, forwarded, secure", [(1, "https", True), (1, "http", False), (0, "https", False)])
def test_the_cookie_is_secure_behind_a_trusted_tls_proxy_only(start_server, tmp_path, trusted, forwarded, secure):
    base_url = start_server(FEEDBACK_DB=str(tmp_path / "feedback.sqlite"), ADMIN_TOKEN=TOKEN, TRUSTED_PROXIES=trusted)
    answer = sign_in(base_url, **{"X-Forwarded-Proto": forwarded, "X-Forwarded-For": "198.51.100.4"})
    assert answer.status == 303
    assert ("; Secure" in answer.headers["Set-Cookie"]) is secure


def test_the_operator_deletes_ticked_entries_or_a_whole_day(operator_server):
    documents = [feedback_document(label=1, predicted=7) for _ in range(3)]
    for document in documents:
        assert post_feedback(operator_server, document).status == 201
    cookie, csrf = operator_session(operator_server)
    assert operator_post(operator_server, "/stats/delete", [("id", documents[0]["id"])], cookie).status == 403
    assert operator_post(operator_server, "/stats/delete", [("csrf", csrf), ("id", documents[0]["id"])],
                         cookie).status == 303
    assert {entry["id"] for entry in export(operator_server)} == {documents[1]["id"], documents[2]["id"]}
    today = time.strftime("%Y-%m-%d", time.gmtime())
    for not_a_day in ("yesterday", "2024-13-01", "2025-02-30"):
        assert operator_post(operator_server, "/stats/delete", [("csrf", csrf), ("day", not_a_day)], cookie).status == 400
    assert operator_post(operator_server, "/stats/delete", [("csrf", csrf), ("day", today)], cookie).status == 303
    assert export(operator_server) == []
    page = request(operator_server, "GET", "/stats", headers={"Cookie": cookie}).body.decode()
    assert "0 entries waiting" in page and "kept 90 days" in page


def test_entries_past_the_retention_are_forgotten_when_the_server_starts(tmp_path):
    from dataclasses import replace

    from feedback.entry import Entry
    from serve.feedback import open_store

    config = {"FEEDBACK_DB": str(tmp_path / "feedback.sqlite"), "ADMIN_TOKEN": TOKEN}
    store = open_store({**config, "FEEDBACK_RETENTION_DAYS": 0})
    old = Entry(id="00000000-0000-4000-8000-000000000001", model="m", predicted=7, verdict="digit", label="1",
                image=b"png", strokes=None, received_at=time.time() - 91 * 86400)
    store.add(old)
    store.add(replace(old, id="00000000-0000-4000-8000-000000000002", received_at=time.time()))
    store.disconnect()
    app = create_app(config)  # the default retention, 90 days, applied as the store opens
    kept = [entry["id"] for entry in app.extensions["feedback"].store.entries()]
    assert kept == ["00000000-0000-4000-8000-000000000002"]
