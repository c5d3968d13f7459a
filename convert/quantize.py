"""Static int8 quantization of the bare classifier, calibrated on real normalised training digits."""

import tempfile
from pathlib import Path

import numpy as np
import onnx

from reader.contract import CLASSIFIER_INPUT_NAME


class _DigitReader:
    """onnxruntime's CalibrationDataReader protocol over a stack of [N, 28, 28] digits."""

    def __init__(self, digits):
        self._batches = iter(digits[:, None, :, :, None].astype(np.float32))

    def get_next(self):
        batch = next(self._batches, None)
        return None if batch is None else {CLASSIFIER_INPUT_NAME: batch}


def quantize_classifier(classifier, calibration_digits):
    """fp32 classifier model -> int8 (QDQ, per-channel weights) model."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as directory:
        directory = Path(directory)
        onnx.save(classifier, directory / "fp32.onnx")
        quant_pre_process(str(directory / "fp32.onnx"), str(directory / "prepared.onnx"), skip_symbolic_shape=True)
        quantize_static(
            str(directory / "prepared.onnx"), str(directory / "int8.onnx"), _DigitReader(calibration_digits),
            quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
            op_types_to_quantize=["Conv", "MatMul", "Gemm"])
        model = onnx.load(directory / "int8.onnx")
    model.ir_version = 8
    return model
