"""Feedback in number mode: POST /feedback with "mode": "number", stored apart from digits, on SQLite and PostgreSQL."""

import base64
import io
import re
import uuid

import pytest
from PIL import Image, ImageDraw

from feedback.entry import Entry
from feedback.store import MIGRATIONS, SCHEMA_VERSION
from reader.contract import NUMBER_PAD_HEIGHT, NUMBER_PAD_WIDTH, PAD_SIDE
from serve.feedback import open_store
from serve.feedback.routes import export_line
from serve.model import Model
from tests.conftest import ARTIFACTS_DIR
from tests.feedback_helpers import TOKEN, bearer, export, feedback_document, pad_png, post_feedback
from tests.server_fixtures import request
from train.feedback import read_corrections

BOUNDS = {"FEEDBACK_MAX_ENTRIES": 1000, "FEEDBACK_MAX_STORE_BYTES": 1 << 30, "FEEDBACK_RETENTION_DAYS": 0}


def number_png(width=NUMBER_PAD_WIDTH, height=NUMBER_PAD_HEIGHT):
    """A drawing as the number pad exports it: white strokes on black."""
    image = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(image)
    draw.line([(60, 60), (160, 60), (60, 220), (160, 220)], fill=255, width=18)
    draw.ellipse([(220, 60), (320, 220)], outline=255, width=18)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def number_document(label="20", predicted="28", verdict="number", **extra):
    return {"id": str(uuid.uuid4()), "mode": "number", "model": "numbers-test", "predicted": predicted,
            "verdict": verdict, "label": label, "image": base64.b64encode(number_png()).decode(), **extra}


def number_entry(index, label, predicted, verdict="number"):
    return Entry(id=str(uuid.UUID(int=100 + index, version=4)), model="numbers-test", predicted=predicted,
                 verdict=verdict, label=label, image=number_png(), strokes=None, received_at=1.7e9 + 100 + index,
                 mode="number")


def digit_entry(index, label, predicted):
    return Entry(id=str(uuid.UUID(int=index + 1, version=4)), model="digits-test", predicted=predicted,
                 verdict="digit", label=label, image=pad_png(seed=index), strokes=None, received_at=1.7e9 + index)


def test_serve_takes_the_pads_of_the_contract_from_the_manifest():
    # serve/ imports nothing from reader/: it reads the pads' sizes from the manifest, which convert/ wrote from the contract.
    model = Model(ARTIFACTS_DIR)
    assert model.pad == {"digit": (PAD_SIDE, PAD_SIDE), "number": (NUMBER_PAD_WIDTH, NUMBER_PAD_HEIGHT)}
    assert model.number_decoded_side == NUMBER_PAD_WIDTH


@pytest.fixture
def feedback_server(start_server, tmp_path):
    return start_server(FEEDBACK_DB=str(tmp_path / "feedback.sqlite"), ADMIN_TOKEN=TOKEN)


def test_a_number_correction_is_stored_and_exported_as_sent(feedback_server):
    document = number_document(label="0042", predicted="42", verdict="unsure",
                               strokes=[[[0.1, 0.2, 0], [0.3, 0.4, 16]]])
    assert post_feedback(feedback_server, document).status == 201
    assert post_feedback(feedback_server, document).status == 200
    digit = feedback_document(label=3, predicted=8)
    assert post_feedback(feedback_server, digit).status == 201
    number, exported_digit = export(feedback_server)
    assert {key: number[key] for key in document} == document  # "0042" stays a string, leading zeros kept
    assert number["correct"] is False
    assert exported_digit["mode"] == "digit" and exported_digit["label"] == 3 and exported_digit["predicted"] == 8


@pytest.mark.parametrize("label, predicted, verdict, correct", [
    ("2026", "2026", "number", True),
    ("2026", "2026", "unsure", True),
    ("not_number", "", "not_number", True),
    ("not_number", "7", "not_number", True),
    ("7", "", "not_number", False),
    ("not_number", "2026", "number", False),
])
def test_a_number_is_a_confirmation_when_it_is_what_the_page_showed(feedback_server, label, predicted, verdict, correct):
    assert post_feedback(feedback_server, number_document(label=label, predicted=predicted, verdict=verdict)).status == 201
    [exported] = export(feedback_server)
    assert exported["correct"] is correct


