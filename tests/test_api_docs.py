"""docs/API.md is the contract: its routes, limits and examples are the running server's."""

import base64
import json
import re

import pytest

from serve.app import SECURITY_HEADERS, create_app
from tests.conftest import ROOT
from tests.feedback_helpers import TOKEN, bearer, feedback_document, pad_png, post_feedback
from tests.server_fixtures import encode, enlarge, post, post_json, request

API_DOC = (ROOT / "docs" / "API.md").read_text()
RULES_AS_DOCUMENTED = {"/model/<name>": "/model/{file}", "/<path:name>": "/{path}"}


def documented_routes():
    section = API_DOC.split("## Routes", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| (GET|POST)\s+\| (/\S*)\s+\|", section, flags=re.M)


def json_examples():
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)\n```", API_DOC, flags=re.S)]


def test_every_route_is_documented_and_every_documented_route_exists():
    app = create_app()
    served = {
        (method, RULES_AS_DOCUMENTED.get(rule.rule, rule.rule))
        for rule in app.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert set(documented_routes()) == served


def test_documented_routes_answer(start_server, manifest, tmp_path):
    base_url = start_server(ADMIN_TOKEN=TOKEN, FEEDBACK_DB=str(tmp_path / "feedback.sqlite"))
    for method, path in documented_routes():
        path = path.replace("{file}", manifest["variants"]["fp32"]["file"]).replace("{path}", "index.html")
        if method == "GET":
            assert request(base_url, method, path, headers=bearer()).status == 200, path


def test_response_examples_have_the_live_shape(live_server, confident_digits):
    single, batch = json_examples()[:2]
    png = encode(enlarge(confident_digits[0][1]), "PNG")
    live = post(live_server, png, "image/png").json()
    assert set(single) == set(live) and len(single["probabilities"]) == len(live["probabilities"])
    assert sum(single["probabilities"]) == pytest.approx(1, abs=1e-3)
    assert single["confidence"] == max(single["probabilities"]) and single["digit"] == 7
    live_batch = post_json(live_server, {"images": [base64.b64encode(png).decode()]}).json()
    assert set(batch) == set(live_batch) and set(batch["predictions"][0]) == set(live_batch["predictions"][0])


def test_number_examples_have_the_live_shape(live_server, confident_digits):
    single, batch = json_examples()[2:4]
    png = encode(enlarge(dict(confident_digits)[7]), "PNG")
    live = post(live_server, png, "image/png", path="/number").json()
    assert set(single) == set(live) and set(single["digits"][0]) == set(live["digits"][0])
    assert single["number"] == "".join(str(digit["digit"]) for digit in single["digits"])
    for digit in single["digits"] + batch["predictions"][0]["digits"]:
        assert sum(digit["probabilities"]) == pytest.approx(1, abs=1e-3) and len(digit["probabilities"]) == 10
        assert digit["digit"] == max(range(10), key=digit["probabilities"].__getitem__)
    live_batch = post_json(live_server, {"images": [base64.b64encode(png).decode()]}, path="/number").json()
    assert set(batch) == set(live_batch) and set(batch["predictions"][0]) == set(live_batch["predictions"][0])


def test_documented_limits_are_the_defaults():
    config = create_app().config
    assert f"body over {config['MAX_CONTENT_LENGTH'] // (1024 * 1024)} MiB" in API_DOC
    assert f"{config['MAX_IMAGE_PIXELS']:,} pixels" in API_DOC
    assert f"a batch over {config['MAX_BATCH']} images" in API_DOC
    assert f"a batch whose images have over {config['MAX_BATCH_PIXELS']:,} pixels in all" in API_DOC
    assert f"a batch of 1 to {config['MAX_BATCH']} images" in API_DOC


def test_documented_headers_are_the_ones_sent():
    for name, value in SECURITY_HEADERS.items():
        assert f"{name}: {value}" in API_DOC


def test_the_feedback_examples_are_stored(start_server, tmp_path):
    base_url = start_server(FEEDBACK_DB=str(tmp_path / "feedback.sqlite"))
    digit_example, number_example = json_examples()[4:6]
    document = {**digit_example, "model": "digits-test", "image": feedback_document()["image"]}
    assert post_feedback(base_url, document).status == 201
    document = {**number_example, "image": base64.b64encode(pad_png()).decode()}
    assert post_feedback(base_url, document).status == 201
    assert f"at most {create_app().config['FEEDBACK_MAX_BODY'] // 1024} KiB" in API_DOC
