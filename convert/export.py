"""Keras classifier -> ONNX with tf2onnx, then joined behind the normalisation graph and the verdict."""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from reader.contract import (CANVAS_SIZE, CLASSIFIER_INPUT_NAME, CLASSIFIER_OUTPUT_NAME, INPUT_NAME, IR_VERSION,
                             NORMALIZED_NAME, NOT_DIGIT_NAME, NUM_CLASSES, NUM_DIGITS, OPSET, PROBABILITIES_NAME,
                             VERDICT_NAME, VERDICTS)
from reader.normalization import build_normalization_nodes

CLASSIFIER_PREFIX = "classifier/"


def export_function(compute, shape, input_name, output_name):
    """`compute` (a Keras model's forward pass) as an ONNX model with one named input and one named output."""
    import tensorflow as tf
    import tf2onnx

    # from_keras breaks on Keras 3 (onnx/tensorflow-onnx#2448); a tf.function with a named signature works.
    signature = (tf.TensorSpec(shape, tf.float32, name=input_name),)

    @tf.autograph.experimental.do_not_convert
    def run(inputs):
        return {output_name: compute(inputs)}

    function = tf.function(run, input_signature=signature)
    model, _ = tf2onnx.convert.from_function(function, input_signature=signature, opset=OPSET)
    names = ([i.name for i in model.graph.input], [o.name for o in model.graph.output])
    assert names == ([input_name], [output_name]), names
    model.ir_version = IR_VERSION
    return model


def export_classifier(keras_model):
    """The bare classifier: `digits` [N, 28, 28, 1] -> `classes` [N, classes]."""
    return export_function(lambda digits: keras_model(digits, training=False), [None, CANVAS_SIZE, CANVAS_SIZE, 1],
                           CLASSIFIER_INPUT_NAME, CLASSIFIER_OUTPUT_NAME)


def initializer(name, value, dtype):
    """A named constant tensor for a graph's initializers."""
    return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)


def verdict_nodes(classes, not_digit_at_least, sure_at_least):
    """[1, 11] softmax -> `probabilities` [10] (renormalised over the digits), `not_digit` [1], `verdict` [1]."""
    n = helper.make_node
    constants = [
        initializer("verdict/digit_starts", [0, 0], np.int64), initializer("verdict/digit_ends", [1, NUM_DIGITS], np.int64),
        initializer("verdict/other_starts", [0, NUM_DIGITS], np.int64), initializer("verdict/other_ends", [1, NUM_CLASSES], np.int64),
        initializer("verdict/digits_shape", [NUM_DIGITS], np.int64), initializer("verdict/one_shape", [1], np.int64),
        initializer("verdict/axis_1", [1], np.int64), initializer("verdict/epsilon", 1e-12, np.float32),
        initializer("verdict/not_digit_at_least", not_digit_at_least, np.float32),
        initializer("verdict/sure_at_least", sure_at_least, np.float32),
        *[initializer(f"verdict/{name}", [VERDICTS.index(name)], np.int64) for name in VERDICTS],
    ]
    nodes = [
        n("Slice", [classes, "verdict/digit_starts", "verdict/digit_ends"], ["verdict/joint"]),
        n("Slice", [classes, "verdict/other_starts", "verdict/other_ends"], ["verdict/other"]),
        # P(digit k | it is a digit): the ten digits' share, so "probabilities" still sums to 1.
        n("ReduceSum", ["verdict/joint", "verdict/axis_1"], ["verdict/digit_mass"], keepdims=1),
        n("Max", ["verdict/digit_mass", "verdict/epsilon"], ["verdict/digit_mass_safe"]),
        n("Div", ["verdict/joint", "verdict/digit_mass_safe"], ["verdict/conditional"]),
        n("Reshape", ["verdict/conditional", "verdict/digits_shape"], [PROBABILITIES_NAME]),
        n("Reshape", ["verdict/other", "verdict/one_shape"], [NOT_DIGIT_NAME]),
        # The top digit's share of all eleven classes decides "unsure"; "not a digit" overrides both.
        n("ReduceMax", ["verdict/joint", "verdict/axis_1"], ["verdict/top_2d"], keepdims=1),
        n("Reshape", ["verdict/top_2d", "verdict/one_shape"], ["verdict/top"]),
        n("GreaterOrEqual", [NOT_DIGIT_NAME, "verdict/not_digit_at_least"], ["verdict/is_other"]),
        n("Less", ["verdict/top", "verdict/sure_at_least"], ["verdict/is_unsure"]),
        n("Where", ["verdict/is_unsure", "verdict/unsure", "verdict/digit"], ["verdict/digit_or_unsure"]),
        n("Where", ["verdict/is_other", "verdict/not_digit", "verdict/digit_or_unsure"], [VERDICT_NAME]),
    ]
    return nodes, constants


def join_reader(classifier, not_digit_at_least, sure_at_least):
    """`image` [H, W] -> normalisation -> classifier -> `probabilities`, `not_digit`, `verdict` and `normalized`."""
    classifier = onnx.compose.add_prefix(classifier, CLASSIFIER_PREFIX)
    graph = classifier.graph
    decide, constants = verdict_nodes(CLASSIFIER_PREFIX + CLASSIFIER_OUTPUT_NAME, not_digit_at_least, sure_at_least)
    nodes = build_normalization_nodes(CLASSIFIER_INPUT_NAME) + [
        helper.make_node("Identity", [CLASSIFIER_INPUT_NAME], [CLASSIFIER_PREFIX + CLASSIFIER_INPUT_NAME]),
        *graph.node,
        *decide,
    ]
    joined = helper.make_graph(
        nodes,
        "digit_reader",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["height", "width"])],
        [
            helper.make_tensor_value_info(PROBABILITIES_NAME, TensorProto.FLOAT, [NUM_DIGITS]),
            helper.make_tensor_value_info(NOT_DIGIT_NAME, TensorProto.FLOAT, [1]),
            helper.make_tensor_value_info(VERDICT_NAME, TensorProto.INT64, [1]),
            helper.make_tensor_value_info(NORMALIZED_NAME, TensorProto.FLOAT, [CANVAS_SIZE, CANVAS_SIZE]),
        ],
        initializer=[*graph.initializer, *constants],
    )
    # Keep only the operator sets the graph uses (tf2onnx also declares ai.onnx.ml, which the browser need not know).
    used_domains = {node.domain for node in nodes} | {""}
    opsets = {entry.domain: entry.version for entry in classifier.opset_import if entry.domain in used_domains}
    opsets[""] = OPSET
    model = helper.make_model(joined, opset_imports=[helper.make_opsetid(domain, version) for domain, version in opsets.items()],
                              producer_name="digit-kiosk convert")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model
