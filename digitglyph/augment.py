"""Training-time augmentation, applied to whole batches inside the tf.data pipeline.

Canvas drawings differ from MNIST in ways the canvas preprocessing cannot remove:
slant, rotation, aspect, stroke width and stroke smoothness.  Each batch gets

* a random affine warp about the image centre: rotation, isotropic scale,
  anisotropic stretch, shear (slant) and a small shift, optionally with an elastic
  distortion on top (a smooth random displacement field, as handwriting wobbles);
* a random stroke-width change: a grey-level dilation (thicker pen) or erosion
  (thinner pen) blended in by a random amount;
* occasionally a light blur (soft finger strokes) or a contrast change
  (faint or saturated ink).

All parameters live in :class:`AugmentConfig` so runs record exactly what was used.

Two implementations of that one spec: :func:`augment_batch` in TensorFlow, run by ``train``'s tf.data
pipeline on the CPU, and :func:`augment_batch_ops` in ``keras.ops``, run inside the training step on any Keras
backend (``train_jax``: Keras on JAX, on an accelerator without TensorFlow).  ``tests/test_augment.py`` holds
them to the same distribution of warps, stroke widths and contrast.  TensorFlow is imported only when the first
one runs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class AugmentConfig:
    rotation_degrees: float = 12.0
    scale: float = 0.12  # isotropic scale in [1 - scale, 1 + scale]
    stretch: float = 0.10  # extra scale of one axis
    shear: float = 0.25  # x shear factor (slant), uniform in [-shear, shear]
    shift_pixels: float = 2.0
    stroke_probability: float = 0.6  # chance of a stroke-width change
    stroke_strength: float = 0.7  # the most the thicker/thinner version is blended in
    blur_probability: float = 0.15
    contrast_probability: float = 0.2
    elastic_pixels: float = 0.0  # largest elastic displacement at the field's control points (0: off)
    elastic_grid: int = 4  # control points per side of that field (bicubically interpolated)

    def __post_init__(self):
        if not isinstance(self.elastic_pixels, (int, float)) or not 0 <= self.elastic_pixels <= 6:
            raise ValueError(f"elastic_pixels={self.elastic_pixels!r} must be a number of pixels from 0 to 6")
        if (
            not isinstance(self.elastic_grid, int)
            or isinstance(self.elastic_grid, bool)
            or not 2 <= self.elastic_grid <= 28
        ):
            raise ValueError(f"elastic_grid={self.elastic_grid!r} must be an integer from 2 to 28")

    def as_dict(self):
        return asdict(self)


NO_AUGMENTATION = AugmentConfig(0, 0, 0, 0, 0, 0, 0, 0, 0, 0)


def inverse_affine(config: AugmentConfig, uniform, cos, sin, height: int, width: int) -> tuple:
    """A random affine warp per image, as its inverse map (output pixel -> input pixel): the six numbers
    ``i00, i01, b0, i10, i11, b1`` (each one value per image) of ``input = I @ output + b``.

    ``uniform(low, high)`` draws one value per image and ``cos``/``sin`` are the backend's, so TensorFlow
    and ``keras.ops`` compute the same warp; the draws come in a fixed order (angle, scale, stretch, shear,
    shift x, shift y)."""
    angle = uniform(-1.0, 1.0) * config.rotation_degrees * math.pi / 180.0
    scale = uniform(1.0 - config.scale, 1.0 + config.scale)
    stretch = uniform(-config.stretch, config.stretch)
    sx, sy = scale * (1.0 + stretch), scale * (1.0 - stretch)
    shear = uniform(-config.shear, config.shear)
    tx = uniform(-config.shift_pixels, config.shift_pixels)
    ty = uniform(-config.shift_pixels, config.shift_pixels)
    cosine, sine = cos(angle), sin(angle)
    # forward map A = R @ Shear @ S (output = A @ (input - c) + c + t); we need its inverse.
    a00 = cosine * sx
    a01 = cosine * shear * sy - sine * sy
    a10 = sine * sx
    a11 = sine * shear * sy + cosine * sy
    det = a00 * a11 - a01 * a10
    i00, i01, i10, i11 = a11 / det, -a01 / det, -a10 / det, a00 / det
    cx, cy = (width - 1.0) / 2.0, (height - 1.0) / 2.0
    # input = Inv @ (output - c - t) + c
    ox, oy = cx + tx, cy + ty
    b0 = cx - (i00 * ox + i01 * oy)
    b1 = cy - (i10 * ox + i11 * oy)
    return i00, i01, b0, i10, i11, b1


def _affine(images, config: AugmentConfig):
    import tensorflow as tf

    batch = tf.shape(images)[0]
    i00, i01, b0, i10, i11, b1 = inverse_affine(
        config, lambda low, high: tf.random.uniform([batch], low, high), tf.cos, tf.sin, *images.shape[1:3]
    )
    if config.elastic_pixels > 0:
        return _sample(images, *_elastic_source(images, config, (i00, i01, b0, i10, i11, b1)))
    zeros = tf.zeros([batch])
    transforms = tf.stack([i00, i01, b0, i10, i11, b1, zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=tf.shape(images)[1:3],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )


def _elastic_source(images, config: AugmentConfig, inverse):
    """Source coordinates (rows, columns) of every output pixel: the output grid moved by a smooth random
    field (uniform +-``elastic_pixels`` at ``elastic_grid`` x ``elastic_grid`` control points, bicubically
    interpolated), then through the inverse affine map; one bilinear sampling does both warps."""
    import tensorflow as tf

    batch = tf.shape(images)[0]
    height, width = images.shape[1], images.shape[2]
    grid = config.elastic_grid
    coarse = tf.random.uniform([batch, grid, grid, 2], -config.elastic_pixels, config.elastic_pixels)
    field = tf.image.resize(coarse, [height, width], method="bicubic")
    y = tf.range(height, dtype=tf.float32)[None, :, None] + field[..., 0]
    x = tf.range(width, dtype=tf.float32)[None, None, :] + field[..., 1]
    i00, i01, b0, i10, i11, b1 = (value[:, None, None] for value in inverse)
    return i10 * x + i11 * y + b1, i00 * x + i01 * y + b0


def _sample(images, rows, columns):
    """Bilinear samples of ``(N, H, W, 1)`` images at float source coordinates ``(N, H, W)``, 0 outside
    (the sampling of ``ImageProjectiveTransformV3`` with a constant 0 fill)."""
    import tensorflow as tf

    batch = tf.shape(images)[0]
    height, width = images.shape[1], images.shape[2]
    rows = tf.clip_by_value(rows, -1.0, float(height))
    columns = tf.clip_by_value(columns, -1.0, float(width))
    top, left = tf.floor(rows), tf.floor(columns)
    down, right = rows - top, columns - left
    padded = tf.pad(images[..., 0], [[0, 0], [1, 2], [1, 2]])  # rows and columns -1 .. H+1
    # every padded pixel with its right, lower and lower-right neighbours: one gather fetches all four
    quads = tf.stack([padded[:, :-1, :-1], padded[:, :-1, 1:], padded[:, 1:, :-1], padded[:, 1:, 1:]], -1)
    padded_height, padded_width = height + 2, width + 2
    index = (
        tf.range(batch)[:, None, None] * (padded_height * padded_width)
        + (tf.cast(top, tf.int32) + 1) * padded_width
        + tf.cast(left, tf.int32)
        + 1
    )
    quad = tf.gather(tf.reshape(quads, [-1, 4]), index)
    upper = quad[..., 0] * (1 - right) + quad[..., 1] * right
    lower = quad[..., 2] * (1 - right) + quad[..., 3] * right
    return (upper * (1 - down) + lower * down)[..., None]


def _per_image(probability, batch):
    import tensorflow as tf

    return tf.cast(tf.random.uniform([batch, 1, 1, 1]) < probability, tf.float32)


def _batch_as_channels(operation, images):
    """``operation`` on ``(N, H, W, 1)`` images laid out as one ``(1, H, W, N)`` image: the same result,
    5-6x faster on CPU, where pooling and convolution over a single channel run poorly vectorized."""
    import tensorflow as tf

    return tf.transpose(operation(tf.transpose(images, [3, 1, 2, 0])), [3, 1, 2, 0])


BLUR_KERNEL = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], np.float32)[:, :, None, None] / 16.0  # 3x3 binomial


def _max_pool(images):
    """3x3 grey-level dilation of every channel."""
    import tensorflow as tf

    return tf.nn.max_pool2d(images, 3, 1, "SAME")


def _blur(images):
    """3x3 binomial blur of every channel."""
    import tensorflow as tf

    return tf.nn.depthwise_conv2d(
        images, tf.tile(tf.constant(BLUR_KERNEL), [1, 1, tf.shape(images)[3], 1]), [1, 1, 1, 1], "SAME"
    )


def _stroke_width(images, config: AugmentConfig):
    import tensorflow as tf

    batch = tf.shape(images)[0]
    thicker = _batch_as_channels(_max_pool, images)
    thinner = -_batch_as_channels(_max_pool, -images)
    amount = tf.random.uniform([batch, 1, 1, 1], 0.0, config.stroke_strength)
    direction = _per_image(0.5, batch)
    target = direction * thicker + (1.0 - direction) * thinner
    apply = _per_image(config.stroke_probability, batch)
    return images + apply * amount * (target - images)


def _blur_and_contrast(images, config: AugmentConfig):
    import tensorflow as tf

    batch = tf.shape(images)[0]
    blurred = _batch_as_channels(_blur, images)
    images = images + _per_image(config.blur_probability, batch) * (blurred - images)
    gain = tf.random.uniform([batch, 1, 1, 1], 0.7, 1.6)
    contrasted = tf.clip_by_value(images * gain, 0.0, 1.0)
    return images + _per_image(config.contrast_probability, batch) * (contrasted - images)


def augment_batch(images, config: AugmentConfig = AugmentConfig()):
    """Augment a float batch ``(N, 28, 28, 1)`` in ``[0, 1]``; returns the same shape and range."""
    import tensorflow as tf

    if config == NO_AUGMENTATION:
        return images
    images = _affine(images, config)
    if config.stroke_probability > 0:
        images = _stroke_width(images, config)
    if config.blur_probability > 0 or config.contrast_probability > 0:
        images = _blur_and_contrast(images, config)
    return tf.clip_by_value(images, 0.0, 1.0)


def augment_batch_ops(images, config: AugmentConfig, seed_generator):
    """:func:`augment_batch` in ``keras.ops`` (any Keras backend), drawing from ``seed_generator`` (a
    ``keras.random.SeedGenerator``): the same warp (:func:`inverse_affine`), sampling, stroke-width change,
    blur and contrast, with the same probabilities.  No elastic distortion (a ValueError)."""
    import keras
    from keras import ops

    if config.elastic_pixels > 0:
        raise ValueError("elastic_pixels > 0 is only in the TensorFlow implementation (augment_batch)")
    if config == NO_AUGMENTATION:
        return images
    batch = ops.shape(images)[0]

    def uniform(shape, low, high):
        return keras.random.uniform(shape, low, high, seed=seed_generator)

    def per_image(probability):
        return ops.cast(uniform((batch, 1, 1, 1), 0.0, 1.0) < probability, "float32")

    i00, i01, b0, i10, i11, b1 = inverse_affine(
        config, lambda low, high: uniform((batch,), low, high), ops.cos, ops.sin, *images.shape[1:3]
    )
    zeros = ops.zeros_like(b0)
    transform = ops.stack([i00, i01, b0, i10, i11, b1, zeros, zeros], axis=1)
    images = ops.image.affine_transform(images, transform, interpolation="bilinear", fill_mode="constant")
    if config.stroke_probability > 0:
        thicker = ops.max_pool(images, 3, 1, "same")
        thinner = -ops.max_pool(-images, 3, 1, "same")
        amount = uniform((batch, 1, 1, 1), 0.0, config.stroke_strength)
        direction = per_image(0.5)
        target = direction * thicker + (1.0 - direction) * thinner
        images = images + per_image(config.stroke_probability) * amount * (target - images)
    if config.blur_probability > 0 or config.contrast_probability > 0:
        blurred = ops.depthwise_conv(images, ops.convert_to_tensor(BLUR_KERNEL), 1, "same")
        images = images + per_image(config.blur_probability) * (blurred - images)
        contrasted = ops.clip(images * uniform((batch, 1, 1, 1), 0.7, 1.6), 0.0, 1.0)
        images = images + per_image(config.contrast_probability) * (contrasted - images)
    return ops.clip(images, 0.0, 1.0)
