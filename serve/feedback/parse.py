"""One visitor's feedback, checked: the POST /feedback JSON becomes a feedback.entry.Entry or an InputError/TooLargeError."""

import io
import json
import math
import re
import time
import uuid

from PIL import Image

from feedback.entry import (
    DIGIT_MODE, MAX_IMAGE_SIZE, MODES, NOT_DIGIT, NOT_NUMBER, NUMBER_MODE, Entry,
)
from feedback.images import orient
from serve.decode import InputError, TooLargeError, decode_base64, describe, json_type

MAX_NUMBER_DIGITS = 16
# A number as the page shows it: digit characters, leading zeros kept (a code, a table "07").
NUMBER_PATTERN = re.compile(f"[0-9]{{1,{MAX_NUMBER_DIGITS}}}")
MAX_STROKES = 64
MAX_POINTS = 8192  # over all strokes: a digit is a few hundred
UUID_PATTERN = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
MODEL_ID_PATTERN = re.compile(r"[A-Za-z0-9._:+-]{1,100}")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def parse_entry(document, labels, verdicts, number_verdicts=None, now=None):
    """An Entry from the decoded JSON body.

    `labels` are the digit reader's digits and `verdicts` its verdict names; `number_verdicts` are the
    number reader's, or None when the server has none (then number-mode entries are refused).
    """
    if not isinstance(document, dict):
        raise InputError(f"the JSON body must be an object, not {json_type(document)}")
    missing = [key for key in ("id", "model", "predicted", "verdict", "label", "image") if key not in document]
    if missing:
        raise InputError(f"missing field(s): {', '.join(missing)}")
    entry_id, model = document["id"], document["model"]
    if not isinstance(entry_id, str) or not UUID_PATTERN.fullmatch(entry_id):
        raise InputError('"id" must be a UUID string such as "0b9c6a1e-5f0d-4c3e-9a57-2f1d3b8e7c41"')
    if not isinstance(model, str) or not MODEL_ID_PATTERN.fullmatch(model):
        raise InputError('"model" must be a model id: 1 to 100 letters, digits and ._:+-')
    mode = document.get("mode", DIGIT_MODE)
    if mode not in MODES:
        raise InputError(f'"mode" must be one of {", ".join(MODES)} (default {DIGIT_MODE})')
    if mode == NUMBER_MODE:
        if number_verdicts is None:
            raise InputError('this server has no number reader, so it takes no "mode": "number" feedback')
        predicted, verdict, label = check_number_answer(document, number_verdicts)
    else:
        predicted, verdict, label = check_digit_answer(document, labels, verdicts)
    return Entry(
        id=str(uuid.UUID(entry_id)),
        model=model,
        predicted=predicted,
        verdict=verdict,
        label=label,
        image=check_png(decode_base64(document["image"]), *MAX_IMAGE_SIZE[mode]),
        strokes=compact_strokes(document.get("strokes")),
        received_at=time.time() if now is None else now,
        mode=mode,
    )


def check_digit_answer(document, labels, verdicts):
    """(predicted, verdict, label as stored) of a digit entry."""
    predicted = document["predicted"]
    if type(predicted) is not int or predicted not in labels:
        raise InputError(f'"predicted" must be one of the digits {labels[0]}..{labels[-1]}')
    verdict = document["verdict"]
    if verdict not in verdicts:
        raise InputError(f'"verdict" must be one of {", ".join(verdicts)}')
    label = document["label"]
    if not (label == NOT_DIGIT or (type(label) is int and label in labels)):
        raise InputError(f'"label" must be a digit {labels[0]}..{labels[-1]} or "{NOT_DIGIT}"')
    return predicted, verdict, str(label)


def check_number_answer(document, verdicts):
    """(predicted, verdict, label) of a number entry: numbers are strings of digits, so leading zeros stay."""
    predicted = document["predicted"]
    # The reader may read no digit at all (then its verdict is not_number): that answer was "".
    if not (isinstance(predicted, str) and (predicted == "" or NUMBER_PATTERN.fullmatch(predicted))):
        raise InputError(f'"predicted" must be the number shown, a string of 0 to {MAX_NUMBER_DIGITS} digits')
    verdict = document["verdict"]
    if verdict not in verdicts:
        raise InputError(f'"verdict" must be one of {", ".join(verdicts)}')
    label = document["label"]
    if not (label == NOT_NUMBER or (isinstance(label, str) and NUMBER_PATTERN.fullmatch(label))):
        raise InputError(f'"label" must be a string of 1 to {MAX_NUMBER_DIGITS} digits or "{NOT_NUMBER}"')
    return predicted, verdict, label


def check_png(data, max_width, max_height):
    """The drawing re-encoded, if `data` is one readable PNG of at most max_width x max_height pixels.

    The store keeps only pixels: the PNG is written again upright, with no text, EXIF, ICC or other
    ancillary chunk a client could have put in it (transparency stays, since the ink may be in it).
    """
    if not data.startswith(PNG_SIGNATURE):
        raise InputError('"image" must be a PNG')
    try:
        image = Image.open(io.BytesIO(data), formats=["PNG"])
        width, height = image.size
        if width > max_width or height > max_height:
            raise TooLargeError(f'"image" is {width}x{height}; at most {max_width}x{max_height} pixels')
        image.load()
        upright = orient(image)
    except TooLargeError:
        raise
    except Exception as error:  # Pillow signals broken files with many exception types
        raise InputError(f'"image" cannot be decoded: {describe(error)}') from None
    if upright.width > max_width or upright.height > max_height:
        raise TooLargeError(f'"image" stands {upright.width}x{upright.height} upright; at most {max_width}x{max_height}')
    clean = upright.copy()
    clean.info = {key: value for key, value in upright.info.items() if key == "transparency"}
    buffer = io.BytesIO()
    clean.save(buffer, "PNG", optimize=False)
    return buffer.getvalue()


def compact_strokes(strokes):
    """Strokes [[[x, y, t], ...], ...] (pad units, ms) as compact JSON, or None when absent."""
    if strokes is None:
        return None
    shape = '"strokes" must be an array of strokes, each an array of [x, y, t] numbers'
    if not isinstance(strokes, list) or len(strokes) > MAX_STROKES:
        raise InputError(f"{shape}; at most {MAX_STROKES} strokes")
    points = 0
    for stroke in strokes:
        if not isinstance(stroke, list):
            raise InputError(shape)
        points += len(stroke)
        if points > MAX_POINTS:
            raise TooLargeError(f'"strokes" has more than {MAX_POINTS} points')
        for point in stroke:
            if not (isinstance(point, list) and len(point) == 3 and all(is_finite_number(value) for value in point)):
                raise InputError(shape)
    return json.dumps(strokes, separators=(",", ":"))


def is_finite_number(value):
    return type(value) in (int, float) and math.isfinite(value)
