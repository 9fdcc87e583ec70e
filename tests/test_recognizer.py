"""Recognizer: the shipped model's accuracy, canvas predictions, and clear errors on bad input."""

import json

import numpy as np
import pytest

from digitglyph import Prediction, Recognizer
from digitglyph.answers import AnswerRule
from digitglyph.paths import MODELS
from digitglyph.strokes import drawn_digits


def test_shipped_model_reproduces_its_model_card(recognizer, mnist):
    """The shipped model scores what models/metrics.json records, at least the 99.65 % target (original: 99.15 %)."""
    _, (x_test, y_test) = mnist
    probabilities = recognizer.predict_mnist(x_test)
    assert probabilities.shape == (10000, 10) and probabilities.dtype == np.float64
    assert np.allclose(probabilities.sum(1), 1, atol=1e-4)
    accuracy = np.mean(probabilities.argmax(1) == y_test)
    recorded = json.loads((MODELS / "metrics.json").read_text())
    assert accuracy == pytest.approx(recorded["test_accuracy"], abs=0.0003)
    assert accuracy >= 0.9965


def test_shipped_model_is_deployable():
    """Folded and float16-exact, so the web page's float16 weights are exactly the weights Python uses."""
    import keras

    from digitglyph.deploy import is_float16_exact
    from digitglyph.recognizer import DEFAULT_MODEL

    model = keras.models.load_model(DEFAULT_MODEL, compile=False)
    assert is_float16_exact(model)
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in model.layers)


def test_batches_of_any_size_agree(recognizer, mnist):
    _, (x_test, _) = mnist
    whole = recognizer.predict_mnist(x_test[:1500])
    one = recognizer.predict_mnist(x_test[7:8])
    assert np.allclose(whole[7], one[0], atol=1e-5)


def test_drawn_digits_are_recognized(recognizer, mnist):
    _, (images, labels) = mnist
    digits = drawn_digits(60, seed=11, images=images, labels=labels)
    predictions = [recognizer.predict_canvas(d.render()) for d in digits]
    assert all(isinstance(p, Prediction) and p.model_input.shape == (28, 28) for p in predictions)
    # ten digit probabilities; with the 11th output they and the not-a-digit probability make one
    assert all(len(p.probabilities) == 10 and abs(sum(p.probabilities) + p.not_a_digit - 1) < 1e-4 for p in predictions)
    correct = sum(p.best_guess == d.label for p, d in zip(predictions, digits, strict=True))
    assert correct >= 55, f"{correct}/60 drawn digits recognized"
    wrong_and_sure = sum(p.status == "ok" and p.digit != d.label for p, d in zip(predictions, digits, strict=True))
    assert wrong_and_sure <= 1, f"{wrong_and_sure} drawn digits answered with a wrong digit"


def test_empty_and_near_empty_canvases_never_guess(recognizer):
    speck = np.zeros((280, 280, 4), np.uint8)
    speck[100:104, 100:104, 3] = 255
    for canvas in (np.zeros((280, 280, 4), np.uint8), speck, np.full((200, 300, 3), 255, np.uint8)):
        prediction = recognizer.predict_canvas(canvas)
        assert prediction.digit is None and prediction.status == "empty" and prediction.model_input is None


def test_answers_follow_the_rule_around_the_top_probability(recognizer, mnist):
    """Just above a drawing's top probability the answer is "unsure" (digit None, best guess kept); just below, ok;
    with the not-a-digit threshold at or below its 11th output, "not a digit"."""
    _, (images, labels) = mnist
    canvas = drawn_digits(1, seed=0, images=images, labels=labels)[0].render()
    sure = recognizer.predict_canvas(canvas)
    assert sure.status == "ok" and sure.digit == sure.best_guess and 0 < sure.not_a_digit < 0.5
    above = Recognizer(recognizer.runtime, recognizer.version, threshold=sure.confidence + 1e-6)
    below = Recognizer(recognizer.runtime, recognizer.version, threshold=sure.confidence - 1e-6)
    unsure = above.predict_canvas(canvas)
    assert (unsure.status, unsure.digit, unsure.best_guess) == ("unsure", None, sure.digit)
    assert unsure.probabilities == sure.probabilities and above.threshold == sure.confidence + 1e-6
    assert below.predict_canvas(canvas).digit == sure.digit
    rejecting = Recognizer(recognizer.runtime, recognizer.version, rule=AnswerRule(not_a_digit_at=sure.not_a_digit))
    rejected = rejecting.predict_canvas(canvas)
    assert (rejected.status, rejected.digit, rejected.best_guess) == ("not_a_digit", None, sure.digit)
    keeping = Recognizer(
        recognizer.runtime, recognizer.version, rule=AnswerRule(not_a_digit_at=sure.not_a_digit + 1e-6)
    )
    assert keeping.predict_canvas(canvas).status == "ok"


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((28, 28), np.uint8), "batch"),
        (np.zeros((3, 28, 27), np.uint8), r"shape \(N, 28, 28\)"),
        (np.zeros((0, 28, 28), np.uint8), "empty batch"),
        (np.zeros((2, 28, 28), np.float32), "uint8"),
        (np.full((2, 28, 28), np.nan), "NaN"),
        (np.array([["a"] * 28] * 28 * 2).reshape(2, 28, 28), "uint8"),
    ],
)
def test_bad_batches_get_clear_errors(recognizer, bad, message):
    with pytest.raises(ValueError, match=message):
        recognizer.predict_mnist(bad)


