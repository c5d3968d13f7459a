"""A feedback entry as the store keeps it, and the words of its fields: what both serve (writes) and train (read) say.

An entry is about a digit (the default) or, with mode "number", about a number read by the number reader.
"""

from dataclasses import dataclass

NOT_DIGIT = "not_digit"
NOT_NUMBER = "not_number"
DIGIT_MODE, NUMBER_MODE = "digit", "number"
MODES = (DIGIT_MODE, NUMBER_MODE)
# The largest drawing the page sends in each mode, width x height: its pad (reader.contract's PAD_SIDE and
# NUMBER_PAD_WIDTH x NUMBER_PAD_HEIGHT, which serve/ and feedback/ do not import; a test holds them equal).
MAX_IMAGE_SIZE = {DIGIT_MODE: (280, 280), NUMBER_MODE: (840, 280)}


@dataclass(frozen=True)
class Entry:
    id: str
    model: str
    predicted: int | str  # a digit 0..9, or in number mode the number as a string ("" when none was read)
    verdict: str
    label: str  # "0".."9" or "not_digit"; in number mode "2026" or "not_number"
    image: bytes  # the PNG as the page sent it (checked: one readable PNG within MAX_IMAGE_SIZE)
    strokes: str | None  # compact JSON, or None
    received_at: float
    mode: str = DIGIT_MODE
    server_read: str | None = None  # what the server's own model reads in `image`, as `shown` says it
    read_model: str | None = None  # the model that read it

    @property
    def shown(self):
        """What the page told the visitor: the digit or number, or "not_digit" / "not_number"."""
        return shown(self.mode, self.predicted, self.verdict)

    @property
    def correct(self):
        """Whether the visitor confirmed the answer (True) or corrected it (False)."""
        return self.label == self.shown

    @property
    def size(self):
        """Bytes this entry adds to the store, for its byte bound."""
        return len(self.image) + len(self.strokes or "")


def shown(mode, predicted, verdict):
    """What the page told the visitor: the digit or number it read, or that there was none."""
    refusal = NOT_NUMBER if mode == NUMBER_MODE else NOT_DIGIT
    return refusal if verdict == refusal else str(predicted)
