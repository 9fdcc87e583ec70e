"""deploy: batch norms folded and weights rounded to float16 without changing what the model computes; ensembles
(several runs answering as one model) shipped like any other, every member folded."""

import json

import keras
import numpy as np
import pytest

from digitglyph import Recognizer, ensemble
from digitglyph.deploy import DeployError, deployable, is_float16_exact, ship
from digitglyph.models import build
from digitglyph.train import train


def with_trained_batch_norm_statistics(model, seed=0):
    """Give every BatchNormalization non-trivial gamma/beta/mean/variance, as training would."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights(
                [
                    rng.uniform(0.5, 2.0, gamma.shape),
                    rng.normal(0, 0.5, beta.shape),
                    rng.normal(0, 0.5, mean.shape),
                    rng.uniform(0.05, 3.0, variance.shape),
                ]
            )
    return model


@pytest.fixture(scope="module")
def glyphnet_small():
    keras.utils.set_random_seed(0)
    return with_trained_batch_norm_statistics(build("glyphnet-small"))


def test_folding_keeps_the_function_and_removes_batch_norm_and_dropout(glyphnet_small, mnist):
    _, (x_test, _) = mnist
    images = x_test[:200].astype(np.float32)[..., None] / 255.0
    folded = deployable(glyphnet_small)
    kinds = {layer.__class__.__name__ for layer in folded.layers}
    assert not kinds & {"BatchNormalization", "Dropout"}, kinds
    before = glyphnet_small.predict(images, verbose=0)
    after = folded.predict(images, verbose=0)
    assert np.abs(before - after).max() < 2e-3  # float16 rounding of the weights, nothing more
    assert (before.argmax(1) == after.argmax(1)).mean() >= 0.99
    assert folded.count_params() < glyphnet_small.count_params()


def test_deployable_weights_are_float16_values(glyphnet_small):
    folded = deployable(glyphnet_small)
    assert is_float16_exact(folded) and not is_float16_exact(glyphnet_small)
    for weights in folded.get_weights():
        assert weights.dtype == np.float32
        assert np.array_equal(weights.astype(np.float16).astype(np.float32), weights)


def test_a_batch_norm_after_an_activation_is_refused_by_name():
    model = build("glyph17")  # its batch norms follow ReLU convolutions: nothing to fold them into
    with pytest.raises(DeployError, match="BatchNormalization 'batch_normalization"):
        deployable(model)


def test_a_model_that_is_not_a_chain_is_refused():
    inputs = keras.Input(shape=(28, 28, 1))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    x = keras.layers.Add()([x, keras.layers.Conv2D(4, 3, padding="same")(inputs)])
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(x))
    with pytest.raises(DeployError, match="single chain"):
        deployable(keras.Model(inputs, outputs))


def test_ship_writes_a_measured_deployable_model(mnist_dir, mnist, tmp_path):
    run = tmp_path / "run"
    run_metrics = train(
        dict(
            architecture="glyphnet-small",
            epochs=2,
            batch_size=64,
            train_subset=600,
            validation_size=300,
            seed=5,
            data_dir=str(mnist_dir),
            selection="final",
        ),
        run,
    )
    out = tmp_path / "models"
    shipped = ship(run, out)
    assert {path.name for path in out.iterdir()} == {"model.keras", "model.tflite", "metrics.json", "history.csv"}
    assert json.loads((out / "metrics.json").read_text()) == json.loads(json.dumps(shipped))
    recognizer = Recognizer.load(out / "model.keras")
    from digitglyph.runtime import LiteModel

    assert isinstance(recognizer.runtime, LiteModel)  # the apps serve the light export ship wrote
    assert is_float16_exact(recognizer.model)
    _, (x_test, y_test) = mnist
    measured = np.mean(recognizer.predict_mnist(x_test).argmax(1) == y_test)
    assert shipped["test_accuracy"] == pytest.approx(measured, abs=1e-4)  # the metrics describe the shipped file
    assert shipped["test_accuracy"] == pytest.approx(run_metrics["test_accuracy"], abs=0.01)
    assert shipped["deployment"]["folded_batch_norms"] == 4
    assert shipped["parameters"] == run_metrics["parameters"]


def test_ship_refuses_an_unfinished_run(tmp_path):
    (tmp_path / "run").mkdir()
    with pytest.raises(DeployError, match="no finished run"):
        ship(tmp_path / "run", tmp_path / "models")
    assert not (tmp_path / "models").exists()


# -- ensembles ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def members():
    keras.utils.set_random_seed(0)
    return [with_trained_batch_norm_statistics(build("glyphnet-small", 11), seed) for seed in (1, 2, 3)]


@pytest.fixture(scope="module")
def images(mnist):
    _, (x_test, _) = mnist
    return x_test[:100].astype(np.float32)[..., None] / 255.0


def test_an_ensemble_answers_with_the_average_of_its_members(members, images):
    model = ensemble.build(members)
    expected = np.mean([member.predict_on_batch(images) for member in members], axis=0)
    assert np.abs(model.predict_on_batch(images) - expected).max() < 1e-6
    assert ensemble.members_of(model) == members
    assert ensemble.members_of(members[0]) is None


def test_an_ensemble_needs_two_members_of_one_shape(members):
    with pytest.raises(ValueError, match="at least two members"):
        ensemble.build(members[:1])
    with pytest.raises(ValueError, match="same input and output shapes"):
        ensemble.build([members[0], build("glyphnet-small", 10)])


def test_a_deployable_ensemble_folds_every_member_and_keeps_the_function(members, images):
    model = ensemble.build(members)
    folded = deployable(model)
    assert len(ensemble.members_of(folded)) == len(members)
    assert is_float16_exact(folded) and not is_float16_exact(model)
    inner = {layer.__class__.__name__ for member in ensemble.members_of(folded) for layer in member.layers}
    assert not inner & {"BatchNormalization", "Dropout"}, inner
    before, after = model.predict_on_batch(images), folded.predict_on_batch(images)
    assert np.abs(before - after).max() < 2e-3  # float16 rounding of the weights, nothing more


def write_member(run_dir, model, **parameters):
    run_dir.mkdir(parents=True)
    model.save(run_dir / "model.keras")
    values = {"seed": 2, "validation_size": 5000, "pen_digits": 2, "not_a_digit": 30000, "architecture": "g"}
    (run_dir / "config.json").write_text(json.dumps({**values, **parameters}))
    return run_dir


def test_members_of_different_data_are_refused_before_anything_is_written(members, tmp_path):
    first = write_member(tmp_path / "a", members[0])
    second = write_member(tmp_path / "b", members[1], seed=3)  # other validation and test writers
    with pytest.raises(ValueError, match=r"differ in \['seed'\]"):
        ensemble.make_run(tmp_path / "ensemble", [first, second])
    assert not (tmp_path / "ensemble").exists()
    with pytest.raises(ValueError, match="not a trained run"):
        ensemble.make_run(tmp_path / "ensemble", [first, tmp_path / "missing"])


def test_an_ensemble_run_is_measured_then_shipped_like_any_run(mnist_dir, mnist, tmp_path):
    """make_run: the ensemble and each member measured on the members' data, their histories kept; ship: every
    member folded, the light export answering as the folded Keras model does."""
    keras.utils.set_random_seed(4)
    config = {"seed": 0, "validation_size": 500, "pen_digits": 0, "not_a_digit": 0, "data_dir": str(mnist_dir)}
    member_dirs = []
    for index in range(2):
        member = with_trained_batch_norm_statistics(build("glyphnet-small"), seed=10 + index)
        run_dir = write_member(tmp_path / f"member-{index}", member, **config)
        (run_dir / "history.csv").write_text(f"epoch,loss\n0,{index + 1.5}\n1,{index + 0.5}\n")
        member_dirs.append(run_dir)
    metrics = ensemble.make_run(tmp_path / "ensemble", member_dirs)

    _, (x_test, y_test) = mnist
    images = x_test.astype(np.float32)[..., None] / 255.0
    members = [keras.models.load_model(d / "model.keras", compile=False) for d in member_dirs]
    average = np.mean([m.predict(images, batch_size=1000, verbose=0) for m in members], axis=0)
    assert metrics["test_accuracy"] == pytest.approx((average.argmax(1) == y_test).mean(), abs=1e-4)
    assert [record["run"] for record in metrics["members"]] == [str(d) for d in member_dirs]
    history = (tmp_path / "ensemble" / "history.csv").read_text().splitlines()
    assert history[0] == "member,epoch,loss" and len(history) == 5
    with pytest.raises(ValueError, match="already holds a finished run"):
        ensemble.make_run(tmp_path / "ensemble", member_dirs)

    shipped = ship(tmp_path / "ensemble", out=tmp_path / "models", data_dir=mnist_dir)
    assert [record["run"] for record in shipped["members"]] == [str(d) for d in member_dirs]
    folded = keras.models.load_model(tmp_path / "models" / "model.keras", compile=False)
    assert len(ensemble.members_of(folded)) == 2 and is_float16_exact(folded)
    light = Recognizer.load(tmp_path / "models" / "model.keras").predict_mnist(x_test[:300])
    assert np.abs(light - folded.predict_on_batch(images[:300])).max() < 1e-5
