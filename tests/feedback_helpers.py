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
