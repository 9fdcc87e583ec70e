"""The light runtime: the committed LiteRT file is the shipped model, same answers as Keras, fallback, no TensorFlow."""

import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from digitglyph import Recognizer
from digitglyph.answers import AnswerRule
from digitglyph.preprocess import network_input
from digitglyph.recognizer import DEFAULT_MODEL
from digitglyph.runtime import PARITY, KerasModel, LiteModel, export_light, light_path, sha256_of
from digitglyph.strokes import drawn_digits
from digitglyph.vectors import VECTORS, decode_canvas

HEAVY = ("tensorflow", "keras", "tf_keras")


@pytest.fixture(scope="module")
def keras_model():
    return KerasModel.load(DEFAULT_MODEL)


@pytest.fixture(scope="module")
def keras_recognizer(recognizer, keras_model):
    """The shipped model run by Keras, with the shipped recognizer's version and rule."""
    return Recognizer(keras_model, recognizer.version, rule=recognizer.rule)


def tiny_model(outputs=10, activation="softmax", bias=None):
    """A small Keras model of the digit shape whose answer is set by its output bias."""
    import keras

    inputs = keras.Input((28, 28, 1))
    dense = keras.layers.Dense(outputs, activation=activation)
    model = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))
    kernel, _ = dense.get_weights()
    dense.set_weights([np.zeros_like(kernel), np.asarray(bias if bias is not None else np.zeros(outputs), np.float32)])
    return model


def bar_canvas():
    canvas = np.zeros((280, 280, 4), np.uint8)
    canvas[40:240, 130:150, 3] = 255
    return canvas


def assert_same_answer(light, heavy):
    assert (light.status, light.digit, light.best_guess) == (heavy.status, heavy.digit, heavy.best_guess)
    assert np.abs(np.subtract(light.probabilities, heavy.probabilities)).max() <= PARITY
    assert light.not_a_digit == pytest.approx(heavy.not_a_digit, abs=PARITY)
    assert np.array_equal(light.model_input, heavy.model_input)


def test_the_shipped_recognizer_runs_the_committed_light_file(recognizer):
    assert isinstance(recognizer.runtime, LiteModel) and recognizer.runtime.path == light_path(DEFAULT_MODEL)
    assert recognizer.version == f"model-{sha256_of(DEFAULT_MODEL)[:12]}"  # stable: the .keras content's hash


def test_committed_light_file_is_the_export_of_the_committed_model(mnist, keras_model):
    """It records the committed model.keras as its source and gives its outputs on all MNIST test images."""
    light = LiteModel(light_path(DEFAULT_MODEL))
    assert light.source_sha256 == sha256_of(DEFAULT_MODEL)
    _, (x_test, _) = mnist
    inputs = network_input(x_test)
    for start in range(0, len(inputs), 2000):
        batch = inputs[start : start + 2000]
        assert np.abs(light.outputs(batch) - keras_model.outputs(batch)).max() <= PARITY


def test_light_and_keras_give_the_same_answers_on_the_shared_vectors(recognizer, keras_recognizer):
    cases = json.loads(VECTORS.read_text())["cases"]
    statuses = set()
    for case in cases:
        canvas = decode_canvas(case)
        light, heavy = recognizer.predict_canvas(canvas), keras_recognizer.predict_canvas(canvas)
        assert_same_answer(light, heavy)
        statuses.add(light.status)
    assert {"ok", "empty"} <= statuses


def test_light_and_keras_give_the_same_answers_on_held_out_drawn_digits(recognizer, keras_recognizer, mnist):
    _, (images, labels) = mnist
    digits = drawn_digits(40, seed=23, images=images, labels=labels)
    for digit in digits:
        assert_same_answer(recognizer.predict_canvas(digit.render()), keras_recognizer.predict_canvas(digit.render()))
    inputs = np.stack([recognizer.predict_canvas(digit.render()).model_input for digit in digits])
    assert np.abs(recognizer.predict_mnist(inputs) - keras_recognizer.predict_mnist(inputs)).max() <= PARITY


def test_a_model_without_light_export_runs_on_keras_with_the_same_answers(recognizer, tmp_path):
    shutil.copyfile(DEFAULT_MODEL, tmp_path / "model.keras")
    fallback = Recognizer.load(tmp_path / "model.keras")
    assert isinstance(fallback.runtime, KerasModel) and fallback.version == recognizer.version
    assert_same_answer(fallback.predict_canvas(bar_canvas()), recognizer.predict_canvas(bar_canvas()))


