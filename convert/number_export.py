"""The number reader's ONNX graph: line normalisation -> sequence model -> decoding with the digit reader inside.

Decoding in the graph keeps the page and the server identical; convert/number_decode.py says how each ink piece
is read (by the digit reader, or by CTC where digits touch), boxed and judged.
"""

import numpy as np
import onnx
from onnx import TensorProto, helper

from convert.export import export_function
from convert.number_decode import decode_nodes
from reader.contract import (FRAMES_NAME, INPUT_NAME, IR_VERSION, LINE_INPUT_NAME, NOT_DIGIT_CLASS, NOT_NUMBER_NAME,
                             NUMBER_BOXES_NAME, NUMBER_CLASSES, NUMBER_CONFIDENCE_NAME,
                             NUMBER_CONFIDENCES_NAME, NUMBER_DIGITS_NAME, NUMBER_DOUBTFUL_NAME, NUMBER_FRAME_STRIDE, NUMBER_HEIGHT,
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


NUMBER_OUTPUTS = [
    (NUMBER_DIGITS_NAME, TensorProto.INT64, ["digits"]),
    (NUMBER_PROBABILITIES_NAME, TensorProto.FLOAT, ["digits", NUM_DIGITS]),
    (NUMBER_CONFIDENCES_NAME, TensorProto.FLOAT, ["digits"]),
    (NUMBER_DOUBTFUL_NAME, TensorProto.BOOL, ["digits"]),
    (NUMBER_BOXES_NAME, TensorProto.INT64, ["digits", 4]),
    (NUMBER_CONFIDENCE_NAME, TensorProto.FLOAT, [1]),
    (NOT_NUMBER_NAME, TensorProto.FLOAT, [1]),
    (NUMBER_VERDICT_NAME, TensorProto.INT64, [1]),
    (NUMBER_NORMALIZED_NAME, TensorProto.FLOAT, [NUMBER_HEIGHT, "line_width"]),
]


def sequence_from_reader(reader):
    """The bare sequence model inside a joined number reader (its SEQUENCE_PREFIX part), to join it anew."""
    graph = reader.graph
    nodes = [node for node in graph.node if all(name.startswith(SEQUENCE_PREFIX) for name in node.output)
             and SEQUENCE_PREFIX + LINE_INPUT_NAME not in node.output]
    initializers = [tensor for tensor in graph.initializer if tensor.name.startswith(SEQUENCE_PREFIX)]
    strip = lambda name: name[len(SEQUENCE_PREFIX):] if name.startswith(SEQUENCE_PREFIX) else name
    model = helper.make_model(
        helper.make_graph(list(nodes), "sequence",
                          [helper.make_tensor_value_info(SEQUENCE_PREFIX + LINE_INPUT_NAME, TensorProto.FLOAT, [1, NUMBER_HEIGHT, None, 1])],
                          [helper.make_tensor_value_info(SEQUENCE_PREFIX + FRAMES_NAME, TensorProto.FLOAT, [1, None, NUMBER_CLASSES])],
                          initializer=initializers),
        opset_imports=list(reader.opset_import))
    model.ir_version = reader.ir_version
    # Names lose the prefix, so joining adds it back exactly once.
    for node in model.graph.node:
        node.name = strip(node.name)
        node.input[:] = [strip(name) for name in node.input]
        node.output[:] = [strip(name) for name in node.output]
    for tensor in [*model.graph.initializer]:
        tensor.name = strip(tensor.name)
    for value in [*model.graph.input, *model.graph.output]:
        value.name = strip(value.name)
    return model


def join_number_reader(sequence_model, digit_reader, not_number_at_least, sure_at_least):
    """`image` [H, W] -> normalisation -> sequence model -> each ink piece read by `digit_reader` or by CTC ->
    digits, boxes, confidence and verdict."""
    sequence_model = onnx.compose.add_prefix(sequence_model, SEQUENCE_PREFIX)
    graph = sequence_model.graph
    decode, constants = decode_nodes(SEQUENCE_PREFIX + FRAMES_NAME, digit_reader, not_number_at_least, sure_at_least)
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
    opsets = {entry.domain: entry.version for model in (sequence_model, digit_reader) for entry in model.opset_import
              if entry.domain in used_domains}
    opsets[""] = OPSET
    model = helper.make_model(joined, opset_imports=[helper.make_opsetid(domain, version) for domain, version in opsets.items()],
                              producer_name="digit-kiosk convert.numbers")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model

