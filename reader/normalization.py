"""The MNIST-style normalisation, built as an ONNX graph that sits in front of the classifier.

MNIST digits were made by fitting the ink into a 20x20 box (aspect ratio kept, anti-aliased)
and placing that box in a 28x28 field so that the centre of mass lands on the centre. Drawings
on a pad are nothing like that, so the shipped model does the same itself: crop to the ink,
scale it to fit the box, scale its brightness so the darkest ink is 1, and pad it to 28x28
around its centre of mass. Standard opset-18 operators only, so onnxruntime and
onnxruntime-web run the identical computation.

The numpy oracle for this graph lives in tests/normalization_reference.py.
"""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from reader.contract import CANVAS_SIZE, CLASSIFIER_INPUT_NAME, INPUT_NAME, IR_VERSION, NORMALIZED_NAME, OPSET

BOX_SIZE = 20              # the ink is scaled to fit a BOX_SIZE x BOX_SIZE box
CENTRE = 14.0              # where MNIST puts the centre of mass (pixel-index coordinates)
INK_THRESHOLD = 0.1        # pixels at or below this are background: they neither crop nor count
MASS_EPSILON = 1e-6        # keeps a blank image finite (no 0/0)


def describe_normalization():
    """The constants a reader of the manifest needs to reproduce the graph."""
    return {
        "canvas_size": CANVAS_SIZE,
        "box_size": BOX_SIZE,
        "centre_of_mass": CENTRE,
        "ink_threshold": INK_THRESHOLD,
        "steps": [
            "clip to [0, 1]; zero pixels <= ink_threshold",
            "crop to the bounding box of the remaining ink",
            "resize (linear, antialiased, half_pixel, exclude_outside) to round(side * box_size / long_side), at least 1 pixel",
            "divide by the brightest pixel",
            "pad to canvas_size x canvas_size, centre of mass at centre_of_mass (integer shift)",
        ],
    }


def _constant(name, value, dtype):
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(value, dtype=dtype), name))


def ink_crop_nodes():
    """Nodes that clip `image` [H, W], drop faint background (`ink`, `ink_mask`) and crop to the ink (`crop`,
    `top_row`, `left_col`, `crop_hw`, `crop_hw_f`). Shared by the digit and the number reader."""
    f32, i64 = np.float32, np.int64
    n = helper.make_node
    return [
        _constant("zero_f", 0.0, f32),
        _constant("one_f", 1.0, f32),
        _constant("threshold", INK_THRESHOLD, f32),
        _constant("one_i", [1], i64),
        _constant("axes_hw", [0, 1], i64),
        _constant("axis_0", [0], i64),
        _constant("axis_1", [1], i64),
        # Ink mask; faint background (scanner noise, anti-alias tails) is dropped entirely.
        n("Clip", ["image", "zero_f", "one_f"], ["clipped"]),
        n("Greater", ["clipped", "threshold"], ["is_ink"]),
        n("Cast", ["is_ink"], ["ink_mask"], to=TensorProto.FLOAT),
        n("Mul", ["clipped", "ink_mask"], ["ink"]),
        # Bounding box of the ink: first and last row/column holding any. A blank image
        # yields the whole frame, which stays all zeros.
        n("ReduceMax", ["ink_mask", "axis_1"], ["row_has_ink"], keepdims=0),
        n("ReduceMax", ["ink_mask", "axis_0"], ["col_has_ink"], keepdims=0),
        n("ArgMax", ["row_has_ink"], ["top_row"], axis=0, keepdims=1, select_last_index=0),
        n("ArgMax", ["row_has_ink"], ["bottom_row"], axis=0, keepdims=1, select_last_index=1),
        n("ArgMax", ["col_has_ink"], ["left_col"], axis=0, keepdims=1, select_last_index=0),
        n("ArgMax", ["col_has_ink"], ["right_col"], axis=0, keepdims=1, select_last_index=1),
        n("Add", ["bottom_row", "one_i"], ["row_end"]),
        n("Add", ["right_col", "one_i"], ["col_end"]),
        n("Concat", ["top_row", "left_col"], ["crop_starts"], axis=0),
        n("Concat", ["row_end", "col_end"], ["crop_ends"], axis=0),
        n("Slice", ["ink", "crop_starts", "crop_ends", "axes_hw"], ["crop"]),
        n("Shape", ["crop"], ["crop_hw"]),
        n("Cast", ["crop_hw"], ["crop_hw_f"], to=TensorProto.FLOAT),
    ]


