"""Accuracy of a digit reader (the full ONNX model) on MNIST and on handwriting that is not MNIST."""

import numpy as np

from reader.contract import INPUT_NAME, NORMALIZED_NAME, NOT_DIGIT_NAME, PROBABILITIES_NAME, VERDICT_NAME

READER_OUTPUTS = (PROBABILITIES_NAME, NOT_DIGIT_NAME, VERDICT_NAME, NORMALIZED_NAME)


def open_session(model):
    """An onnxruntime session on a model proto, bytes or path, on one thread (as on a kiosk)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    if hasattr(model, "SerializeToString"):
        model = model.SerializeToString()
    source = model if isinstance(model, bytes) else str(model)
    return onnxruntime.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def read_all(session, images):
    """Run the reader on each image [H, W] in [0, 1]: {output name: stacked outputs} for every reader output."""
    results = [session.run(list(READER_OUTPUTS), {INPUT_NAME: np.ascontiguousarray(image, np.float32)}) for image in images]
    return {name: np.stack([result[index] for result in results]) for index, name in enumerate(READER_OUTPUTS)}


def read_digits(session, images):
    """Probabilities [N, 10] and normalised digits [N, 28, 28] of the reader on each image."""
    outputs = read_all(session, images)
    return outputs[PROBABILITIES_NAME], outputs[NORMALIZED_NAME]


def accuracy(probabilities, labels):
    return float(np.mean(np.argmax(probabilities, axis=1) == np.asarray(labels)))


def load_uci_digits():
    """The UCI handwritten digits that ship with scikit-learn: 1797 digits, 8x8, 17 grey levels, not MNIST."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.images.astype(np.float32) / 16.0, digits.target.astype(np.int64)


def naive_resize(images, size=28):
    """The seed app's preprocessing: stretch the whole image to 28x28, no cropping or centring."""
    from PIL import Image

    return np.stack([np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR), np.float32) for image in images])
