"""The number reader's normalisation, an ONNX graph in front of its sequence model.

A line of digits is cropped to its ink like a single digit, then scaled (aspect kept, anti-aliased) so the ink
is NUMBER_BOX pixels high, as tall as an MNIST digit in its box; a long scrawl is shrunk further so its width
stays within NUMBER_MAX_INK_WIDTH. The brightest pixel becomes 1, and the line is padded to NUMBER_HEIGHT rows,
centred, with NUMBER_MARGIN empty columns either side (rounded up to a width the trunk's pooling divides).
The graph also leaves `ink_mask`, `left_col` and `column_scale` behind, so the decoder can map each digit
back to input pixels.
"""

import numpy as np
import onnx
from onnx import TensorProto, helper

from reader.contract import (INPUT_NAME, IR_VERSION, LINE_INPUT_NAME, NUMBER_BOX, NUMBER_HEIGHT, NUMBER_MARGIN,
                             NUMBER_MAX_INK_WIDTH, NUMBER_NORMALIZED_NAME, NUMBER_WIDTH_MULTIPLE, OPSET)
from reader.normalization import INK_THRESHOLD, MASS_EPSILON, _constant, ink_crop_nodes


def describe_number_normalization():
    """The constants a reader of the manifest needs to reproduce the graph."""
    return {
        "height": NUMBER_HEIGHT,
        "ink_height": NUMBER_BOX,
        "margin": NUMBER_MARGIN,
        "max_ink_width": NUMBER_MAX_INK_WIDTH,
        "width_multiple": NUMBER_WIDTH_MULTIPLE,
        "ink_threshold": INK_THRESHOLD,
        "steps": [
            "clip to [0, 1]; zero pixels <= ink_threshold",
            "crop to the bounding box of the remaining ink",
            "scale = min(ink_height / crop height, max_ink_width / crop width); resize (linear, antialiased, "
            "half_pixel, exclude_outside) to round(side * scale), at least 1 pixel",
            "divide by the brightest pixel",
            "pad to height rows (centred, extra row below) and margin columns either side, more on the right "
            "to make the width a multiple of width_multiple",
        ],
    }


