"""The CNN that reads a normalised 28x28 digit: three small conv stages, global pooling, softmax."""

import keras
from keras import layers

from convert.normalization import CANVAS_SIZE

NUM_CLASSES = 10


def _conv_block(inputs, filters):
    # Batch norm folds into the convolution on export, so it costs nothing at inference.
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(inputs)
    x = layers.BatchNormalization(momentum=0.9)(x)
    return layers.Activation("relu")(x)


def build_model(widths=(32, 32, 64, 64, 128), dropout=0.3):
    """Conv-Conv-Pool, Conv-Conv-Pool, Conv, GlobalAveragePool, Dense softmax (about 140k weights)."""
    inputs = keras.Input((CANVAS_SIZE, CANVAS_SIZE, 1), name="digits")
    x = _conv_block(inputs, widths[0])
    x = _conv_block(x, widths[1])
    x = layers.MaxPooling2D()(x)
    x = _conv_block(x, widths[2])
    x = _conv_block(x, widths[3])
    x = layers.MaxPooling2D()(x)
    x = _conv_block(x, widths[4])
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="digit_cnn")


def build_seed_model():
    """The original app's CNN (Conv-Pool-Conv-Pool-Flatten-Dropout-Dense), kept as a reference for bench/."""
    inputs = keras.Input((CANVAS_SIZE, CANVAS_SIZE, 1), name="digits")
    x = layers.Conv2D(32, 3, activation="relu")(inputs)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(64, 3, activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="seed_cnn")
