"""Hard not-a-digit examples (issue 14): the recipe option that draws the non-digits a model takes for digits more
often, on small data: the sampling weights, the scoring with a model, the run's draws, and the checks of the option."""

import keras
import numpy as np
import pytest

from digitglyph.data import sources
from digitglyph.data.sources import NOT_A_DIGIT, acceptance, hard_negative_probabilities
from digitglyph.train import TrainConfig


def test_no_emphasis_draws_uniformly():
    weights = hard_negative_probabilities(np.array([0.0, 0.9, 0.1, 0.5]), np.array(["a", "b", "c", "d"]), 0.0)
    assert weights == pytest.approx(np.full(4, 0.25))


def test_emphasis_follows_acceptance_by_image_and_by_character():
    # two characters: ">" half accepted (one of its two images), "x" never accepted
    accepted = np.array([1.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    characters = np.array([">", ">", "x", "x", "x", "x"])
    weights = hard_negative_probabilities(accepted, characters, 0.5)
    assert weights.sum() == pytest.approx(1.0)
    uniform = 1 / 6
    # score: the image's own acceptance and its character's mean, halved: 0.75 and 0.25 for ">", 0 for "x"
    assert weights[0] == pytest.approx(0.5 * uniform + 0.5 * 0.75)
    assert weights[1] == pytest.approx(0.5 * uniform + 0.5 * 0.25)  # never accepted itself, but its character is
    assert weights[2:] == pytest.approx(np.full(4, 0.5 * uniform))  # an easy non-digit is still drawn
    # full emphasis: only the accepted character
    assert hard_negative_probabilities(accepted, characters, 1.0)[2:] == pytest.approx(np.zeros(4))


def test_nothing_accepted_falls_back_to_uniform():
    weights = hard_negative_probabilities(np.zeros(3), np.array(["a", "a", "b"]), 0.7)
    assert weights == pytest.approx(np.full(3, 1 / 3))


def _model_rejecting_bright_images(path):
    """11 outputs: "not a digit" grows with the ink of an image, the digits stay level."""
    inputs = keras.Input((28, 28, 1))
    dense = keras.layers.Dense(11)
    model = keras.Model(inputs, keras.layers.Softmax()(dense(keras.layers.Flatten()(inputs))))
    kernel = np.zeros((784, 11), np.float32)
    kernel[:, NOT_A_DIGIT] = 0.2
    dense.set_weights([kernel, np.zeros(11, np.float32)])
    model.save(path)
    return path


def _images(inks):
    images = np.zeros((len(inks), 28, 28), np.uint8)
    for image, ink in zip(images, inks, strict=True):
        image[4:24, 4:24] = ink
    return images


def test_acceptance_is_one_minus_the_not_a_digit_output(tmp_path):
    path = _model_rejecting_bright_images(tmp_path / "m.keras")
    accepted = acceptance(path, _images([0, 255]))
    assert accepted[0] == pytest.approx(10 / 11, abs=1e-3)  # a blank image: every output level
    assert accepted[1] < 0.01


def test_a_run_draws_the_accepted_non_digits_more_often(tmp_path, mnist_dir, monkeypatch):
    """run_data with the emphasis: the slots show the non-digits the scoring model accepts ~emphasis of the time."""
    dim, bright = 40, 160  # dim non-digits are accepted by the model, bright ones rejected
    others = _images([10] * dim + [255] * bright)
    characters = np.array(["y"] * dim + ["x"] * bright)

    def fake_pen_images(pen_dir, seed, variants, slots):
        return np.zeros((0, variants, 28, 28), np.uint8), np.zeros(0, np.int64), others, characters

    monkeypatch.setattr(sources, "training_pen_images", fake_pen_images)
    monkeypatch.setattr(sources, "evaluation_data", lambda parameters: ({}, {}))
    model = _model_rejecting_bright_images(tmp_path / "m.keras")
    base = dict(train_subset=100, validation_size=50, seed=1, data_dir=str(mnist_dir), not_a_digit=4000)

    def share_of_dim(**extra):
        data = sources.run_data(TrainConfig(**base, **extra))
        slots = data.candidates[data.labels == NOT_A_DIGIT]
        first = len(data.pool) - len(others)  # the non-digits are the last images of the pool
        assert (slots >= first).all()
        return np.mean(slots - first < dim)

    assert share_of_dim() == pytest.approx(dim / len(others), abs=0.02)  # uniform: 20 %
    emphasised = share_of_dim(not_a_digit_emphasis=0.5, hard_negative_model=str(model))
    assert emphasised == pytest.approx(0.5 * 0.2 + 0.5 * 1.0, abs=0.03)  # nearly all the score is the dim ones'


def test_the_option_is_checked(tmp_path):
    with pytest.raises(ValueError, match="not_a_digit_emphasis"):
        TrainConfig(not_a_digit=100, not_a_digit_emphasis=1.5, hard_negative_model=None)
    with pytest.raises(ValueError, match="needs not_a_digit"):
        TrainConfig(not_a_digit_emphasis=0.5)
    with pytest.raises(ValueError, match="needs a model"):
        TrainConfig(not_a_digit=100, not_a_digit_emphasis=0.5)
    with pytest.raises(ValueError, match="hard_negative_model"):
        TrainConfig(not_a_digit=100, not_a_digit_emphasis=0.5, hard_negative_model=str(tmp_path / "missing.keras"))
    model = tmp_path / "m.keras"
    model.write_bytes(b"")
    assert TrainConfig(not_a_digit=100, not_a_digit_emphasis=0.5, hard_negative_model=str(model))
    assert TrainConfig(not_a_digit=100, not_a_digit_emphasis=0.5, initial_model=str(model))  # the default scorer
    assert TrainConfig().not_a_digit_emphasis == 0.0  # off by default: existing recipes draw as before