def build_number_normalization_nodes(output_name=LINE_INPUT_NAME):
    """Nodes: `image` [H, W] -> `normalized` [28, W'] and `output_name` [1, 28, W', 1], plus `column_scale`."""
    f32, i64 = np.float32, np.int64
    n = helper.make_node
    return ink_crop_nodes() + [
        _constant("line/epsilon", MASS_EPSILON, f32),
        _constant("line/limits", [NUMBER_BOX, NUMBER_MAX_INK_WIDTH], f32),
        _constant("line/height_i", [NUMBER_HEIGHT], i64),
        _constant("line/margin_i", [NUMBER_MARGIN], i64),
        _constant("line/two_margins_i", [2 * NUMBER_MARGIN], i64),
        _constant("line/multiple_i", [NUMBER_WIDTH_MULTIPLE], i64),
        _constant("line/two_i", [2], i64),
        _constant("line/zero_i", [0], i64),
        _constant("line/nchw_prefix", [1, 1], i64),
        _constant("line/nhwc_prefix", [1], i64),
        # One scale for both axes: the ink's height reaches NUMBER_BOX unless the width would pass its limit.
        n("Div", ["line/limits", "crop_hw_f"], ["line/fits"]),
        n("ReduceMin", ["line/fits"], ["line/scale"], keepdims=1),
        n("Mul", ["crop_hw_f", "line/scale"], ["line/sized_exact"]),
        n("Round", ["line/sized_exact"], ["line/sized_rounded"]),
        n("Max", ["line/sized_rounded", "one_f"], ["line/sized_f"]),
        n("Cast", ["line/sized_f"], ["line/sizes"], to=TensorProto.INT64),
        # Input columns per normalised column, for mapping frames back to input pixels.
        n("Gather", ["crop_hw_f", "axis_1"], ["line/crop_w_f"]),
        n("Gather", ["line/sized_f", "axis_1"], ["line/sized_w_f"]),
        n("Div", ["line/crop_w_f", "line/sized_w_f"], ["column_scale"]),
        n("Concat", ["line/nchw_prefix", "crop_hw"], ["line/crop_nchw_shape"], axis=0),
        n("Reshape", ["crop", "line/crop_nchw_shape"], ["line/crop_nchw"]),
        n("Resize", ["line/crop_nchw", "", "", "line/sizes"], ["line/sized_nchw"], mode="linear", antialias=1,
          axes=[2, 3], exclude_outside=1, coordinate_transformation_mode="half_pixel"),
        n("Shape", ["line/sized_nchw"], ["line/sized_hw"], start=2),
        n("Reshape", ["line/sized_nchw", "line/sized_hw"], ["line/sized_raw"]),
        # Thin strokes fade when shrunk; MNIST ink is saturated, so the brightest pixel becomes 1.
        n("ReduceMax", ["line/sized_raw"], ["line/peak"], keepdims=0),
        n("Max", ["line/peak", "line/epsilon"], ["line/peak_safe"]),
        n("Div", ["line/sized_raw", "line/peak_safe"], ["line/sized"]),
        # Centre vertically; margins left and right, the right one rounded up to the width multiple.
        n("Gather", ["line/sized_hw", "axis_0"], ["line/sized_h"]),
        n("Gather", ["line/sized_hw", "axis_1"], ["line/sized_w"]),
        n("Sub", ["line/height_i", "line/sized_h"], ["line/free_rows_signed"]),
        n("Max", ["line/free_rows_signed", "line/zero_i"], ["line/free_rows"]),
        n("Div", ["line/free_rows", "line/two_i"], ["line/pad_top"]),
        n("Sub", ["line/free_rows", "line/pad_top"], ["line/pad_bottom"]),
        n("Add", ["line/sized_w", "line/two_margins_i"], ["line/width_unrounded"]),
        n("Mod", ["line/width_unrounded", "line/multiple_i"], ["line/width_excess"]),
        n("Sub", ["line/multiple_i", "line/width_excess"], ["line/width_short"]),
        n("Mod", ["line/width_short", "line/multiple_i"], ["line/width_extra"]),
        n("Add", ["line/margin_i", "line/width_extra"], ["line/pad_right"]),
        n("Concat", ["line/pad_top", "line/margin_i", "line/pad_bottom", "line/pad_right"], ["line/pads"], axis=0),
        n("Pad", ["line/sized", "line/pads"], [NUMBER_NORMALIZED_NAME], mode="constant"),
        n("Shape", [NUMBER_NORMALIZED_NAME], ["line/normalized_hw"]),
        n("Concat", ["line/nhwc_prefix", "line/normalized_hw", "line/nhwc_prefix"], ["line/nhwc_shape"], axis=0),
        n("Reshape", [NUMBER_NORMALIZED_NAME, "line/nhwc_shape"], [output_name]),
    ]


def build_number_normalization_model():
    """A standalone model: `image` [H, W] -> `normalized` [28, W'] and `line` [1, 28, W', 1]."""
    graph = helper.make_graph(
        build_number_normalization_nodes(),
        "number_normalization",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["height", "width"])],
        [
            helper.make_tensor_value_info(NUMBER_NORMALIZED_NAME, TensorProto.FLOAT, [NUMBER_HEIGHT, "line_width"]),
            helper.make_tensor_value_info(LINE_INPUT_NAME, TensorProto.FLOAT, [1, NUMBER_HEIGHT, "line_width", 1]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="reader.number_normalization")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model


class LineNormalizer:
    """Runs the number normalisation graph with onnxruntime, for composing training and evaluation lines."""

    def __init__(self):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            build_number_normalization_model().SerializeToString(), options, providers=["CPUExecutionProvider"])

    def normalize(self, image):
        """One float image [H, W] in [0, 1] -> [28, W'] float32."""
        return self.session.run([NUMBER_NORMALIZED_NAME], {INPUT_NAME: np.ascontiguousarray(image, dtype=np.float32)})[0]
