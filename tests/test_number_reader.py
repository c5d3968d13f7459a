"""The committed number reader: its manifest section, its graph, its decoding and what it reads."""

import numpy as np
import onnx
import pytest

from convert.manifest import sha256_bytes
from reader.contract import (INPUT_NAME, LINE_INPUT_NAME, NUMBER_BOX, NUMBER_HEIGHT, NUMBER_MARGIN,
                             NUMBER_MAX_INK_WIDTH, NUMBER_VERDICTS, NUMBER_WIDTH_MULTIPLE, describe_input,
                             describe_number_outputs)
from reader.number_normalization import LineNormalizer
from tests.conftest import ARTIFACTS_DIR
from train.compose import compose, compose_numbers, mnist_glyph

# Floors for the committed reader on numbers composed from MNIST test digits; bench/ measures the targets.
MIN_FOUR_DIGITS_RIGHT = 0.9
MIN_SINGLE_DIGITS_RIGHT = 0.95
SEQUENCE_FRAMES = "sequence/frames"


@pytest.fixture(scope="module")
def numbers(manifest):
    return manifest["numbers"]


@pytest.fixture(scope="module", params=["fp32", "int8"])
def reader(request, numbers):
    import onnxruntime

    path = ARTIFACTS_DIR / numbers["variants"][request.param]["file"]
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return request.param, path, session


def read(session, image):
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(None, {INPUT_NAME: np.ascontiguousarray(image, np.float32)})))


def test_section_describes_the_files(numbers):
    assert numbers["input"] == describe_input() and numbers["outputs"] == describe_number_outputs()
    assert numbers["model_id"] == f"numbers-{numbers['variants']['fp32']['sha256'][:12]}"
    assert numbers["default_variant"] in numbers["variants"] and numbers["browser_variant"] in numbers["variants"]
    for entry in numbers["variants"].values():
        data = (ARTIFACTS_DIR / entry["file"]).read_bytes()
        assert entry["file"].startswith("numbers-") and sha256_bytes(data) == entry["sha256"] and len(data) == entry["bytes"]


def test_graph_is_standard_opset_18_with_the_contract(reader, numbers):
    _, path, _ = reader
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    assert [i.name for i in model.graph.input] == [numbers["input"]["name"]]
    assert [o.name for o in model.graph.output] == [o["name"] for o in numbers["outputs"].values()]
    assert {entry.domain for entry in model.opset_import} <= {"", "ai.onnx"}
    assert max(entry.version for entry in model.opset_import) <= 18


@pytest.fixture(scope="module")
def test_numbers(mnist):
    return compose_numbers(mnist["x_test"], mnist["y_test"], 40, seed=11, lengths=(1, 4))


def test_reads_numbers_composed_from_mnist_test_digits(reader, test_numbers):
    _, _, session = reader
    right = {1: [], 4: []}
    for line, digits in test_numbers:
        right[len(digits)].append(read(session, line.image)["digits"].tolist() == digits)
    assert np.mean(right[1]) >= MIN_SINGLE_DIGITS_RIGHT
    assert np.mean(right[4]) >= MIN_FOUR_DIGITS_RIGHT


def test_outputs_agree_with_each_other(reader, test_numbers):
    _, _, session = reader
    for line, _ in test_numbers[-10:]:
        out = read(session, line.image)
        k = len(out["digits"])
        assert out["probabilities"].shape == (k, 10) and np.allclose(out["probabilities"].sum(1), 1, atol=1e-5)
        assert np.array_equal(out["probabilities"].argmax(1), out["digits"])
        assert np.isclose(out["confidence"][0], np.prod(out["confidences"]), rtol=1e-5)
        assert NUMBER_VERDICTS[int(out["verdict"][0])] in NUMBER_VERDICTS


def test_boxes_find_each_digit_in_input_pixels(reader, mnist):
    """Well-separated digits, the line drawn 3x larger: each box covers its digit's own ink box and little else."""
    _, _, session = reader
    rng = np.random.default_rng(5)
    checked = 0
    for _ in range(12):
        picks = rng.integers(len(mnist["x_test"]), size=3)
        line = compose([mnist_glyph(mnist["x_test"][pick]) for pick in picks], rng)
        image = np.kron(line.image, np.ones((3, 3), np.float32))
        out = read(session, image)
        if out["digits"].tolist() != [int(mnist["y_test"][pick]) for pick in picks]:
            continue
        if any(a[2] >= b[0] for a, b in zip(line.boxes, line.boxes[1:])):
            continue  # touching neighbours share columns; the box is then a cut, not the glyph's own box
        checked += 1
        for box, truth in zip(out["boxes"].tolist(), line.boxes):
            truth = [3 * value for value in truth]
            assert abs(box[0] - truth[0]) <= 3 and abs(box[2] - truth[2]) <= 3, (box, truth)
            assert abs(box[1] - truth[1]) <= 3 and abs(box[3] - truth[3]) <= 3, (box, truth)
    assert checked >= 4


