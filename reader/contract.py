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


# ---------------------------------------------------------------------------------------------------------------
# The number reader (numbers-*.onnx): a line of 1-8 handwritten digits, read left to right.
# Same input as the digit reader (INPUT_NAME, float32 [H, W], ink = 1, any size). The line is cropped to its ink,
# scaled so the ink is NUMBER_BOX pixels high (aspect kept), and read by a convolutional sequence model whose
# frames are decoded greedily (CTC) inside the graph.

NUMBER_HEIGHT = CANVAS_SIZE           # the normalised line is NUMBER_HEIGHT pixels high, any width
NUMBER_BOX = 20                       # the ink's height after scaling, as MNIST's 20-pixel box
NUMBER_MARGIN = 8                     # empty columns left and right of the ink, so edge digits sit in full windows
NUMBER_MAX_INK_WIDTH = 432            # the scaled ink is at most this wide (a long scrawl is shrunk to fit)
NUMBER_WIDTH_MULTIPLE = 4             # the trunk pools width by 4
NUMBER_FRAME_STRIDE = 2               # one CTC frame per 2 columns of the normalised line
MAX_NUMBER_DIGITS = 8                 # what training composes and the targets measure (longer lines still read)

NUMBER_CLASSES = NUM_DIGITS + 2       # per frame: the ten digits, "not a digit" (NOT_DIGIT_CLASS) and the CTC blank
NUMBER_BLANK_CLASS = NUM_DIGITS + 1
LINE_INPUT_NAME = "line"              # NHWC [1, NUMBER_HEIGHT, W, 1], the normalised line handed to the sequence model
FRAMES_NAME = "frames"                # [1, T, NUMBER_CLASSES]: softmax per frame

# The number reader's graph outputs; K is the number of digits read (0 for nothing).
NUMBER_DIGITS_NAME = "digits"                 # int64 [K]: the digits, left to right
NUMBER_PROBABILITIES_NAME = "probabilities"   # float32 [K, 10]: each digit's ten probabilities (each row sums to 1)
NUMBER_CONFIDENCES_NAME = "confidences"       # float32 [K]: each digit's probability among all frame classes
NUMBER_DOUBTFUL_NAME = "doubtful"             # bool [K]: a guess for ink no digit reading explains, or confidence < sure_at_least
NUMBER_BOXES_NAME = "boxes"                   # int64 [K, 4]: x0, y0, x1, y1 of each digit's ink in input pixels, x1/y1 exclusive
NUMBER_CONFIDENCE_NAME = "confidence"         # float32 [1]: the whole number's, the product of the digits' (0 if K = 0)
NOT_NUMBER_NAME = "not_number"                # float32 [1]: the largest "not a digit" probability over the frames
NUMBER_VERDICT_NAME = "verdict"               # int64 [1]: an index into NUMBER_VERDICTS
NUMBER_NORMALIZED_NAME = "normalized"         # float32 [NUMBER_HEIGHT, W]: the line as the sequence model saw it
NUMBER_VERDICTS = ["number", "unsure", "not_number"]

# Used when training has not tuned its own.
DEFAULT_NOT_NUMBER_AT_LEAST = 0.5     # not_number >= this, or no digit read: "not_number"
DEFAULT_NUMBER_SURE_AT_LEAST = 0.5    # otherwise any digit's confidence below this: "unsure"

# The number pad: wide, with the digit pad's pen relative to the height of a digit.
NUMBER_PAD_HEIGHT = PAD_SIDE
NUMBER_PAD_WIDTH = 3 * PAD_SIDE


def describe_number_outputs():
    """The manifest's numbers.outputs section."""
    return {
        "digits": {"name": NUMBER_DIGITS_NAME, "dtype": "int64", "shape": ["digits"]},
        "probabilities": {"name": NUMBER_PROBABILITIES_NAME, "dtype": "float32", "shape": ["digits", NUM_DIGITS]},
        "confidences": {"name": NUMBER_CONFIDENCES_NAME, "dtype": "float32", "shape": ["digits"]},
        "doubtful": {"name": NUMBER_DOUBTFUL_NAME, "dtype": "bool", "shape": ["digits"]},
        "boxes": {"name": NUMBER_BOXES_NAME, "dtype": "int64", "shape": ["digits", 4],
                  "order": ["x0", "y0", "x1", "y1"], "units": "input pixels, x1 and y1 exclusive"},
        "confidence": {"name": NUMBER_CONFIDENCE_NAME, "dtype": "float32", "shape": [1]},
        "not_number": {"name": NOT_NUMBER_NAME, "dtype": "float32", "shape": [1]},
        "verdict": {"name": NUMBER_VERDICT_NAME, "dtype": "int64", "shape": [1], "values": NUMBER_VERDICTS},
        "normalized": {"name": NUMBER_NORMALIZED_NAME, "dtype": "float32", "shape": [NUMBER_HEIGHT, "width"]},
    }