# (id, changes to a valid number document, status, words in the error)
BAD_NUMBER_FEEDBACK = [
    ("label as a JSON number", {"label": 2026}, 400, '"label"'),
    ("label with a letter", {"label": "20a6"}, 400, '"label"'),
    ("label empty", {"label": ""}, 400, '"label"'),
    ("label of 17 digits", {"label": "1" * 17}, 400, '"label"'),
    ("label not_digit", {"label": "not_digit"}, 400, '"label"'),
    ("label with a space", {"label": "20 26"}, 400, '"label"'),
    ("predicted as a JSON number", {"predicted": 2026}, 400, '"predicted"'),
    ("predicted with a sign", {"predicted": "-5"}, 400, '"predicted"'),
    ("predicted of 17 digits", {"predicted": "1" * 17}, 400, '"predicted"'),
    ("a digit verdict", {"verdict": "digit"}, 400, '"verdict"'),
    ("unknown mode", {"mode": "letters"}, 400, '"mode"'),
    ("mode not a string", {"mode": ["number"]}, 400, '"mode"'),
    ("wider than the number pad", {"image": base64.b64encode(number_png(NUMBER_PAD_WIDTH + 1)).decode()}, 413,
     f"at most {NUMBER_PAD_WIDTH}x{NUMBER_PAD_HEIGHT}"),
    ("taller than the number pad", {"image": base64.b64encode(number_png(height=NUMBER_PAD_HEIGHT + 1)).decode()}, 413,
     "at most"),
]


@pytest.mark.parametrize("changes, status, words", [case[1:] for case in BAD_NUMBER_FEEDBACK],
                         ids=[case[0] for case in BAD_NUMBER_FEEDBACK])
def test_bad_number_feedback_is_a_json_error(feedback_server, changes, status, words):
    answer = post_feedback(feedback_server, {**number_document(), **changes})
    assert answer.status == status and words in answer.json()["error"], answer.body
    assert post_feedback(feedback_server, number_document()).status == 201


def test_a_digit_entry_keeps_the_digit_pad_size(feedback_server):
    wide = base64.b64encode(number_png()).decode()
    answer = post_feedback(feedback_server, feedback_document(image=wide))
    assert answer.status == 413 and f"at most {PAD_SIDE}x{PAD_SIDE}" in answer.json()["error"]
    assert post_feedback(feedback_server, feedback_document(mode="digit")).status == 201


def test_without_a_number_reader_number_feedback_is_refused(start_server, tmp_path, digits_only_artifacts):
    base_url = start_server(ARTIFACTS_DIR=str(digits_only_artifacts), FEEDBACK_DB=str(tmp_path / "feedback.sqlite"))
    answer = post_feedback(base_url, number_document())
    assert answer.status == 400 and "no number reader" in answer.json()["error"]
    assert post_feedback(base_url, feedback_document()).status == 201


def test_stats_keeps_numbers_out_of_the_digit_confusion_and_shows_their_corrections(feedback_server):
    for document in [number_document(label="0042", predicted="42"), number_document(label="7", predicted="7"),
                     feedback_document(label=1, predicted=7)]:
        assert post_feedback(feedback_server, document).status == 201
    page = request(feedback_server, "GET", "/stats", headers=bearer())
    html = page.body.decode()
    assert page.status == 200
    # The digit confusion, from the server's own reading of the drawing (a 7): the number entries are not in it.
    assert 'alt="1x said 1, the server reads 7"' in html
    assert "said <b>0042</b>, shown <b>42</b>" in html
    assert f'width="{84 * NUMBER_PAD_WIDTH // NUMBER_PAD_HEIGHT}" height="84"' in html
    # Accuracy per reading model: the number reader read both number drawings (the clients named another model).
    assert re.search(r"<td>numbers-\w+ \(2 answered by another model, read by this one\)</td><td>2</td>", html)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_config(request, tmp_path):
    if request.param == "sqlite":
        return {**BOUNDS, "FEEDBACK_DB": str(tmp_path / "feedback.sqlite")}
    return {**BOUNDS, "FEEDBACK_URL": request.getfixturevalue("postgres_url")}


