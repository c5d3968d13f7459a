"""The JSON API: POST /predict (image bytes, multipart, JSON image/pixels/images) and GET /healthz."""

import json

from flask import Blueprint, current_app, jsonify, request
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge, UnprocessableEntity, UnsupportedMediaType

from serve.decode import InputError, NoInkError, TooLargeError, check_ink, decode_base64, image_to_array, pixels_to_array

blueprint = Blueprint("api", __name__)

IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp", "image/bmp", "image/gif")
ACCEPTED_TYPES = (*IMAGE_TYPES, "multipart/form-data", "application/json")
JSON_INPUTS = ("image", "pixels", "images")
HTTP_ERRORS = {InputError: BadRequest, TooLargeError: RequestEntityTooLarge, NoInkError: UnprocessableEntity}


@blueprint.get("/healthz")
def healthz():
    model = current_app.extensions["model"]
    return {"status": "ok", "model": model.model_id, "variant": model.variant}


@blueprint.post("/predict")
def predict():
    model = current_app.extensions["model"]
    try:
        images, batch = read_images()
        predictions = []
        # One image at a time, decoded, read and let go, so a batch holds one decoded image, not 32.
        for index, image in enumerate(images):
            check_ink(image, model.ink_threshold, f"images[{index}]: " if batch else "")
            predictions.append(model.predict(image))
            del image
    except tuple(HTTP_ERRORS) as error:
        raise HTTP_ERRORS[type(error)](str(error)) from None
    return jsonify({"predictions": predictions} if batch else predictions[0])


def read_images():
    """The request's images as model inputs, and whether it was a batch."""
    if request.content_encoding:
        raise UnsupportedMediaType("Content-Encoding is not supported; send the body uncompressed")
    max_body = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is not None and request.content_length > max_body:
        raise TooLargeError(f"request body too large: {request.content_length} bytes, the limit is {max_body}")
    mimetype = request.mimetype
    limit = current_app.config["MAX_IMAGE_PIXELS"]
    if mimetype in IMAGE_TYPES:
        return [image_to_array(request.get_data(cache=False), limit)], False
    if mimetype == "multipart/form-data":
        return [image_to_array(read_form_file(), limit)], False
    if mimetype == "application/json":
        return read_json_images(parse_json(request.get_data(cache=False)), limit)
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


def read_json_images(document, limit):
    given = [key for key in JSON_INPUTS if key in document]
    if len(given) != 1:
        raise InputError('the JSON object needs exactly one of "image", "pixels" or "images"')
    key = given[0]
    if key == "image":
        return [image_to_array(decode_base64(document["image"]), limit)], False
    if key == "pixels":
        side = current_app.extensions["model"].manifest["normalization"]["canvas_size"]
        return [pixels_to_array(document["pixels"], side)], False
    images = document["images"]
    max_batch = current_app.config["MAX_BATCH"]
    if not isinstance(images, list) or not images:
        raise InputError('"images" must be a non-empty array of base64 strings')
    if len(images) > max_batch:
        raise TooLargeError(f"{len(images)} images in one batch; the limit is {max_batch}")
    return decode_each(images, limit), True


def decode_each(images, limit):
    """The batch's images decoded one by one, as they are asked for."""
    for index in range(len(images)):
        try:
            array = image_to_array(decode_base64(images[index]), limit)
        except ValueError as error:
            raise type(error)(f"images[{index}]: {error}") from None
        images[index] = None  # the base64 text is no longer needed
        yield array