def test_loading_a_missing_or_bad_model_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model at"):
        Recognizer.load(tmp_path / "missing.keras")
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not a loadable Keras model"):
        Recognizer.load(bad)
    bad_light = tmp_path / "bad.tflite"
    bad_light.write_bytes(b"not a model")
    with pytest.raises(ValueError, match=r"bad\.tflite is not a LiteRT model"):
        Recognizer.load(bad_light)


def test_a_model_of_another_shape_is_refused(tmp_path):
    import keras

    inputs = keras.Input((32, 32, 3))
    keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(inputs))).save(
        tmp_path / "cifar.keras"
    )
    with pytest.raises(ValueError, match=r"cifar\.keras maps \(None, 32, 32, 3\)"):
        Recognizer.load(tmp_path / "cifar.keras")


# -- "not a digit" with the shipped model, on writers it never saw ------------------------------------------


@pytest.fixture(scope="module")
def held_out_canvases():
    """Real pen characters of the test writers (never trained on), drawn on the app's 280 px canvas."""
    from digitglyph.data.pen import load_pen_characters, writer_splits
    from digitglyph.data.sources import EVALUATION_STYLE, is_clear_non_digit, is_digit
    from digitglyph.strokes import DrawingStyle, on_app_canvas

    characters = load_pen_characters(progress=False)
    test = writer_splits(characters) == "test"
    rng = np.random.default_rng(0)
    style = DrawingStyle(**EVALUATION_STYLE)
    picked = {}
    for name, keep in (("digits", is_digit), ("others", is_clear_non_digit)):
        indices = np.flatnonzero(test & np.array([keep(label) for label in characters.labels]))
        chosen = rng.choice(indices, 150, replace=False)
        picked[name] = [(characters.labels[i], on_app_canvas(characters.strokes(i), style)) for i in chosen]
    return picked


def test_letters_and_symbols_of_unseen_writers_are_not_digits(recognizer, held_out_canvases):
    answers = [recognizer.predict_canvas(canvas) for _, canvas in held_out_canvases["others"]]
    rejected = [a for a in answers if a.status == "not_a_digit"]
    assert len(rejected) >= 0.85 * len(answers), f"{len(rejected)}/{len(answers)} answered 'not a digit'"
    assert all(a.digit is None and a.best_guess is not None and len(a.probabilities) == 10 for a in rejected)


def test_digits_of_unseen_writers_are_read_not_rejected(recognizer, held_out_canvases):
    answers = [(label, recognizer.predict_canvas(canvas)) for label, canvas in held_out_canvases["digits"]]
    assert sum(a.status == "not_a_digit" for _, a in answers) <= 2
    assert sum(a.best_guess == int(label) for label, a in answers) >= 0.96 * len(answers)


@pytest.mark.parametrize("kind", ["scribble", "zigzag", "crossed_out", "blob"])
def test_generated_scribbles_are_not_digits(recognizer, kind):
    from digitglyph.data.pen import load_pen_characters
    from digitglyph.data.sources import generated_non_digits
    from digitglyph.strokes import DrawingStyle, on_app_canvas

    digits = load_pen_characters(progress=False)
    pen_digits = [digits.strokes(i) for i in range(200)]  # pendigits, for the crossed-out ones
    strokes, kinds = generated_non_digits(70, pen_digits, seed=123)
    canvases = [on_app_canvas(s, DrawingStyle()) for s, k in zip(strokes, kinds, strict=True) if k == kind]
    statuses = [recognizer.predict_canvas(canvas).status for canvas in canvases]
    # scribbles are the hardest kind (78 % of the test writers' in benchmarks/not_a_digit.py): the rest "not sure"
    assert statuses.count("not_a_digit") >= (6 if kind == "scribble" else 9), statuses
    assert "ok" not in statuses, statuses


def test_a_near_empty_canvas_is_still_empty_not_a_non_digit(recognizer):
    speck = np.zeros((280, 280, 4), np.uint8)
    speck[140:143, 140:143, 3] = 255
    prediction = recognizer.predict_canvas(speck)
    assert prediction.status == "empty" and prediction.not_a_digit == 0.0
