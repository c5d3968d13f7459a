"""Conversion: Keras -> one self-contained ONNX digit reader (+ int8), checked, with its manifest. Run `python -m convert --help`."""