def build_normalization_nodes(output_name=CLASSIFIER_INPUT_NAME):
    """Nodes that turn `image` [H, W] into `normalized` [28, 28] and `output_name` [1, 28, 28, 1]."""
    f32, i64 = np.float32, np.int64
    n = helper.make_node
    return ink_crop_nodes() + [
        _constant("zero_i", [0], i64),
        _constant("epsilon", MASS_EPSILON, f32),
        _constant("centre", CENTRE, f32),
        _constant("canvas_i", [CANVAS_SIZE], i64),
        _constant("box_f", float(BOX_SIZE), f32),
        _constant("shape_nchw_prefix", [1, 1], i64),
        _constant("shape_canvas", [CANVAS_SIZE, CANVAS_SIZE], i64),
        _constant("shape_nhwc", [1, CANVAS_SIZE, CANVAS_SIZE, 1], i64),
        # Fit the crop into the box, keeping its aspect ratio; antialias matters when a
        # 280-pixel drawing shrinks to 20 pixels. The target size is computed here rather than
        # left to keep_aspect_ratio_policy, whose scaling onnxruntime and the ONNX specification
        # read differently; a long thin stroke (a bare "1") still keeps one pixel across.
        n("ReduceMax", ["crop_hw_f"], ["crop_long_side"], keepdims=1),
        n("Div", ["box_f", "crop_long_side"], ["box_scale"]),
        n("Mul", ["crop_hw_f", "box_scale"], ["boxed_hw_exact"]),
        n("Round", ["boxed_hw_exact"], ["boxed_hw_rounded"]),
        n("Max", ["boxed_hw_rounded", "one_f"], ["boxed_hw_f"]),
        n("Cast", ["boxed_hw_f"], ["boxed_sizes"], to=TensorProto.INT64),
        n("Concat", ["shape_nchw_prefix", "crop_hw"], ["crop_nchw_shape"], axis=0),
        n("Reshape", ["crop", "crop_nchw_shape"], ["crop_nchw"]),
        n("Resize", ["crop_nchw", "", "", "boxed_sizes"], ["boxed_nchw"], mode="linear", antialias=1,
          axes=[2, 3], exclude_outside=1, coordinate_transformation_mode="half_pixel"),
        n("Shape", ["boxed_nchw"], ["boxed_hw"], start=2),
        n("Reshape", ["boxed_nchw", "boxed_hw"], ["boxed_raw"]),
        # Thin strokes fade when shrunk; MNIST ink is saturated, so scale the brightest pixel to 1.
        n("ReduceMax", ["boxed_raw"], ["peak"], keepdims=0),
        n("Max", ["peak", "epsilon"], ["peak_safe"]),
        n("Div", ["boxed_raw", "peak_safe"], ["boxed"]),
        # Centre of mass of the boxed ink, in pixel-index coordinates.
        n("ReduceSum", ["boxed"], ["mass"], keepdims=0),
        n("Max", ["mass", "epsilon"], ["mass_safe"]),
        n("Gather", ["boxed_hw", "axis_0"], ["boxed_h"]),
        n("Gather", ["boxed_hw", "axis_1"], ["boxed_w"]),
        n("Cast", ["boxed_h"], ["boxed_h_f"], to=TensorProto.FLOAT),
        n("Cast", ["boxed_w"], ["boxed_w_f"], to=TensorProto.FLOAT),
        n("Squeeze", ["boxed_h_f"], ["boxed_h_scalar"]),
        n("Squeeze", ["boxed_w_f"], ["boxed_w_scalar"]),
        n("Range", ["zero_f", "boxed_h_scalar", "one_f"], ["row_index"]),
        n("Range", ["zero_f", "boxed_w_scalar", "one_f"], ["col_index"]),
        n("ReduceSum", ["boxed", "axis_1"], ["row_mass"], keepdims=0),
        n("ReduceSum", ["boxed", "axis_0"], ["col_mass"], keepdims=0),
        n("Mul", ["row_mass", "row_index"], ["row_moment"]),
        n("Mul", ["col_mass", "col_index"], ["col_moment"]),
        n("ReduceSum", ["row_moment"], ["row_moment_sum"], keepdims=1),
        n("ReduceSum", ["col_moment"], ["col_moment_sum"], keepdims=1),
        n("Div", ["row_moment_sum", "mass_safe"], ["centre_row"]),
        n("Div", ["col_moment_sum", "mass_safe"], ["centre_col"]),
        # Integer shift that puts the centre of mass on CENTRE, kept inside the canvas.
        n("Sub", ["centre", "centre_row"], ["top_f"]),
        n("Sub", ["centre", "centre_col"], ["left_f"]),
        n("Round", ["top_f"], ["top_rounded"]),
        n("Round", ["left_f"], ["left_rounded"]),
        n("Cast", ["top_rounded"], ["top_unclipped"], to=TensorProto.INT64),
        n("Cast", ["left_rounded"], ["left_unclipped"], to=TensorProto.INT64),
        n("Sub", ["canvas_i", "boxed_h"], ["free_rows"]),
        n("Sub", ["canvas_i", "boxed_w"], ["free_cols"]),
        n("Max", ["top_unclipped", "zero_i"], ["top_low"]),
        n("Min", ["top_low", "free_rows"], ["pad_top"]),
        n("Max", ["left_unclipped", "zero_i"], ["left_low"]),
        n("Min", ["left_low", "free_cols"], ["pad_left"]),
        n("Sub", ["free_rows", "pad_top"], ["pad_bottom"]),
        n("Sub", ["free_cols", "pad_left"], ["pad_right"]),
        n("Concat", ["pad_top", "pad_left", "pad_bottom", "pad_right"], ["pads"], axis=0),
        n("Pad", ["boxed", "pads"], ["padded"], mode="constant"),
        n("Reshape", ["padded", "shape_canvas"], [NORMALIZED_NAME]),
        n("Reshape", ["padded", "shape_nhwc"], [output_name]),
    ]


