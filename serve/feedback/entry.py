"""One visitor's feedback, checked: the POST /feedback JSON becomes an Entry or an InputError/TooLargeError."""

import io
import json
import math
import re
import time
import uuid
from dataclasses import dataclass

from PIL import Image

from serve.decode import InputError, TooLargeError, decode_base64, describe, json_type

NOT_DIGIT = "not_digit"
# The pad is at most this many pixels on a side when the page sends it (reader.contract.PAD_SIDE).
MAX_IMAGE_SIDE = 280
MAX_STROKES = 64
MAX_POINTS = 8192  # over all strokes: a digit is a few hundred
UUID_PATTERN = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
MODEL_ID_PATTERN = re.compile(r"[A-Za-z0-9._:+-]{1,100}")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Entry:
    id: str
    model: str
    predicted: int
    verdict: str
    label: str  # "0".."9" or "not_digit"
    image: bytes  # the PNG as the page sent it
    strokes: str | None  # compact JSON, or None
    received_at: float

    @property
    def shown(self):
        """What the page told the visitor: the digit, or "not_digit"."""
        return NOT_DIGIT if self.verdict == NOT_DIGIT else str(self.predicted)

    @property
    def correct(self):
        """Whether the visitor confirmed the answer (True) or corrected it (False)."""
        return self.label == self.shown

    @property
    def size(self):
        """Bytes this entry adds to the store, for its byte bound."""
        return len(self.image) + len(self.strokes or "")


def parse_entry(document, labels, verdicts, now=None):
    """An Entry from the decoded JSON body; `labels` are the model's digits and `verdicts` its verdict names."""
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
    predicted = document["predicted"]
    if type(predicted) is not int or predicted not in labels:
        raise InputError(f'"predicted" must be one of the digits {labels[0]}..{labels[-1]}')
    verdict = document["verdict"]
    if verdict not in verdicts:
        raise InputError(f'"verdict" must be one of {", ".join(verdicts)}')
    label = document["label"]
    if not (label == NOT_DIGIT or (type(label) is int and label in labels)):
        raise InputError(f'"label" must be a digit {labels[0]}..{labels[-1]} or "{NOT_DIGIT}"')
    return Entry(
        id=str(uuid.UUID(entry_id)),
        model=model,
        predicted=predicted,
        verdict=verdict,
        label=str(label),
        image=check_png(decode_base64(document["image"])),
        strokes=compact_strokes(document.get("strokes")),
        received_at=time.time() if now is None else now,
    )


def check_png(data):
    """The bytes, if they are one readable PNG of at most MAX_IMAGE_SIDE pixels on a side."""
    if not data.startswith(PNG_SIGNATURE):
        raise InputError('"image" must be a PNG')
    try:
        image = Image.open(io.BytesIO(data), formats=["PNG"])
        width, height = image.size
        if max(width, height) > MAX_IMAGE_SIDE:
            raise TooLargeError(f'"image" is {width}x{height}; at most {MAX_IMAGE_SIDE} pixels on a side')
        image.load()
    except TooLargeError:
        raise
    except Exception as error:  # Pillow signals broken files with many exception types
        raise InputError(f'"image" cannot be decoded: {describe(error)}') from None
    return data


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
