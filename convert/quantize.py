"""Static int8 quantization of the bare classifier, calibrated on real normalised training digits."""

import tempfile
from pathlib import Path

import numpy as np
import onnx

from reader.contract import CLASSIFIER_INPUT_NAME


class _Feeds:
    """onnxruntime's CalibrationDataReader protocol over input arrays of one named input."""

    def __init__(self, name, arrays):
        self._feeds = ({name: np.asarray(array, np.float32)} for array in arrays)

    def get_next(self):
        return next(self._feeds, None)


def quantize_classifier(classifier, calibration_digits):
    """fp32 classifier model -> int8 (QDQ, per-channel weights) model, calibrated on normalised digits [N, 28, 28]."""
    return quantize(classifier, CLASSIFIER_INPUT_NAME, calibration_digits[:, None, :, :, None])


def quantize(classifier, input_name, calibration_inputs):
    """fp32 model -> int8 (QDQ, per-channel weights) model, calibrated on each of `calibration_inputs`."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as directory:
        directory = Path(directory)
        onnx.save(classifier, directory / "fp32.onnx")
        quant_pre_process(str(directory / "fp32.onnx"), str(directory / "prepared.onnx"), skip_symbolic_shape=True)
        quantize_static(
            str(directory / "prepared.onnx"), str(directory / "int8.onnx"), _Feeds(input_name, calibration_inputs),
            quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
            # x86 CPUs without VNNI (AVX2 only) saturate 8-bit x 8-bit products in 16 bits: on one such CPU the
            # int8 digit reader read MNIST test 0.9923 against 0.9947 elsewhere. 7-bit weights cannot saturate,
            # so every CPU, the browser's wasm included, reads the same.
            reduce_range=True,
            op_types_to_quantize=["Conv", "MatMul", "Gemm"])
        model = onnx.load(directory / "int8.onnx")
    model.ir_version = 8
    return _float_logits(model)


def _float_logits(model):
    """Drop the QuantizeLinear -> DequantizeLinear pair in front of each Softmax: the logits stay float.

    Rounding the logits to 8 bits moves a probability by up to a few percent per step, and x86 and ARM
    round now and then one step apart (check-arm measured 4.8e-2 on one digit of 200). The layer is tiny,
    so keeping its output float costs nothing measurable."""
    graph = model.graph
    producers = {output: node for node in graph.node for output in node.output}
    dropped = []
    for softmax in [node for node in graph.node if node.op_type == "Softmax"]:
        dequantize = producers.get(softmax.input[0])
        quantize = dequantize is not None and dequantize.op_type == "DequantizeLinear" and producers.get(dequantize.input[0])
        if not quantize or quantize.op_type != "QuantizeLinear":
            continue
        softmax.input[0] = quantize.input[0]
        dropped += [quantize, dequantize]
    for node in dropped:
        graph.node.remove(node)
    used = {name for node in graph.node for name in node.input}
    for initializer in [each for each in graph.initializer if each.name not in used]:
        graph.initializer.remove(initializer)
    return model
