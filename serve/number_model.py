"""The number reader: answers from the session of the file that the manifest's "numbers" section names.

serve/model.py checks the section and its files (as it does the digit reader's) and hands this class a session.
"""

# The section's "outputs" keys, in the order the graph's outputs are asked for.
OUTPUT_KEYS = ("digits", "probabilities", "confidences", "doubtful", "boxes", "confidence", "not_number", "verdict")


class NumberReader:
    """Reads a line of handwritten digits, left to right."""

    def __init__(self, section, variant, session):
        self.variant = variant
        self.session = session
        self.model_id = section["model_id"]
        self.input_name = section["input"]["name"]
        self.output_names = [section["outputs"][key]["name"] for key in OUTPUT_KEYS]
        self.verdicts = section["outputs"]["verdict"]["values"]
        self.ink_threshold = float(section.get("normalization", {}).get("ink_threshold", 0.0))

    def read(self, image):
        """The graph's digits, probabilities, confidences, doubtful, boxes, confidence, not_number and verdict for one image."""
        return self.session.run(self.output_names, {self.input_name: image})

    def predict(self, decoded):
        """The JSON-ready answer for one serve.decode.Decoded; boxes in the pixels of the image that was sent."""
        digits, probabilities, confidences, doubtful, boxes, confidence, not_number, verdict = self.read(decoded.image)
        return {
            "number": "".join(str(int(digit)) for digit in digits),
            "digits": [
                {"digit": int(digit), "confidence": float(digit_confidence), "probabilities": row.tolist(),
                 "doubtful": bool(doubt), "box": decoded.original_box(box)}
                for digit, digit_confidence, row, doubt, box in zip(digits, confidences, probabilities, doubtful, boxes)
            ],
            "confidence": float(confidence[0]),
            "verdict": self.verdicts[int(verdict[0])],
            "not_number": float(not_number[0]),
            "model": self.model_id,
        }
