"""Valid POST /feedback bodies and a way to send them, shared by the feedback tests."""

import base64
import io
import json
import uuid

from PIL import Image, ImageDraw

from tests.server_fixtures import post

TOKEN = "operator-token-for-tests-0123456789"


def pad_png(side=280, seed=0):
    """A drawing as the pad exports it: white ink on black, side x side."""
    image = Image.new("L", (side, side), 0)
    ImageDraw.Draw(image).line([(60, 50 + seed % 40), (220, 50), (120, 240)], fill=255, width=20)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def feedback_document(label=1, predicted=7, verdict="digit", model="digits-test", **extra):
    document = {"id": str(uuid.uuid4()), "model": model, "predicted": predicted, "verdict": verdict,
                "label": label, "image": base64.b64encode(pad_png()).decode()}
    return {**document, **extra}


def post_feedback(base_url, document, **headers):
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    return post(base_url, body, "application/json", path="/feedback", **headers)


def bearer(token=TOKEN):
    return {"Authorization": f"Bearer {token}"}


def export(base_url, token=TOKEN):
    from tests.server_fixtures import request

    answer = request(base_url, "GET", "/feedback/export?format=jsonl", headers=bearer(token))
    assert answer.status == 200, answer.body[:300]
    return [json.loads(line) for line in answer.body.decode().splitlines()]


def sign_in(base_url, token=TOKEN, **headers):
    """The token form as a browser sends it (the hidden form field from GET /stats); returns the answer."""
    import re
    import urllib.parse

    from tests.server_fixtures import request

    form = request(base_url, "GET", "/stats", headers=headers)
    fields = {"form": re.search(rb'name="form" value="([^"]+)"', form.body).group(1).decode(), "token": token}
    return post(base_url, urllib.parse.urlencode(fields).encode(), "application/x-www-form-urlencoded",
                path="/stats", **headers)


def operator_session(base_url, token=TOKEN):
    """(Cookie header, CSRF token) of a signed-in operator."""
    import re

    from tests.server_fixtures import request

    answer = sign_in(base_url, token)
    assert answer.status == 303, answer.body[:300]
    cookie = answer.headers["Set-Cookie"].split(";")[0]
    page = request(base_url, "GET", "/stats", headers={"Cookie": cookie})
    return cookie, re.search(r'name="csrf" value="([^"]*)"', page.body.decode()).group(1)


def operator_post(base_url, path, fields, cookie, **headers):
    """A form post of the signed-in /stats page (fields: a list of pairs, so `id` may repeat)."""
    import urllib.parse

    return post(base_url, urllib.parse.urlencode(fields).encode(), "application/x-www-form-urlencoded", path=path,
                Cookie=cookie, **headers)