def test_blank_and_tiny_images_read_as_no_number(reader):
    _, _, session = reader
    out = read(session, np.zeros((40, 90), np.float32))
    assert out["digits"].shape == (0,) and out["boxes"].shape == (0, 4)
    assert NUMBER_VERDICTS[int(out["verdict"][0])] == "not_number" and out["confidence"][0] == 0.0
    # A dot is refused too, though the digit reader's best guess for it is still given, for the page to grey out.
    out = read(session, np.ones((1, 1), np.float32))
    assert NUMBER_VERDICTS[int(out["verdict"][0])] == "not_number" and len(out["digits"]) <= 1


def reference_lines(test_numbers):
    """Lines of every layout the decoding distinguishes: composed (touching), separate drawn digits, printed, a doodle."""
    from reader.pen import draw_strokes
    from tests.test_api import NON_DIGITS

    lines = [line.image for line, _ in test_numbers[::8]]
    lines += [separate_digits(test_numbers, picks) for picks in ([0, 1, 2], [3, 4], [5, 6, 7, 8])]
    lines += [separate_digits(test_numbers, picks, gap=-2) for picks in ([0, 1], [2, 3, 4], [9, 10])]
    lines += [written([TWO, OPEN_FOUR, SEVEN]), written([TWO, NON_DIGITS["star"], SEVEN])]
    lines += [printed("2026"), printed("31415"), draw_strokes(NON_DIGITS["two_digits"], side=280)[0],
              draw_strokes(NON_DIGITS["star"], side=280)[0]]
    return lines


# Pen strokes on the pad (x, y in 0..1). The open 4's stem stands free of the rest: two ink pieces, one digit.
TWO = [[(0.2, 0.3), (0.5, 0.1), (0.8, 0.3), (0.2, 0.9), (0.8, 0.9)]]
OPEN_FOUR = [[(0.45, 0.1), (0.12, 0.62), (0.5, 0.62)], [(0.62, 0.1), (0.62, 0.95)]]
SEVEN = [[(0.2, 0.15), (0.8, 0.15), (0.45, 0.9)]]


def written(glyphs):
    """Glyphs drawn with the pad's pen, one pad each, side by side with empty columns between them."""
    from reader.pen import draw_strokes

    parts = []
    for strokes in glyphs:
        pad = draw_strokes(strokes, side=280)[0]
        columns = np.flatnonzero((pad > 0).any(0))
        parts += [pad[:, columns[0]:columns[-1] + 1], np.zeros((280, 40), np.float32)]
    return np.concatenate(parts[:-1], axis=1)


def separate_digits(test_numbers, picks, gap=6):
    """Single MNIST test digits (from the one-digit lines) side by side, `gap` empty columns between them (a
    negative gap makes neighbours overlap)."""
    singles = [line.image for line, digits in test_numbers if len(digits) == 1]
    glyphs = [singles[pick][:, (singles[pick] > 0.1).any(0)] for pick in picks]
    height = max(glyph.shape[0] for glyph in glyphs)
    width = sum(glyph.shape[1] for glyph in glyphs) + gap * (len(glyphs) - 1)
    line, left = np.zeros((height, width), np.float32), 0
    for glyph in glyphs:
        line[:glyph.shape[0], left:left + glyph.shape[1]] = np.maximum(line[:glyph.shape[0], left:left + glyph.shape[1]], glyph)
        left += glyph.shape[1] + gap
    return line


def printed(text, height=170):
    """A number in DejaVu Sans on an 840x280 canvas, as a script would send a photo of a printed number."""
    from PIL import Image, ImageDraw, ImageFont

    canvas = Image.new("L", (840, 280))
    ImageDraw.Draw(canvas).text((40, 40), text, fill=255, font=ImageFont.truetype("DejaVuSans.ttf", height))
    return np.asarray(canvas, np.float32) / 255


@pytest.fixture(scope="module")
def traced(request, numbers):
    """Each variant with the frames and the normalisation's leftovers as extra outputs, and its digit reader."""
    import onnxruntime

    extra = {SEQUENCE_FRAMES: onnx.TensorProto.FLOAT, "left_col": onnx.TensorProto.INT64,
             "col_end": onnx.TensorProto.INT64, "column_scale": onnx.TensorProto.FLOAT}
    sessions = {}
    for variant, entry in numbers["variants"].items():
        model = onnx.load(ARTIFACTS_DIR / entry["file"])
        model.graph.output.extend(onnx.helper.make_tensor_value_info(name, dtype, None) for name, dtype in extra.items())
        sessions[variant] = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sessions


