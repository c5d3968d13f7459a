"""What the check sends: a printed digit for /predict, a printed number for /number, and feedback on an answer.

Drawn with Pillow's bundled font, dark on light like the kiosk's pads (280x280 and 840x280).
"""

import base64
import io
import json
import uuid

from PIL import Image, ImageDraw, ImageFont

DIGIT = 3
NUMBER = "47"


def png(text, size):
    image = Image.new("L", size, 255)
    font = ImageFont.load_default(size=size[1] * 0.7)
    ImageDraw.Draw(image).text((size[0] / 2, size[1] / 2), text, fill=0, font=font, anchor="mm",
                               stroke_width=size[1] // 40, stroke_fill=0)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


DIGIT_PNG = png(str(DIGIT), (280, 280))
NUMBER_PNG = png(NUMBER, (840, 280))
LOAD_BODIES = [("/predict", "image/png", DIGIT_PNG), ("/number", "image/png", NUMBER_PNG)]


def feedback_body(answer):
    """A visitor's confirmation of a /predict answer, as the page sends it."""
    return json.dumps({"id": str(uuid.uuid4()), "model": answer["model"], "predicted": answer["digit"],
                       "verdict": answer["verdict"], "label": DIGIT,
                       "image": base64.b64encode(DIGIT_PNG).decode()}).encode()