def build_normalization_model():
    """A standalone model: `image` [H, W] -> `normalized` [28, 28] (and the NHWC copy)."""
    nodes = build_normalization_nodes()
    graph = helper.make_graph(
        nodes,
        "mnist_normalization",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["height", "width"])],
        [
            helper.make_tensor_value_info(NORMALIZED_NAME, TensorProto.FLOAT, [CANVAS_SIZE, CANVAS_SIZE]),
            helper.make_tensor_value_info(CLASSIFIER_INPUT_NAME, TensorProto.FLOAT, [1, CANVAS_SIZE, CANVAS_SIZE, 1]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="reader.normalization")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model


class Normalizer:
    """Runs the normalisation graph with onnxruntime, for preparing training digits."""

    def __init__(self):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            build_normalization_model().SerializeToString(), options, providers=["CPUExecutionProvider"])

    def normalize(self, image):
        """One float image [H, W] in [0, 1] -> [28, 28]."""
        return self.session.run([NORMALIZED_NAME], {INPUT_NAME: np.ascontiguousarray(image, dtype=np.float32)})[0]

    def normalize_many(self, images):
        """A stack of images [N, H, W] -> [N, 28, 28] float32."""
        out = np.empty((len(images), CANVAS_SIZE, CANVAS_SIZE), np.float32)
        for index, image in enumerate(images):
            out[index] = self.normalize(image)
        return out
