"""Training-time augmentation: shapes and ranges kept, each transform doing what it says."""

import numpy as np
import pytest
import tensorflow as tf

from digitglyph.augment import (
    BLUR_KERNEL,
    NO_AUGMENTATION,
    AugmentConfig,
    _batch_as_channels,
    _blur,
    _max_pool,
    augment_batch,
)
from digitglyph.train import TrainConfig


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
    only_strokes = AugmentConfig(
        0, 0, 0, 0, 0, stroke_probability=1.0, stroke_strength=1.0, blur_probability=0, contrast_probability=0
    )
    tf.random.set_seed(1)
    changed = ink(augment_batch(digits, only_strokes))
    thickest, thinnest = ink(tf.nn.max_pool2d(digits, 3, 1, "SAME")), ink(-tf.nn.max_pool2d(-digits, 3, 1, "SAME"))
    assert ((thinnest - 1e-3 <= changed) & (changed <= thickest + 1e-3)).all()  # between the two pens
    ratio = changed / ink(digits)
    assert np.mean((ratio > 1.02) | (ratio < 0.98)) > 0.8  # the blend amount is random: a few change little
    assert (ratio > 1.2).any() and (ratio < 0.8).any()  # both pens are drawn


def test_shift_moves_digits_by_at_most_the_configured_pixels(digits):
    only_shift = AugmentConfig(
        0,
        0,
        0,
        0,
        shift_pixels=3.0,
        stroke_probability=0,
        stroke_strength=0,
        blur_probability=0,
        contrast_probability=0,
    )
    tf.random.set_seed(2)
    shifted = np.asarray(augment_batch(digits, only_shift))[..., 0]
    columns = np.arange(28)

    def centre_x(images):
        return (images.sum(1) * columns).sum(1) / images.sum((1, 2))

    moved = np.abs(centre_x(shifted) - centre_x(np.asarray(digits)[..., 0]))
    assert moved.max() <= 3.0 + 0.5  # bilinear sampling and clipping at the border blur the centre a little
    assert moved.mean() > 0.5


ONLY_AFFINE = dict(stroke_probability=0, stroke_strength=0, blur_probability=0, contrast_probability=0)
ONLY_ELASTIC = AugmentConfig(0, 0, 0, 0, 0, 0, 0, 0, 0, elastic_pixels=2.0)


def test_the_elastic_sampler_reproduces_the_affine_warp_when_the_field_is_zero(digits):
    # the elastic path samples the images itself; with a vanishing field it must be the projective op
    tf.random.set_seed(3)
    projective = augment_batch(digits, AugmentConfig(**ONLY_AFFINE))
    tf.random.set_seed(3)
    sampled = augment_batch(digits, AugmentConfig(**ONLY_AFFINE, elastic_pixels=1e-9))
    np.testing.assert_allclose(sampled, projective, atol=1e-6)


@pytest.mark.parametrize("axis", [1, 2])  # rows, columns
def test_elastic_distortion_is_a_smooth_displacement_of_at_most_about_the_configured_pixels(axis):
    # a ramp image holds each pixel's own coordinate, so bilinear sampling returns the source coordinate:
    # output - coordinate is the displacement field itself (away from the zero-filled border)
    ramp = (
        np.broadcast_to(np.arange(28, dtype=np.float32).reshape([28 if a == axis else 1 for a in (1, 2)]), (28, 28))
        / 27.0
    )
    images = tf.constant(np.broadcast_to(ramp, (64, 28, 28))[..., None])
    tf.random.set_seed(4)
    warped = np.asarray(augment_batch(images, ONLY_ELASTIC))[:, 4:-4, 4:-4, 0] * 27.0
    displacement = warped - np.asarray(images)[:, 4:-4, 4:-4, 0] * 27.0
    assert np.abs(displacement).max() <= 2.0 * 1.3  # bicubic interpolation overshoots its control points a little
    assert np.abs(displacement).reshape(64, -1).max(1).min() > 0.2  # every image is distorted
    # smooth: neighbouring pixels move almost together (a control point every 9 pixels)
    assert np.abs(np.diff(displacement, axis=1)).max() < 0.8
    assert np.abs(np.diff(displacement, axis=2)).max() < 0.8


def test_elastic_distortion_keeps_the_ink_and_changes_every_digit(digits):
    tf.random.set_seed(5)
    warped = augment_batch(digits, ONLY_ELASTIC)
    ratio = ink(warped) / ink(digits)  # local stretching and squeezing change a digit's area somewhat
    assert (np.abs(ratio - 1.0) < 0.35).all() and abs(ratio.mean() - 1.0) < 0.05
    changed = np.abs(np.asarray(warped - digits)).reshape(len(digits), -1).max(1)
    assert (changed > 0.05).all()


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(elastic_pixels=-1.0), "elastic_pixels=-1.0 must be"),
        (dict(elastic_pixels=20.0), "elastic_pixels=20.0 must be"),
        (dict(elastic_grid=1), "elastic_grid=1 must be"),
        (dict(elastic_grid=3.5), "elastic_grid=3.5 must be"),
    ],
)
def test_bad_elastic_settings_are_refused_naming_the_setting(change, message):
    with pytest.raises(ValueError, match=message):
        AugmentConfig(**change)
    with pytest.raises(ValueError, match="bad training parameter: augmentation=.*" + message):
        TrainConfig(augmentation=change)


def statistics(images) -> dict:
    """What the augmentation changes, summed over a batch: brightness, ink share, where the ink sits."""
    images = np.asarray(images)[..., 0]
    mass = images.sum((1, 2))
    rows = (images * np.arange(28)[None, :, None]).sum((1, 2)) / mass
    columns = (images * np.arange(28)[None, None, :]).sum((1, 2)) / mass
    return {
        "mean": images.mean(),
        "ink share": (images > 0.5).mean(),
        "row spread": rows.std(),
        "column spread": columns.std(),
    }


def test_the_keras_ops_implementation_draws_from_the_same_distribution(mnist):
    """augment_batch_ops (train_jax, any backend) against augment_batch (TensorFlow): the same spec, so over
    2,000 digits the same brightness, ink share and spread of the ink's centre, within sampling noise; and
    both far from the unaugmented batch's spread."""
    import keras

    from digitglyph.augment import augment_batch_ops

    (x_train, _), _ = mnist
    batch = x_train[:2000, :, :, None].astype(np.float32) / 255.0
    tf.random.set_seed(1)
    reference = statistics(augment_batch(tf.constant(batch), AugmentConfig()))
    ported = statistics(augment_batch_ops(batch, AugmentConfig(), keras.random.SeedGenerator(1)))
    original = statistics(batch)
    for name in reference:
        assert ported[name] == pytest.approx(reference[name], rel=0.06), name
    assert reference["row spread"] > 1.2 * original["row spread"]


def test_the_keras_ops_implementation_passes_no_augmentation_through_and_refuses_elastic(digits):
    import keras

    from digitglyph.augment import augment_batch_ops

    generator = keras.random.SeedGenerator(0)
    assert augment_batch_ops(digits, NO_AUGMENTATION, generator) is digits
    with pytest.raises(ValueError, match="elastic_pixels"):
        augment_batch_ops(digits, AugmentConfig(elastic_pixels=2.0), generator)