def version_one_store(config):
    """A store as the first schema left it, holding one digit correction (id 1, label 3, read as 8)."""
    store = open_store(config)
    with store.session(exclusive=True) as cursor:
        cursor.execute("CREATE TABLE feedback_schema (version INTEGER NOT NULL)")
        for statement in MIGRATIONS[0]:
            cursor.execute(statement.format(blob=store.blob_type, real=store.real_type))
        store.run(cursor, "INSERT INTO feedback_schema (version) VALUES (1)")
        entry = digit_entry(0, "3", 8)
        store.run(cursor, "INSERT INTO feedback_entries (id, received_at, day, model, predicted, verdict, label, "
                          "correct, image, strokes, size) VALUES (?, ?, '2023-11-14', ?, ?, ?, ?, 0, ?, NULL, ?)",
                  (entry.id, entry.received_at, entry.model, entry.predicted, entry.verdict, entry.label, entry.image,
                   entry.size))
        store.run(cursor, "UPDATE feedback_totals SET entries = 1, bytes = ? WHERE id = 1", (entry.size,))
    store.disconnect()
    return entry


def test_a_first_version_store_is_migrated_its_entries_are_digits_and_await_review(store_config):
    old = version_one_store(store_config)
    # Training reads a store that no server has migrated yet: nothing in it was ever reviewed, so nothing.
    source = store_config.get("FEEDBACK_URL") or store_config["FEEDBACK_DB"]
    assert read_corrections(source) == []
    store = open_store(store_config)
    try:
        assert store.add(number_entry(0, "0042", "42"))
        assert store.schema_version() == SCHEMA_VERSION == 3
        first, second = store.entries()
        assert (first["mode"], first["predicted"], first["label"], first["review"]) == ("digit", 8, "3", "pending")
        assert (second["mode"], second["predicted"], second["label"]) == ("number", "42", "0042")
        assert store.counts() == {"entries": 2, "corrections": 2, "bytes": old.size + number_entry(0, "0042", "42").size,
                                  "pending": 2, "accepted": 0, "rejected": 0}
        assert read_corrections(source) == []
        store.review([old.id], "accepted")
        assert [(entry_id, label) for entry_id, label, _, _ in read_corrections(source)] == [(old.id, "3")]
    finally:
        store.disconnect()


@pytest.fixture(params=["sqlite", "postgresql", "jsonl"])
def mixed_source(request, tmp_path):
    """Digit and number entries, corrections and confirmations, in a store or an export."""
    entries = [digit_entry(0, "1", 7), digit_entry(1, "7", 7), number_entry(0, "2026", "2028"),
               number_entry(1, "not_number", "11"), number_entry(2, "5", "5"), digit_entry(2, "not_digit", 4)]
    config = {**BOUNDS, "FEEDBACK_DB": str(tmp_path / "feedback.sqlite")}
    if request.param == "postgresql":
        config = {**BOUNDS, "FEEDBACK_URL": request.getfixturevalue("postgres_url")}
    store = open_store(config)
    for entry in entries:
        store.add(entry)
    store.review([entry.id for entry in entries], "accepted")
    if request.param == "jsonl":
        path = tmp_path / "export.jsonl"
        path.write_text("".join(export_line(entry) for entry in store.entries()))
        return str(path)
    store.disconnect()
    return config.get("FEEDBACK_URL") or config["FEEDBACK_DB"]


def test_each_reader_trains_only_on_its_own_modes_corrections(mixed_source):
    assert [label for _, label, _, _ in read_corrections(mixed_source)] == ["1", "not_digit"]
    assert [label for _, label, _, _ in read_corrections(mixed_source, "number")] == ["2026", "not_number"]


def test_number_entries_are_pruned_like_digit_entries(tmp_path):
    store = open_store({**BOUNDS, "FEEDBACK_MAX_ENTRIES": 4, "FEEDBACK_DB": str(tmp_path / "feedback.sqlite")})
    for index in range(6):
        store.add(number_entry(index, "12", "12") if index % 2 else digit_entry(index, "3", 3))
        store.review([entry["id"] for entry in store.entries()], "rejected")
    store.add(number_entry(9, "99", "98"))
    kept = list(store.entries())
    assert len(kept) <= 4 and kept[-1]["predicted"] == "98" and store.counts()["entries"] == len(kept)
