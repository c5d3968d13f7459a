"""The number reader's ONNX graph: line normalisation -> sequence model -> greedy CTC decoding, boxes and verdict.

Decoding in the graph keeps the page and the server identical: each frame's best class, repeats collapsed,
blanks and "not a digit" dropped, gives the digits. A digit's box is its share of the input's ink columns
between the thinnest ink columns separating it from its neighbours, and the rows those columns hold.
"""

import numpy as np
import onnx
from onnx import TensorProto, helper

from convert.export import export_function, initializer
from reader.contract import (FRAMES_NAME, INPUT_NAME, IR_VERSION, LINE_INPUT_NAME, NOT_DIGIT_CLASS, NOT_NUMBER_NAME,
                             NUMBER_BOXES_NAME, NUMBER_CLASSES, NUMBER_CONFIDENCE_NAME,
                             NUMBER_CONFIDENCES_NAME, NUMBER_DIGITS_NAME, NUMBER_FRAME_STRIDE, NUMBER_HEIGHT,
                             NUMBER_MARGIN, NUMBER_NORMALIZED_NAME, NUMBER_PROBABILITIES_NAME, NUMBER_VERDICT_NAME,
                             NUMBER_VERDICTS, NUM_DIGITS, OPSET)
from reader.number_normalization import build_number_normalization_nodes

SEQUENCE_PREFIX = "sequence/"
FAR = 1e9   # "no neighbour on this side", in input columns


def export_sequence_model(keras_model):
    """The bare sequence model: `line` [1, 28, W, 1] -> `frames` [1, W / 2, classes] (softmax)."""
    import tensorflow as tf

    return export_function(lambda line: tf.nn.softmax(keras_model(line, training=False)), [1, NUMBER_HEIGHT, None, 1],
                           LINE_INPUT_NAME, FRAMES_NAME)