def test_export_light_writes_a_file_the_recognizer_then_uses(tmp_path):
    """An 11-output model through the whole light path: export, load, the rule from metrics.json."""
    model = tiny_model(11, bias=[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4.0])  # mostly "not a digit"
    model.save(tmp_path / "model.keras")
    (tmp_path / "metrics.json").write_text(json.dumps({"answer_rule": {"unsure_below": 0.5, "not_a_digit_at": 0.8}}))
    written = export_light(tmp_path / "model.keras")
    assert written == tmp_path / "model.tflite" and not list(tmp_path.glob(".*partial"))
    recognizer = Recognizer.load(tmp_path / "model.keras")
    assert isinstance(recognizer.runtime, LiteModel) and recognizer.rule == AnswerRule(0.5, 0.8)
    prediction = recognizer.predict_canvas(bar_canvas())
    expected_not_a_digit = np.exp(4.0) / (np.exp(4.0) + 10)
    assert prediction.status == "not_a_digit" and prediction.digit is None
    assert prediction.not_a_digit == pytest.approx(expected_not_a_digit, abs=1e-6)
    assert sum(prediction.probabilities) == pytest.approx(1 - expected_not_a_digit, abs=1e-6)
    assert np.allclose(recognizer.predict_mnist(np.zeros((3, 28, 28), np.uint8)), 0.1)  # digits renormalised
    direct = Recognizer.load(written)  # the light file given directly: same version, same rule
    assert (direct.version, direct.rule) == (recognizer.version, recognizer.rule)


def test_a_stale_light_file_is_not_used(tmp_path):
    """A .tflite exported from another model.keras is ignored (with a warning), not silently run."""
    tiny_model(bias=[0, 0, 0, 5.0, 0, 0, 0, 0, 0, 0]).save(tmp_path / "model.keras")
    shutil.copyfile(light_path(DEFAULT_MODEL), tmp_path / "model.tflite")
    with pytest.warns(UserWarning, match="was not exported from"):
        recognizer = Recognizer.load(tmp_path / "model.keras")
    assert isinstance(recognizer.runtime, KerasModel) and recognizer.predict_canvas(bar_canvas()).digit == 3


def test_models_whose_outputs_are_not_probabilities_are_refused(tmp_path):
    logits = tmp_path / "logits.keras"
    tiny_model(activation=None, bias=np.linspace(-3, 3, 10)).save(logits)
    with pytest.raises(ValueError, match=r"logits\.keras is not a probability model"):
        Recognizer.load(logits)
    export_light(logits)
    with pytest.raises(ValueError, match=r"logits\.tflite is not a probability model"):
        Recognizer.load(tmp_path / "logits.tflite")


@pytest.mark.parametrize("empty", ["", "  "])
def test_an_empty_model_path_is_refused(empty):
    with pytest.raises(ValueError, match="model path is empty"):
        Recognizer.load(empty)


def test_a_bad_answer_rule_in_metrics_json_is_named(tmp_path):
    shutil.copyfile(DEFAULT_MODEL, tmp_path / "model.keras")
    (tmp_path / "metrics.json").write_text(json.dumps({"answer_rule": {"unsure_below": 2}}))
    with pytest.raises(ValueError, match=r"metrics\.json has no valid answer_rule"):
        Recognizer.load(tmp_path / "model.keras")


def test_serving_path_imports_no_tensorflow():
    """In a fresh process: import, load the shipped model, predict a canvas and a batch; no TensorFlow or Keras."""
    script = textwrap.dedent(f"""
        import json, sys
        import numpy as np
        from digitglyph import Recognizer
        from digitglyph import answers, preprocess, runtime, strokes
        recognizer = Recognizer.load()
        canvas = strokes.render_strokes([[(140, 40), (140, 240)]], 280, 280, 20)
        prediction = recognizer.predict_canvas(canvas)
        recognizer.predict_mnist(np.zeros((2, 28, 28), np.uint8))
        heavy = sorted(name for name in sys.modules if name.split(".")[0] in {HEAVY!r})
        print(json.dumps({{"heavy": heavy, "runtime": type(recognizer.runtime).__name__, "digit": prediction.digit}}))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"heavy": [], "runtime": "LiteModel", "digit": 1}
