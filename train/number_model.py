"""The number reader's sequence model: the digit reader's convolutions slid along the line, then a CTC head.

The trunk is the shipped digit reader's own three conv stages, copied with their weights and frozen: on a
line scaled like an MNIST digit they already see digits well, so training only has to learn where one
digit ends and the next begins. The head looks at a 7x7 window of the trunk's features (the digit
reader's flattened field) around every 4 columns, mixes in its neighbours, and emits two frames per 4
columns (NUMBER_FRAME_STRIDE), so even two narrow 1s side by side have room for the blank CTC needs
between repeats.
"""

import keras
from keras import layers

from reader.contract import (LINE_INPUT_NAME, NUMBER_CLASSES, NUMBER_FRAME_STRIDE, NUMBER_HEIGHT,
                             NUMBER_WIDTH_MULTIPLE)
from train.model import ARCHITECTURES

TRUNK_ARCHITECTURE = "medium"   # the shipped digit reader's (train.model.DEFAULT_ARCHITECTURE)
HEAD_FILTERS = 96
CONTEXT_WIDTH = 5               # trunk steps of context mixed in after the window
SUBFRAMES = NUMBER_WIDTH_MULTIPLE // NUMBER_FRAME_STRIDE


def build_number_model(trunk=None):
    """`line` [N, 28, W, 1] -> logits [N, W / NUMBER_FRAME_STRIDE, NUMBER_CLASSES]; trunk weights from `trunk`."""
    inputs = keras.Input((NUMBER_HEIGHT, None, 1), name=LINE_INPUT_NAME)
    x = inputs
    stages = ARCHITECTURES[TRUNK_ARCHITECTURE]
    trunk_layers = []
    for index, (kernel, filters) in enumerate(stages):
        for layer in (layers.Conv2D(filters, kernel, padding="same", use_bias=False),
                      layers.BatchNormalization(momentum=0.9), layers.Activation("relu")):
            x = layer(x)
            trunk_layers.append(layer)
        if index < len(stages) - 1:
            x = layers.MaxPooling2D()(x)
    window = NUMBER_HEIGHT // NUMBER_WIDTH_MULTIPLE  # the trunk's feature map is 7 rows high
    x = layers.ZeroPadding2D(((0, 0), (window // 2, window // 2)))(x)
    x = layers.Conv2D(HEAD_FILTERS, (window, window), use_bias=False)(x)
    x = layers.BatchNormalization(momentum=0.9)(x)
    x = layers.Activation("relu")(x)
    x = layers.Conv2D(HEAD_FILTERS, (1, CONTEXT_WIDTH), padding="same", activation="relu")(x)
    x = layers.Conv2D(NUMBER_CLASSES * SUBFRAMES, 1)(x)
    # [N, 1, W/4, 2 x classes] -> [N, W/2, classes]: each trunk step speaks for its two halves.
    logits = layers.Reshape((-1, NUMBER_CLASSES), name="logits")(x)
    model = keras.Model(inputs, logits, name="number_reader")
    if trunk is not None:
        source = [layer for layer in trunk.layers if isinstance(layer, (layers.Conv2D, layers.BatchNormalization))]
        target = [layer for layer in trunk_layers if isinstance(layer, (layers.Conv2D, layers.BatchNormalization))]
        for mine, theirs in zip(target, source, strict=True):
            mine.set_weights(theirs.get_weights())
        for layer in trunk_layers:
            layer.trainable = False
    return model


def multiply_adds_per_column(model):
    """Multiply-adds per column of the normalised line (a 4-digit number is about 100 columns)."""
    total = 0.0
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            rows = layer.output.shape[1]
            # Trunk stages pool height and width alike; the head works on the last stage's width (every 4 columns).
            columns = rows / NUMBER_HEIGHT if rows > 1 else 1 / NUMBER_WIDTH_MULTIPLE
            total += rows * columns * layer.filters * layer.kernel_size[0] * layer.kernel_size[1] * layer.input.shape[-1]
    return round(total)
