"""Training-time augmentation: shapes and ranges kept, each transform doing what it says."""

import numpy as np
import pytest
import tensorflow as tf

from digitglyph.augment import BLUR_KERNEL, NO_AUGMENTATION, AugmentConfig, _batch_as_channels, _blur, _max_pool, augment_batch


@pytest.fixture(scope="module")
def digits(mnist):
    (x_train, _), _ = mnist
    return tf.constant(x_train[:64, :, :, None].astype(np.float32) / 255.0)


def ink(images):
    return np.asarray(tf.reduce_sum(images, axis=[1, 2, 3]))


def test_augmentation_keeps_shape_and_range_and_changes_every_image(digits):
    tf.random.set_seed(0)
    augmented = augment_batch(digits, AugmentConfig())
    assert augmented.shape == digits.shape
    assert float(tf.reduce_min(augmented)) >= 0.0 and float(tf.reduce_max(augmented)) <= 1.0
    changed = np.abs(np.asarray(augmented - digits)).reshape(len(digits), -1).max(1)
    assert (changed > 0.05).all()


def test_no_augmentation_returns_the_batch_as_it_is(digits):
    assert augment_batch(digits, NO_AUGMENTATION) is digits


@pytest.mark.parametrize("sign", [1.0, -1.0])  # dilation (thicker pen) and erosion (thinner pen)
def test_pooling_the_batch_as_channels_equals_pooling_each_image(digits, sign):
    per_image = sign * tf.nn.max_pool2d(sign * digits, 3, 1, "SAME")
    assert np.array_equal(sign * _batch_as_channels(_max_pool, sign * digits), per_image)


def test_blurring_the_batch_as_channels_equals_blurring_each_image(digits):
    per_image = tf.nn.conv2d(digits, BLUR_KERNEL, 1, "SAME")
    np.testing.assert_allclose(_batch_as_channels(_blur, digits), per_image, atol=1e-6)


def test_stroke_width_change_thickens_or_thins_every_digit(digits):
    only_strokes = AugmentConfig(0, 0, 0, 0, 0, stroke_probability=1.0, stroke_strength=1.0,
                                 blur_probability=0, contrast_probability=0)
    tf.random.set_seed(1)
    changed = ink(augment_batch(digits, only_strokes))
    thickest, thinnest = ink(tf.nn.max_pool2d(digits, 3, 1, "SAME")), ink(-tf.nn.max_pool2d(-digits, 3, 1, "SAME"))
    assert ((thinnest - 1e-3 <= changed) & (changed <= thickest + 1e-3)).all()  # between the two pens
    ratio = changed / ink(digits)
    assert np.mean((ratio > 1.02) | (ratio < 0.98)) > 0.8  # the blend amount is random: a few change little
    assert (ratio > 1.2).any() and (ratio < 0.8).any()  # both pens are drawn


def test_shift_moves_digits_by_at_most_the_configured_pixels(digits):
    only_shift = AugmentConfig(0, 0, 0, 0, shift_pixels=3.0, stroke_probability=0, stroke_strength=0,
                               blur_probability=0, contrast_probability=0)
    tf.random.set_seed(2)
    shifted = np.asarray(augment_batch(digits, only_shift))[..., 0]
    columns = np.arange(28)

    def centre_x(images):
        return (images.sum(1) * columns).sum(1) / images.sum((1, 2))

    moved = np.abs(centre_x(shifted) - centre_x(np.asarray(digits)[..., 0]))
    assert moved.max() <= 3.0 + 0.5  # bilinear sampling and clipping at the border blur the centre a little
    assert moved.mean() > 0.5
