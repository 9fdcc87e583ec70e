"""Registry of named architectures.

Every builder takes no required arguments and returns an *uncompiled* Keras model
mapping a ``(28, 28, 1)`` float input in ``[0, 1]`` to 10 softmax probabilities.
Use :func:`build` to get one by name and :data:`ARCHITECTURES` to list them.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import layers

ARCHITECTURES: dict[str, Callable[[], keras.Model]] = {}
DESCRIPTIONS: dict[str, str] = {}


def register(name: str, description: str):
    def decorator(builder):
        ARCHITECTURES[name] = builder
        DESCRIPTIONS[name] = description
        return builder

    return decorator


def build(name: str, classes: int = 10) -> keras.Model:
    """A new model of architecture ``name`` with ``classes`` softmax outputs (10 digits, or 11 with
    "not a digit" last): the registry's builder with its final Dense layer made that wide."""
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; choose one of: {', '.join(sorted(ARCHITECTURES))}")
    model = ARCHITECTURES[name]()
    if classes == 10:
        return model
    last = model.layers[-1]
    if not isinstance(last, layers.Dense) or last.units != 10:
        raise ValueError(f"{name} does not end in a 10-unit Dense layer, so it cannot be widened")
    config = {**last.get_config(), "units": classes}
    return keras.Model(model.inputs, layers.Dense.from_config(config)(last.input), name=model.name)


def multiply_adds(model: keras.Model) -> int:
    """Multiply-adds of one image's forward pass through the model's Conv2D and Dense layers
    (the bulk of its compute; pooling, normalization and activations are not counted)."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            _, height, width, channels_out = layer.output.shape
            kernel_height, kernel_width, channels_in, _ = layer.kernel.shape
            total += height * width * kernel_height * kernel_width * channels_in * channels_out
        elif isinstance(layer, layers.Dense):
            total += layer.kernel.shape[0] * layer.kernel.shape[1]
    return int(total)


def _input():
    return keras.Input(shape=(28, 28, 1), name="image")


@register("glyph17", "The original project's network: 7 conv, BN, dropout (194,762 parameters).")
def glyph17() -> keras.Model:
    inputs = _input()
    x = layers.Conv2D(32, 3, activation="relu")(inputs)
    x = layers.MaxPooling2D()(x)
    x = _glyph17_block(x, 32, plain_convs=1)
    x = _glyph17_block(x, 64, plain_convs=2)
    x = layers.Flatten()(x)
    x = layers.Dropout(0.4)(x)
    outputs = layers.Dense(10, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="glyph17")


def _glyph17_block(x, filters: int, plain_convs: int):
    """The original's block: ``plain_convs`` 3x3 ReLU convs and a strided 5x5 one, each followed by batch
    norm, then dropout 0.4."""
    for _ in range(plain_convs):
        x = layers.BatchNormalization()(layers.Conv2D(filters, 3, activation="relu")(x))
    x = layers.Conv2D(filters, 5, strides=2, padding="same", activation="relu")(x)
    return layers.Dropout(0.4)(layers.BatchNormalization()(x))


def _conv_bn(x, filters, kernel, strides=1, padding="same"):
    x = layers.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    return layers.Activation("relu")(x)


def _glyphnet(name, stem=32, at_13=(48,), at_6=(64, 96), last=128, dropout=0.3, strided_stem=False) -> keras.Model:
    """The glyphnet family: a stem down to 13x13 (glyph17's 3x3 conv at 26x26 + max pool, or with
    ``strided_stem`` one 4x4 conv with stride 2, a third less time per epoch), BN conv layers at 13x13
    (``at_13``), a strided BN conv down to 6x6 and more at 6x6 (``at_6``), a last valid BN conv to 4x4."""
    inputs = _input()
    if strided_stem:
        x = layers.Conv2D(stem, 4, strides=2, activation="relu")(inputs)  # 13x13
    else:
        x = layers.Conv2D(stem, 3, activation="relu")(inputs)  # 26x26
        x = layers.MaxPooling2D()(x)  # 13x13
    for filters in at_13:
        x = _conv_bn(x, filters, 3)
    x = _conv_bn(x, at_6[0], 3, strides=2, padding="valid")  # 6x6
    for filters in at_6[1:]:
        x = _conv_bn(x, filters, 3)
    x = _conv_bn(x, last, 3, padding="valid")  # 4x4
    x = layers.Flatten()(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(10, activation="softmax")(x)
    return keras.Model(inputs, outputs, name=name)


@register(
    "glyphnet",
    "Ours: glyph17's cheap 26->13 stem, then BN conv pairs that widen as the map shrinks "
    "(13x13: 48, 6x6: 64-96, 4x4: 128); about 230k parameters, 1.5x glyph17's epoch time.",
)
def glyphnet() -> keras.Model:
    return _glyphnet("glyphnet")


@register(
    "glyphnet-lite",
    "glyphnet without its 13x13 conv (the costliest layer): about 4.6M multiply-adds to "
    "glyphnet's 7.3M, 0.7x its epoch time on 2 CPU cores.",
)
def glyphnet_lite() -> keras.Model:
    return _glyphnet("glyphnet_lite", at_13=())


@register(
    "glyphnet-fast",
    "Ours, for CPU-seconds: glyphnet-lite with a 4x4 stride-2 stem instead of the 26x26 "
    "conv and max pool, whose memory traffic took a third of every training step.",
)
def glyphnet_fast() -> keras.Model:
    return _glyphnet("glyphnet_fast", at_13=(), strided_stem=True)


@register("glyphnet-small", "A thinner glyphnet (about 60k parameters) for quick runs and sweeps.")
def glyphnet_small() -> keras.Model:
    return _glyphnet("glyphnet_small", stem=16, at_13=(32,), at_6=(32, 48), last=64, dropout=0.2)


@register("lenet5", "LeCun's classic LeNet-5 shape (ReLU, max pooling): a small, fast reference point.")
def lenet5() -> keras.Model:
    inputs = _input()
    x = layers.Conv2D(6, 5, padding="same", activation="relu")(inputs)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(16, 5, activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    x = layers.Dense(120, activation="relu")(x)
    x = layers.Dense(84, activation="relu")(x)
    outputs = layers.Dense(10, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="lenet5")