@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_graph_decodes_as_its_numpy_reference(variant, traced, numbers, manifest, test_numbers):
    """Digits, boxes, confidences and verdict equal the numpy oracle's on the graph's own frames."""
    import onnxruntime

    from tests.number_reference import decode

    digit_reader = onnxruntime.InferenceSession(str(ARTIFACTS_DIR / manifest["variants"][variant]["file"]),
                                                providers=["CPUExecutionProvider"])
    verdicts = manifest["outputs"]["verdict"]["values"]

    def read_piece(piece):
        probabilities, not_digit, verdict, _ = digit_reader.run(None, {INPUT_NAME: np.ascontiguousarray(piece, np.float32)})
        return probabilities, float(not_digit[0]), verdicts[int(verdict[0])]

    session = traced[variant]
    names = [output.name for output in session.get_outputs()]
    for image in reference_lines(test_numbers):
        out = dict(zip(names, session.run(None, {INPUT_NAME: np.ascontiguousarray(image, np.float32)})))
        expected = decode(image, out[SEQUENCE_FRAMES][0], int(out["left_col"][0]), int(out["col_end"][0]),
                          float(out["column_scale"].reshape(-1)[0]), read_piece, numbers["decoding"], numbers["verdict"])
        assert out["digits"].tolist() == expected.digits
        assert out["boxes"].tolist() == [list(box) for box in expected.boxes]
        assert np.allclose(out["confidences"], expected.confidences, atol=1e-5)
        assert out["doubtful"].tolist() == expected.doubtful
        assert np.allclose(out["probabilities"], expected.probabilities, atol=1e-5)
        assert np.isclose(out["not_number"][0], expected.not_number, atol=1e-6)
        assert NUMBER_VERDICTS[int(out["verdict"][0])] == expected.verdict


def test_a_digit_written_in_two_pieces_is_one_digit(reader):
    _, _, session = reader
    image = written([TWO, OPEN_FOUR, SEVEN])
    assert len(empty_column_runs(image)) == 4
    out = read(session, image)
    assert out["digits"].tolist() == [2, 4, 7] and NUMBER_VERDICTS[int(out["verdict"][0])] == "number"


def test_ink_that_no_digit_explains_is_never_dropped_silently(reader):
    """A star between two digits: the answer is not a confident number, and the star's place is marked doubtful."""
    from tests.test_api import NON_DIGITS

    _, _, session = reader
    out = read(session, written([TWO, NON_DIGITS["star"], SEVEN]))
    verdict = NUMBER_VERDICTS[int(out["verdict"][0])]
    assert verdict != "number", out["digits"]
    assert out["doubtful"].tolist() == [False, True, False], (out["digits"], out["doubtful"])


def empty_column_runs(image):
    inked = np.concatenate([[False], (image > 0.1).any(0), [False]])
    return np.flatnonzero(inked[1:] != inked[:-1]).reshape(-1, 2)


def test_line_normalisation_geometry():
    normalizer = LineNormalizer()
    image = np.zeros((300, 900), np.float32)
    image[40:240, 100:130] = 1.0
    image[60:200, 400:520] = 1.0
    line = normalizer.normalize(image)
    rows, cols = np.nonzero(line > 0)
    assert line.shape[0] == NUMBER_HEIGHT and line.shape[1] % NUMBER_WIDTH_MULTIPLE == 0
    assert rows.max() - rows.min() + 1 == NUMBER_BOX and cols.min() == NUMBER_MARGIN
    assert line.max() == pytest.approx(1.0)
    # A long scrawl is shrunk to the width limit instead of growing without bound.
    long = normalizer.normalize(np.ones((3, 5000), np.float32))
    assert (long > 0).any(0).sum() <= NUMBER_MAX_INK_WIDTH and long.shape[1] <= NUMBER_MAX_INK_WIDTH + 2 * NUMBER_MARGIN + 4


def test_the_sequence_model_input_is_named_in_the_contract(numbers):
    model = onnx.load(ARTIFACTS_DIR / numbers["variants"]["fp32"]["file"])
    assert LINE_INPUT_NAME in {output for node in model.graph.node for output in node.output}


def test_doodles_are_no_number_and_two_digits_are_one(reader):
    """The digit reader's doodles: the number reader turns the non-digits away and reads the two digits as 17."""
    from reader.pen import draw_strokes
    from tests.test_api import NON_DIGITS

    _, _, session = reader
    for name, strokes in NON_DIGITS.items():
        out = read(session, draw_strokes(strokes, side=280)[0])
        verdict = NUMBER_VERDICTS[int(out["verdict"][0])]
        if name == "two_digits":
            assert out["digits"].tolist() == [1, 7] and verdict == "number", name
        else:
            assert verdict == "not_number", (name, out["digits"], out["not_number"])
