"""What a shipped digit reader takes and gives: one definition, written into artifacts/manifest.json by convert/."""

OPSET = 18
IR_VERSION = 8  # the newest IR that onnxruntime-web and tf2onnx's output agree on

# The reader's graph inputs and outputs.
INPUT_NAME = "image"                  # float32 [H, W], ink = 1, background = 0, any size
PROBABILITIES_NAME = "probabilities"  # float32 [10]: which digit, if it is one (sums to 1)
NOT_DIGIT_NAME = "not_digit"          # float32 [1]: how likely the drawing is no digit at all
VERDICT_NAME = "verdict"              # int64 [1]: an index into VERDICTS, decided inside the graph
NORMALIZED_NAME = "normalized"        # float32 [28, 28]: the digit exactly as the classifier saw it
CLASSIFIER_INPUT_NAME = "digits"      # NHWC [N, 28, 28, 1], the normalised digit handed to the CNN
CLASSIFIER_OUTPUT_NAME = "classes"    # [N, 11]: softmax over the ten digits and "not a digit"

CANVAS_SIZE = 28                      # side of the normalised digit the classifier sees

LABELS = [str(digit) for digit in range(10)]
NUM_DIGITS = len(LABELS)
NOT_DIGIT_CLASS = NUM_DIGITS          # the classifier's 11th class
NUM_CLASSES = NUM_DIGITS + 1
VERDICTS = ["digit", "unsure", "not_digit"]

# Verdict thresholds used when training has not tuned its own (train_summary.json "verdict").
DEFAULT_NOT_DIGIT_AT_LEAST = 0.5      # not_digit >= this: "not_digit"
DEFAULT_SURE_AT_LEAST = 0.5           # otherwise the top digit's share of all 11 classes below this: "unsure"

# The kiosk's pad, as web/pad.js draws it: white round pen on black, width a fraction of the pad's side.
PAD_SIDE = 280
PAD_PEN_WIDTH = 0.07


def describe_outputs():
    """The manifest's "outputs" section."""
    return {
        "probabilities": {"name": PROBABILITIES_NAME, "dtype": "float32", "shape": [NUM_DIGITS]},
        "not_digit": {"name": NOT_DIGIT_NAME, "dtype": "float32", "shape": [1]},
        "verdict": {"name": VERDICT_NAME, "dtype": "int64", "shape": [1], "values": VERDICTS},
        "normalized": {"name": NORMALIZED_NAME, "dtype": "float32", "shape": [CANVAS_SIZE, CANVAS_SIZE]},
    }


def describe_input():
    """The manifest's "input" section."""
    return {"name": INPUT_NAME, "dtype": "float32", "shape": ["height", "width"], "min_side": 1,
            "range": [0.0, 1.0], "ink": 1.0, "background": 0.0}
