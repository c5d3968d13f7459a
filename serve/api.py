"""The JSON API: POST /predict (a digit) and POST /number (a number), each taking image bytes, multipart or
JSON image/pixels/images; GET /healthz (alive) and GET /readyz (taking work)."""

import json

from flask import Blueprint, current_app, jsonify, request
from werkzeug.exceptions import (
    BadRequest, RequestEntityTooLarge, ServiceUnavailable, UnprocessableEntity, UnsupportedMediaType,
)

from serve.decode import (
    MAX_DECODED_SIDE, Decoded, InputError, NoInkError, TooLargeError, check_ink,
    decode_base64, decode_image, pixels_to_array,
)

blueprint = Blueprint("api", __name__)

IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp", "image/bmp", "image/gif")
ACCEPTED_TYPES = (*IMAGE_TYPES, "multipart/form-data", "application/json")
JSON_INPUTS = ("image", "pixels", "images")
HTTP_ERRORS = {InputError: BadRequest, TooLargeError: RequestEntityTooLarge, NoInkError: UnprocessableEntity}


@blueprint.get("/healthz")
def healthz():
    model = current_app.extensions["model"]
    health = {"status": "ok", "model": model.model_id, "variant": model.variant}
    if model.numbers is not None:
        health["numbers"] = {"model": model.numbers.model_id, "variant": model.numbers.variant}
    return health


@blueprint.get("/readyz")
def readyz():
    """Ready while the server takes new work; 503 once it is stopping (liveness stays /healthz's)."""
    if current_app.extensions["draining"].is_set():
        raise ServiceUnavailable("this server is stopping; send new requests to another")
    return {"status": "ready"}


@blueprint.post("/predict")
def predict():
    model = current_app.extensions["model"]
    pixels_side = model.manifest["normalization"]["canvas_size"]
    return answer_each(lambda decoded: model.predict(decoded.image), model.ink_threshold, "a digit",
                       pixels_side, MAX_DECODED_SIDE)


@blueprint.post("/number")
def number():
    model = current_app.extensions["model"]
    reader = model.numbers
    if reader is None:
        raise ServiceUnavailable('this server has no number reader: its manifest has no "numbers" section')
    # A number's pixels may be any rectangle, since a line of digits is wider than it is high. The number pad
    # (the manifest's) is read unreduced, as the page reads it.
    return answer_each(reader.predict, reader.ink_threshold, "a number", None, model.number_decoded_side)


def answer_each(read, ink_threshold, wanted, pixels_side, max_side):
    """The JSON answer of `read(decoded)` for the request's image, or {"predictions": [...]} for a batch."""
    try:
        images, batch = read_images(pixels_side, max_side)
        predictions = []
        # One image at a time, decoded, read and let go, so a batch holds one decoded image, not 32.
        for index, decoded in enumerate(images):
            check_ink(decoded.image, ink_threshold, f"images[{index}]: " if batch else "", wanted)
            predictions.append(read(decoded))
            del decoded
    except tuple(HTTP_ERRORS) as error:
        raise HTTP_ERRORS[type(error)](str(error)) from None
    return jsonify({"predictions": predictions} if batch else predictions[0])


def read_images(pixels_side, max_side):
    """The request's images, each a serve.decode.Decoded, and whether it was a batch.

    `pixels_side` is the side of a JSON "pixels" square, or None to take any rectangle; images are
    decoded to at most `max_side` pixels a side.
    """
    if request.content_encoding:
        raise UnsupportedMediaType("Content-Encoding is not supported; send the body uncompressed")
    max_body = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is not None and request.content_length > max_body:
        raise TooLargeError(f"request body too large: {request.content_length} bytes, the limit is {max_body}")
    mimetype = request.mimetype
    limit = current_app.config["MAX_IMAGE_PIXELS"]
    if mimetype in IMAGE_TYPES:
        return [decode_image(request.get_data(cache=False), limit, max_side)], False
    if mimetype == "multipart/form-data":
        return [decode_image(read_form_file(), limit, max_side)], False
    if mimetype == "application/json":
        return read_json_images(parse_json(request.get_data(cache=False)), limit, pixels_side, max_side)
    raise UnsupportedMediaType(
        f"unsupported Content-Type {mimetype or '(none)'!r}; send one of {', '.join(ACCEPTED_TYPES)}"
    )


def read_form_file():
    try:
        uploads = request.files.getlist("image")
    except RequestEntityTooLarge:
        parts = current_app.config["MAX_FORM_PARTS"]
        raise TooLargeError(f"multipart form too large: at most {parts} parts, and small text fields") from None
    if len(uploads) != 1:
        found = "no" if not uploads else f"{len(uploads)}"
        raise InputError(f"multipart/form-data needs exactly one file field named 'image', found {found}")
    return uploads[0].read()


def reject_constant(name):
    raise InputError(f"{name} is not a number JSON allows")


def parse_json(body):
    try:
        document = json.loads(body, parse_constant=reject_constant)
    except RecursionError:
        raise InputError("JSON nested too deeply") from None
    except ValueError as error:
        if isinstance(error, InputError):
            raise
        raise InputError(f"malformed JSON: {str(error)[:200]}") from None
    if not isinstance(document, dict):
        raise InputError('the JSON body must be an object: {"image": ...}, {"pixels": ...} or {"images": [...]}')
    return document


def read_json_images(document, limit, pixels_side, max_side):
    given = [key for key in JSON_INPUTS if key in document]
    if len(given) != 1:
        raise InputError('the JSON object needs exactly one of "image", "pixels" or "images"')
    key = given[0]
    if key == "image":
        return [decode_image(decode_base64(document["image"]), limit, max_side)], False
    if key == "pixels":
        return [Decoded.full_size(pixels_to_array(document["pixels"], pixels_side, max_side))], False
    images = document["images"]
    max_batch = current_app.config["MAX_BATCH"]
    if not isinstance(images, list) or not images:
        raise InputError('"images" must be a non-empty array of base64 strings')
    if len(images) > max_batch:
        raise TooLargeError(f"{len(images)} images in one batch; the limit is {max_batch}")
    return decode_each(images, limit, max_side, current_app.config["MAX_BATCH_PIXELS"]), True


def decode_each(images, limit, max_side, batch_pixels):
    """The batch's images decoded one by one, as they are asked for, within `batch_pixels` in all."""
    used = 0
    for index in range(len(images)):
        remaining = batch_pixels - used
        try:
            # Each image's header is checked against what the batch has left, before it is decoded.
            decoded = decode_image(decode_base64(images[index]), min(limit, remaining), max_side)
        except TooLargeError as error:
            if remaining < limit and "pixels, the limit is" in str(error):
                raise TooLargeError(f"images[{index}]: a batch's images may have {batch_pixels} pixels in all, "
                                    f"and the images before this one have {used}") from None
            raise TooLargeError(f"images[{index}]: {error}") from None
        except ValueError as error:
            raise type(error)(f"images[{index}]: {error}") from None
        images[index] = None  # the base64 text is no longer needed
        used += decoded.width * decoded.height
        yield decoded