def decode_nodes(frames, not_number_at_least, sure_at_least):
    """Nodes from the frames [1, T, classes] (and the normalisation's leftovers) to every number output."""
    n = helper.make_node
    c = "decode/"
    constants = [
        initializer(c + "frames_shape", [-1, NUMBER_CLASSES], np.int64), initializer(c + "flat", [-1], np.int64),
        initializer(c + "none", [-1], np.int64), initializer(c + "zero", [0], np.int64), initializer(c + "one", [1], np.int64),
        initializer(c + "last", [-1], np.int64), initializer(c + "end", [2 ** 62], np.int64),
        initializer(c + "ten", [NUM_DIGITS], np.int64), initializer(c + "other", [NOT_DIGIT_CLASS], np.int64),
        initializer(c + "other_end", [NOT_DIGIT_CLASS + 1], np.int64), initializer(c + "axis_0", [0], np.int64),
        initializer(c + "axis_1", [1], np.int64),
        initializer(c + "epsilon", 1e-12, np.float32), initializer(c + "one_f", [1.0], np.float32),
        initializer(c + "stride", float(NUMBER_FRAME_STRIDE), np.float32),
        initializer(c + "half_stride", NUMBER_FRAME_STRIDE / 2.0, np.float32),
        initializer(c + "margin", float(NUMBER_MARGIN), np.float32), initializer(c + "half", 0.5, np.float32),
        initializer(c + "zero_f", 0.0, np.float32), initializer(c + "one_step", 1.0, np.float32),
        initializer(c + "far", [FAR], np.float32), initializer(c + "no_ink", [False], np.bool_),
        initializer(c + "zero_scalar", 0, np.int64), initializer(c + "one_scalar", 1, np.int64), initializer(c + "near", [-FAR], np.float32),
        initializer(c + "not_number_at_least", [not_number_at_least], np.float32),
        initializer(c + "sure_at_least", [sure_at_least], np.float32),
        *[initializer(c + name, [NUMBER_VERDICTS.index(name)], np.int64) for name in NUMBER_VERDICTS],
    ]
    nodes = [
        # Greedy CTC: the best class per frame; a digit starts wherever it differs from the frame before.
        n("Reshape", [frames, c + "frames_shape"], [c + "frames"]),
        n("ArgMax", [c + "frames"], [c + "best"], axis=1, keepdims=0),
        n("Slice", [c + "best", c + "zero", c + "last"], [c + "best_but_last"]),
        n("Concat", [c + "none", c + "best_but_last"], [c + "previous"], axis=0),
        n("Equal", [c + "best", c + "previous"], [c + "repeated"]),
        n("Not", [c + "repeated"], [c + "starts"]),
        n("Less", [c + "best", c + "ten"], [c + "is_digit"]),
        n("And", [c + "starts", c + "is_digit"], [c + "kept"]),
        n("NonZero", [c + "kept"], [c + "kept_2d"]),
        n("Reshape", [c + "kept_2d", c + "flat"], [c + "index"]),
        n("Gather", [c + "best", c + "index"], [NUMBER_DIGITS_NAME]),
        # Each digit's probabilities are its first frame's, renormalised over the ten digits.
        n("Gather", [c + "frames", c + "index"], [c + "kept_frames"], axis=0),
        n("Slice", [c + "kept_frames", c + "zero", c + "ten", c + "axis_1"], [c + "digit_part"]),
        n("ReduceSum", [c + "digit_part", c + "axis_1"], [c + "digit_mass"], keepdims=1),
        n("Max", [c + "digit_mass", c + "epsilon"], [c + "digit_mass_safe"]),
        n("Div", [c + "digit_part", c + "digit_mass_safe"], [NUMBER_PROBABILITIES_NAME]),
        n("ReduceMax", [c + "digit_part", c + "axis_1"], [NUMBER_CONFIDENCES_NAME], keepdims=0),
        # The whole number: the product of its digits' confidences; 0 when nothing was read.
        n("Concat", [NUMBER_CONFIDENCES_NAME, c + "one_f"], [c + "confidences_or_one"], axis=0),
        n("ReduceProd", [c + "confidences_or_one"], [c + "product"], keepdims=1),
        n("ReduceMin", [c + "confidences_or_one"], [c + "least_sure"], keepdims=1),
        n("Shape", [c + "index"], [c + "count"]),
        n("Greater", [c + "count", c + "zero"], [c + "read_any"]),
        n("Cast", [c + "read_any"], [c + "read_any_f"], to=TensorProto.FLOAT),
        n("Mul", [c + "product", c + "read_any_f"], [NUMBER_CONFIDENCE_NAME]),
        n("Slice", [c + "frames", c + "other", c + "other_end", c + "axis_1"], [c + "other_column"]),
        n("ReduceMax", [c + "other_column"], [c + "other_most"], keepdims=0),
        n("Reshape", [c + "other_most", c + "one"], [NOT_NUMBER_NAME]),
        # Verdict: nothing read or something that is no digit -> not_number; a doubtful digit -> unsure.
        n("Not", [c + "read_any"], [c + "read_none"]),
        n("GreaterOrEqual", [NOT_NUMBER_NAME, c + "not_number_at_least"], [c + "has_other"]),
        n("Or", [c + "read_none", c + "has_other"], [c + "is_not_number"]),
        n("Less", [c + "least_sure", c + "sure_at_least"], [c + "is_unsure"]),
        n("Where", [c + "is_unsure", c + "unsure", c + "number"], [c + "number_or_unsure"]),
        n("Where", [c + "is_not_number", c + "not_number", c + "number_or_unsure"], [NUMBER_VERDICT_NAME]),
        # Where each digit's frame falls in the input: frame centre -> normalised column -> input column.
        n("Cast", [c + "index"], [c + "index_f"], to=TensorProto.FLOAT),
        n("Mul", [c + "index_f", c + "stride"], [c + "frame_left"]),
        n("Add", [c + "frame_left", c + "half_stride"], [c + "frame_centre"]),
        n("Sub", [c + "frame_centre", c + "margin"], [c + "from_ink"]),
        n("Mul", [c + "from_ink", "column_scale"], [c + "input_offset"]),
        n("Cast", ["left_col"], [c + "left_f"], to=TensorProto.FLOAT),
        n("Add", [c + "input_offset", c + "left_f"], [c + "spike_x_free"]),
        # A frame may fire in the margin beside the ink: keep every digit's position within the ink's columns.
        n("Cast", ["col_end"], [c + "ink_end_f"], to=TensorProto.FLOAT),
        n("Max", [c + "spike_x_free", c + "left_f"], [c + "spike_x_low"]),
        n("Min", [c + "spike_x_low", c + "ink_end_f"], [c + "spike_x"]),
        # Between two neighbours' frames, the thinnest ink column separates them.
        n("ReduceSum", ["ink", "axis_0"], [c + "column_ink"], keepdims=0),
        n("Shape", [c + "column_ink"], [c + "width"]),
        n("Squeeze", [c + "width"], [c + "width_scalar"]),
        n("Cast", [c + "width_scalar"], [c + "width_f"], to=TensorProto.FLOAT),
        n("Range", [c + "zero_f", c + "width_f", c + "one_step"], [c + "columns"]),
        n("Add", [c + "columns", c + "half"], [c + "column_centres"]),
        n("Unsqueeze", [c + "column_centres", c + "axis_0"], [c + "columns_row"]),
        n("Slice", [c + "spike_x", c + "zero", c + "last"], [c + "left_spikes"]),
        n("Slice", [c + "spike_x", c + "one", c + "end"], [c + "right_spikes"]),
        n("Unsqueeze", [c + "left_spikes", c + "axis_1"], [c + "left_spikes_col"]),
        n("Unsqueeze", [c + "right_spikes", c + "axis_1"], [c + "right_spikes_col"]),
        n("GreaterOrEqual", [c + "columns_row", c + "left_spikes_col"], [c + "after_left"]),
        n("Less", [c + "columns_row", c + "right_spikes_col"], [c + "before_right"]),
        n("And", [c + "after_left", c + "before_right"], [c + "between"]),
        n("Not", [c + "between"], [c + "outside"]),
        n("Cast", [c + "outside"], [c + "outside_f"], to=TensorProto.FLOAT),
        n("Mul", [c + "outside_f", c + "far"], [c + "penalty"]),
        n("Unsqueeze", [c + "column_ink", c + "axis_0"], [c + "column_ink_row"]),
        n("Add", [c + "column_ink_row", c + "penalty"], [c + "separation_cost"]),
        n("ArgMin", [c + "separation_cost"], [c + "cuts"], axis=1, keepdims=0),
        n("Cast", [c + "cuts"], [c + "cuts_f"], to=TensorProto.FLOAT),
        n("Add", [c + "cuts_f", c + "half"], [c + "spike_cuts"]),
        # When the ink falls into exactly as many pieces (runs of columns) as digits were read, which is how
        # most people write, the empty columns between the pieces are the cuts; frames only fill in for
        # touching digits, since CTC may fire anywhere near its digit.
        n("Greater", ["col_has_ink", c + "zero_f"], [c + "has_ink"]),
        n("Slice", [c + "has_ink", c + "zero", c + "last"], [c + "has_ink_but_last"]),
        n("Concat", [c + "no_ink", c + "has_ink_but_last"], [c + "left_has_ink"], axis=0),
        n("Not", [c + "has_ink"], [c + "empty"]),
        n("And", [c + "left_has_ink", c + "empty"], [c + "piece_ends"]),
        n("Less", [c + "column_centres", c + "ink_end_f"], [c + "inside_ink"]),
        n("And", [c + "piece_ends", c + "inside_ink"], [c + "gap_starts"]),
        n("NonZero", [c + "gap_starts"], [c + "gaps_2d"]),
        n("Reshape", [c + "gaps_2d", c + "flat"], [c + "gaps"]),
        n("Shape", [c + "gaps"], [c + "gap_count"]),
        n("Sub", [c + "count", c + "one"], [c + "cut_count"]),
        n("Equal", [c + "gap_count", c + "cut_count"], [c + "pieces_are_digits"]),
        n("Concat", [c + "gaps", c + "zero"], [c + "gaps_or_zero"], axis=0),
        n("Max", [c + "cut_count", c + "zero"], [c + "cut_count_safe"]),
        n("Squeeze", [c + "cut_count_safe"], [c + "cut_count_scalar"]),
        n("Range", [c + "zero_scalar", c + "cut_count_scalar", c + "one_scalar"], [c + "cut_index"]),
        n("Min", [c + "cut_index", c + "gap_count"], [c + "cut_index_safe"]),
        n("Gather", [c + "gaps_or_zero", c + "cut_index_safe"], [c + "gap_cuts"]),
        n("Cast", [c + "gap_cuts"], [c + "gap_cuts_f"], to=TensorProto.FLOAT),
        n("Where", [c + "pieces_are_digits", c + "gap_cuts_f", c + "spike_cuts"], [c + "cut_centres"]),
        n("Concat", [c + "near", c + "cut_centres"], [c + "starts_all"], axis=0),
        n("Concat", [c + "cut_centres", c + "far"], [c + "ends_all"], axis=0),
        n("Slice", [c + "starts_all", c + "zero", c + "count"], [c + "box_starts"]),
        n("Slice", [c + "ends_all", c + "zero", c + "count"], [c + "box_ends"]),
        n("Unsqueeze", [c + "box_starts", c + "axis_1"], [c + "box_starts_col"]),
        n("Unsqueeze", [c + "box_ends", c + "axis_1"], [c + "box_ends_col"]),
        n("GreaterOrEqual", [c + "columns_row", c + "box_starts_col"], [c + "after_start"]),
        n("Less", [c + "columns_row", c + "box_ends_col"], [c + "before_end"]),
        n("And", [c + "after_start", c + "before_end"], [c + "in_box"]),
        n("Cast", [c + "in_box"], [c + "in_box_f"], to=TensorProto.FLOAT),
        n("Unsqueeze", ["col_has_ink", c + "axis_0"], [c + "col_has_ink_row"]),
        n("Mul", [c + "in_box_f", c + "col_has_ink_row"], [c + "box_columns"]),
        n("ArgMax", [c + "box_columns"], [c + "x0"], axis=1, keepdims=1, select_last_index=0),
        n("ArgMax", [c + "box_columns"], [c + "x_last"], axis=1, keepdims=1, select_last_index=1),
        n("Add", [c + "x_last", c + "one"], [c + "x1"]),
        n("Transpose", [c + "box_columns"], [c + "box_columns_t"], perm=[1, 0]),
        n("MatMul", ["ink_mask", c + "box_columns_t"], [c + "row_ink"]),
        n("Transpose", [c + "row_ink"], [c + "box_row_ink"], perm=[1, 0]),
        n("Greater", [c + "box_row_ink", c + "zero_f"], [c + "box_rows"]),
        n("Cast", [c + "box_rows"], [c + "box_rows_f"], to=TensorProto.FLOAT),
        n("ArgMax", [c + "box_rows_f"], [c + "y0"], axis=1, keepdims=1, select_last_index=0),
        n("ArgMax", [c + "box_rows_f"], [c + "y_last"], axis=1, keepdims=1, select_last_index=1),
        n("Add", [c + "y_last", c + "one"], [c + "y1"]),
        n("Concat", [c + "x0", c + "y0", c + "x1", c + "y1"], [NUMBER_BOXES_NAME], axis=1),
    ]
    return nodes, constants


