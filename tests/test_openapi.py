"""GET /openapi.json (serve/openapi.py): a valid OpenAPI 3.1 document of every route, the same routes and
limits as docs/API.md, and schemathesis against the real server (waitress) with it: every answer as
documented, never a 5xx (its CLI, with tests/schemathesis.toml)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from openapi_spec_validator import validate

from serve.app import create_app
from serve.front import RATE_PER_ADDRESS
from tests.conftest import ROOT
from tests.feedback_helpers import TOKEN
from tests.server_fixtures import ServerThread, request

API_DOC = (ROOT / "docs" / "API.md").read_text()
CONFIG = ROOT / "tests" / "schemathesis.toml"
# Flask's rule syntax -> OpenAPI's.
AS_OPENAPI = {"/model/<name>": "/model/{file}", "/<path:name>": "/{path}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("openapi")
    # Feedback's per-client limits raised above what the fuzzing sends, so its answers are the contract's.
    app = create_app({"ADMIN_TOKEN": TOKEN, "FEEDBACK_DB": str(folder / "feedback.sqlite"),
                      "FEEDBACK_RATE_PER_MINUTE": 100_000, "FEEDBACK_MAX_PER_CLIENT_DAY": 100_000})
    started = ServerThread(app)
    yield started.base_url
    started.stop()


@pytest.fixture(scope="module")
def document(server):
    answer = request(server, "GET", "/openapi.json")
    assert answer.status == 200 and answer.headers["Content-Type"] == "application/json"
    return answer.json()


def test_the_document_is_valid_openapi_3_1(document):
    assert document["openapi"].startswith("3.1")
    validate(document)


def test_the_validator_catches_a_broken_document(document):
    broken = {**document, "paths": {**document["paths"], "/predict": {"post": {"responses": "none"}}}}
    with pytest.raises(Exception):
        validate(broken)


def test_every_route_is_in_the_document_and_in_docs_api_md():
    app = create_app()
    served = {(method.lower(), AS_OPENAPI.get(rule.rule, rule.rule))
              for rule in app.url_map.iter_rules() for method in rule.methods - {"HEAD", "OPTIONS"}}
    document = app.test_client().get("/openapi.json").get_json()
    described = {(method, path) for path, item in document["paths"].items() for method in item}
    assert described == served
    section = API_DOC.split("## Routes", 1)[1].split("\n## ", 1)[0]
    in_the_guide = {(method.lower(), path) for method, path in re.findall(r"^\| (GET|POST)\s+\| (/\S*)\s+\|", section, re.M)}
    assert in_the_guide == served


def test_the_documents_limits_are_the_apps(document):
    config = create_app().config
    images = document["components"]["schemas"]["Images"]["oneOf"][2]["properties"]["images"]
    assert images["maxItems"] == config["MAX_BATCH"]
    described = document["paths"]["/predict"]["post"]["requestBody"]["description"]
    for key in ("MAX_CONTENT_LENGTH", "MAX_IMAGE_PIXELS", "MAX_BATCH_PIXELS"):
        assert str(config[key]) in described, key
        assert f"{config[key]:,}" in API_DOC or f"{config[key] // (1024 * 1024)} MiB" in API_DOC, key


def schemathesis_run(location, base_url, *options):
    """`st run` (schemathesis's CLI) against the real server: stateless phases and the stateful one.

    Its rate stays at nginx's per-address limit (serve/front.py), as a client behind the front would. It runs
    in the document's folder, where it keeps its cache, not in the checkout.
    """
    command = [str(Path(sys.executable).parent / "st"), "--config-file", str(CONFIG), "run", str(location),
               "--url", base_url, "--header", f"Authorization: Bearer {TOKEN}", "--max-examples", "30",
               "--rate-limit", f"{RATE_PER_ADDRESS}/s", "--phases", "examples,coverage,fuzzing,stateful",
               "--seed", "1", "--no-color", "--warnings", "off", *options]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=Path(location).parent,
                          env={**os.environ, "NO_PROXY": "*"})


def test_schemathesis_finds_every_answer_as_documented_and_no_server_error(server, document, tmp_path):
    location = tmp_path / "openapi.json"
    location.write_text(json.dumps(document))
    result = schemathesis_run(location, server)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    generated = re.search(r"(\d+) generated, (\d+) passed", result.stdout)
    assert generated and int(generated.group(1)) >= 300, result.stdout[-2000:]
    for phase in ("Examples", "Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in result.stdout, phase
    # The document's examples are real: the feedback one was stored, so the fuzzing reached past validation.
    assert export_holds_the_example(server, document)


def export_holds_the_example(server, document):
    example = document["paths"]["/feedback"]["post"]["requestBody"]["content"]["application/json"]["example"]
    export = request(server, "GET", "/feedback/export?format=jsonl", headers={"Authorization": f"Bearer {TOKEN}"})
    return export.status == 200 and example["id"] in export.body.decode()


def test_schemathesis_catches_an_answer_the_document_does_not_allow(server, document, tmp_path):
    wrong = json.loads(json.dumps(document))
    wrong["paths"]["/healthz"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["properties"][
        "status"] = {"const": "fine"}
    location = tmp_path / "openapi.json"
    location.write_text(json.dumps(wrong))
    result = schemathesis_run(location, server, "--include-path", "/healthz")
    assert result.returncode != 0 and "Response violates schema" in result.stdout, result.stdout[-3000:]
