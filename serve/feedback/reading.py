"""The server's own reading of a stored drawing, so /stats never rests on what a client claims it was shown."""

import dataclasses

from feedback.entry import NUMBER_MODE, shown
from serve.decode import MAX_DECODED_SIDE, MAX_NUMBER_DECODED_SIDE, decode_image


def read_again(entry, model, max_pixels):
    """`entry` with `server_read` (what this server's model reads in its image) and `read_model` set.

    The server holds one model per mode: the entry is read by it, whichever model the client named; /stats
    says so when the two differ.
    """
    if entry.mode == NUMBER_MODE:
        answer = model.numbers.predict(decode_image(entry.image, max_pixels, MAX_NUMBER_DECODED_SIDE))
        reading = shown(NUMBER_MODE, answer["number"], answer["verdict"])
    else:
        answer = model.predict(decode_image(entry.image, max_pixels, MAX_DECODED_SIDE).image)
        reading = shown(entry.mode, answer["digit"], answer["verdict"])
    return dataclasses.replace(entry, server_read=reading, read_model=answer["model"])