NUMBER_OUTPUTS = [
    (NUMBER_DIGITS_NAME, TensorProto.INT64, ["digits"]),
    (NUMBER_PROBABILITIES_NAME, TensorProto.FLOAT, ["digits", NUM_DIGITS]),
    (NUMBER_CONFIDENCES_NAME, TensorProto.FLOAT, ["digits"]),
    (NUMBER_BOXES_NAME, TensorProto.INT64, ["digits", 4]),
    (NUMBER_CONFIDENCE_NAME, TensorProto.FLOAT, [1]),
    (NOT_NUMBER_NAME, TensorProto.FLOAT, [1]),
    (NUMBER_VERDICT_NAME, TensorProto.INT64, [1]),
    (NUMBER_NORMALIZED_NAME, TensorProto.FLOAT, [NUMBER_HEIGHT, "line_width"]),
]


def join_number_reader(sequence_model, not_number_at_least, sure_at_least):
    """`image` [H, W] -> normalisation -> sequence model -> decoded digits, boxes, confidence and verdict."""
    sequence_model = onnx.compose.add_prefix(sequence_model, SEQUENCE_PREFIX)
    graph = sequence_model.graph
    decode, constants = decode_nodes(SEQUENCE_PREFIX + FRAMES_NAME, not_number_at_least, sure_at_least)
    nodes = build_number_normalization_nodes(LINE_INPUT_NAME) + [
        helper.make_node("Identity", [LINE_INPUT_NAME], [SEQUENCE_PREFIX + LINE_INPUT_NAME]),
        *graph.node,
        *decode,
    ]
    joined = helper.make_graph(
        nodes, "number_reader",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["height", "width"])],
        [helper.make_tensor_value_info(name, dtype, shape) for name, dtype, shape in NUMBER_OUTPUTS],
        initializer=[*graph.initializer, *constants],
    )
    used_domains = {node.domain for node in nodes} | {""}
    opsets = {entry.domain: entry.version for entry in sequence_model.opset_import if entry.domain in used_domains}
    opsets[""] = OPSET
    model = helper.make_model(joined, opset_imports=[helper.make_opsetid(domain, version) for domain, version in opsets.items()],
                              producer_name="digit-kiosk convert.numbers")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model

