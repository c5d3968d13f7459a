"""The CNNs that read a normalised 28x28 digit, and the multiply-adds each spends per digit.

Each reader ends in a softmax over eleven classes: the ten digits and "not a digit". The head flattens
the last feature map rather than averaging it away, so where a stroke sits still counts (a 1's flag
against a 7's bar); batch norm folds into the convolutions on export, so it costs nothing at inference.
"""

import keras
import numpy as np
from keras import layers

from reader.contract import CANVAS_SIZE, NUM_CLASSES, NUM_DIGITS

# name -> (kernel, filters) per stage; every stage but the last is followed by 2x2 max pooling.
ARCHITECTURES = {
    "small": [(5, 16), (3, 32), (3, 64)],   # about 2.2 M multiply-adds
    "tiny": [(3, 12), (3, 24), (3, 32)],    # under 1 M
    "medium": [(3, 20), (3, 40), (3, 64)],  # about 2.7 M, the most the 3 M budget allows here
}
DEFAULT_ARCHITECTURE = "medium"  # the shipped reader: the best drawn-digit validation within the budget


def build_model(architecture=DEFAULT_ARCHITECTURE, classes=NUM_CLASSES, dropout=0.3):
    """Conv-BN-ReLU stages with max pooling between them, then Flatten, Dropout and a Dense softmax."""
    if architecture == "seed":
        return build_seed_model(classes)
    inputs = keras.Input((CANVAS_SIZE, CANVAS_SIZE, 1), name="digits")
    x = inputs
    stages = ARCHITECTURES[architecture]
    for index, (kernel, filters) in enumerate(stages):
        x = layers.Conv2D(filters, kernel, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization(momentum=0.9)(x)
        x = layers.Activation("relu")(x)
        if index < len(stages) - 1:
            x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(classes, activation="softmax", name="classes")(x)
    return keras.Model(inputs, outputs, name=f"digit_cnn_{architecture}")


def build_seed_model(classes=NUM_DIGITS):
    """The original app's CNN (Conv-Pool-Conv-Pool-Flatten-Dropout-Dense), kept as a reference for bench/."""
    inputs = keras.Input((CANVAS_SIZE, CANVAS_SIZE, 1), name="digits")
    x = layers.Conv2D(32, 3, activation="relu")(inputs)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(64, 3, activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(classes, activation="softmax", name="classes")(x)
    return keras.Model(inputs, outputs, name="seed_cnn")


def multiply_adds(model):
    """Multiply-adds per digit in a Keras model's Conv2D and Dense layers: the arithmetic any runtime must do."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            height, width, channels = layer.output.shape[1:]
            total += height * width * channels * int(np.prod(layer.kernel_size)) * layer.input.shape[-1]
        elif isinstance(layer, layers.Dense):
            total += layer.input.shape[-1] * layer.units
    return int(total)
