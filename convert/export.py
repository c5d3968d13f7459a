"""Keras classifier -> ONNX with tf2onnx, then joined behind the normalisation graph."""

import onnx
from onnx import TensorProto, helper, numpy_helper
import numpy as np

from convert.normalization import (CANVAS_SIZE, CLASSIFIER_INPUT_NAME, INPUT_NAME, NORMALIZED_NAME, OPSET,
                                   PROBABILITIES_NAME, build_normalization_nodes)

CLASSIFIER_PREFIX = "classifier/"
NUM_CLASSES = 10


def export_classifier(keras_model):
    """The bare classifier: `digits` [N, 28, 28, 1] -> `probabilities` [N, 10]."""
    import tensorflow as tf
    import tf2onnx

    # from_keras breaks on Keras 3 (onnx/tensorflow-onnx#2448); a tf.function with a named signature works.
    signature = (tf.TensorSpec([None, CANVAS_SIZE, CANVAS_SIZE, 1], tf.float32, name=CLASSIFIER_INPUT_NAME),)

    @tf.autograph.experimental.do_not_convert
    def classify(digits):
        return {PROBABILITIES_NAME: keras_model(digits, training=False)}

    function = tf.function(classify, input_signature=signature)
    model, _ = tf2onnx.convert.from_function(function, input_signature=signature, opset=OPSET)
    names = ([i.name for i in model.graph.input], [o.name for o in model.graph.output])
    assert names == ([CLASSIFIER_INPUT_NAME], [PROBABILITIES_NAME]), names
    model.ir_version = 8
    return model


def join_reader(classifier):
    """`image` [H, W] -> normalisation -> classifier -> `probabilities` [10] and `normalized` [28, 28]."""
    classifier = onnx.compose.add_prefix(classifier, CLASSIFIER_PREFIX)
    graph = classifier.graph
    nodes = build_normalization_nodes(CLASSIFIER_INPUT_NAME) + [
        helper.make_node("Identity", [CLASSIFIER_INPUT_NAME], [CLASSIFIER_PREFIX + CLASSIFIER_INPUT_NAME]),
        *graph.node,
        helper.make_node("Reshape", [CLASSIFIER_PREFIX + PROBABILITIES_NAME, "probabilities_shape"], [PROBABILITIES_NAME]),
    ]
    joined = helper.make_graph(
        nodes,
        "digit_reader",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["height", "width"])],
        [
            helper.make_tensor_value_info(PROBABILITIES_NAME, TensorProto.FLOAT, [NUM_CLASSES]),
            helper.make_tensor_value_info(NORMALIZED_NAME, TensorProto.FLOAT, [CANVAS_SIZE, CANVAS_SIZE]),
        ],
        initializer=[*graph.initializer, numpy_helper.from_array(np.array([NUM_CLASSES], np.int64), "probabilities_shape")],
    )
    # Keep only the operator sets the graph uses (tf2onnx also declares ai.onnx.ml, which the browser need not know).
    used_domains = {node.domain for node in nodes} | {""}
    opsets = {entry.domain: entry.version for entry in classifier.opset_import if entry.domain in used_domains}
    opsets[""] = OPSET
    model = helper.make_model(joined, opset_imports=[helper.make_opsetid(domain, version) for domain, version in opsets.items()],
                              producer_name="digit-kiosk convert")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model
