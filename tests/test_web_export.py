"""digitglyph.export without a browser: the build, its manifest, and loud failures on models TF.js cannot load."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from digitglyph.answers import AnswerRule
from digitglyph.export import (
    ExportError,
    build_site,
    check_graph_model,
    convert,
    run_in_tfjs,
    verify_model_json,
)

pytestmark = pytest.mark.node


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A small but real digit-shaped Keras 3 model (untrained), saved as .keras."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=(28, 28, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))
    path = tmp_path_factory.mktemp("tiny") / "tiny.keras"
    model.save(path)
    return path


@pytest.fixture(scope="module")
def tiny_site(tmp_path_factory, tiny_model):
    out = tmp_path_factory.mktemp("site") / "dist"
    return out, build_site(tiny_model, out, weights="float32")


def test_build_writes_the_whole_site_and_a_manifest(tiny_site):
    out, manifest = tiny_site
    for relative in (
        "index.html",
        "src/app.js",
        "src/sketch.js",
        "src/answers.js",
        "src/preprocess.js",
        "src/style.css",
        "model/model.json",
        "vendor/tf-core.es2017.min.js",
        "vendor/tf-backend-cpu.es2017.min.js",
        "vendor/tf-converter.es2017.min.js",
    ):
        assert (out / relative).is_file(), relative
    assert json.loads((out / "build.json").read_text()) == manifest
    assert manifest["model_version"].startswith("tiny-")
    assert manifest["weights"] == "float32" and manifest["check"]["max_abs_difference"] <= 1e-4
    built = {str(path.relative_to(out)) for path in out.rglob("*") if path.is_file()}
    assert set(manifest["files"]) == built - {"build.json"}
    assert manifest["answer_rule"] == AnswerRule().as_dict(), "no metrics.json beside the model: the defaults"
    assert manifest["outputs"] == 10
    model_json = verify_model_json(out / "model")
    assert model_json["format"] == "graph-model"


def _broken_copy(tiny_site, tmp_path, edit):
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_site[0] / "model", model_dir)
    model_json = json.loads((model_dir / "model.json").read_text())
    edit(model_json, model_dir)
    (model_dir / "model.json").write_text(json.dumps(model_json))
    return model_dir


def test_a_keras_layers_model_json_is_refused(tiny_site, tmp_path):
    model_dir = _broken_copy(tiny_site, tmp_path, lambda model_json, _: model_json.update(format="layers-model"))
    with pytest.raises(ExportError, match="graph-model"):
        verify_model_json(model_dir)


def test_an_op_tfjs_lacks_is_named(tiny_site, tmp_path):
    def add_op(model_json, _):
        model_json["modelTopology"]["node"][-1]["op"] = "NotARealTensorFlowOp"

    model_dir = _broken_copy(tiny_site, tmp_path, add_op)
    with pytest.raises(ExportError, match="NotARealTensorFlowOp"):
        verify_model_json(model_dir)
    with pytest.raises(ExportError, match="TF.js could not load or run"):
        run_in_tfjs(model_dir, np.zeros((1, 28, 28), np.uint8))  # the Node check fails on its own, too


def test_a_wrong_signature_is_refused(tiny_site, tmp_path):
    def widen(model_json, _):
        next(iter(model_json["signature"]["outputs"].values()))["tensorShape"]["dim"][1]["size"] = "26"

    with pytest.raises(ExportError, match=r"\(-1, 10\) output \(or \(-1, 11\)"):
        verify_model_json(_broken_copy(tiny_site, tmp_path, widen))


def test_truncated_weights_are_refused(tiny_site, tmp_path):
    def truncate(model_json, model_dir):
        shard = model_dir / model_json["weightsManifest"][0]["paths"][0]
        shard.write_bytes(shard.read_bytes()[:-8])

    with pytest.raises(ExportError, match="declares"):
        verify_model_json(_broken_copy(tiny_site, tmp_path, truncate))


def test_a_model_that_is_not_a_digit_model_is_refused(tmp_path):
    import keras

    inputs = keras.Input(shape=(32, 32, 3))
    model = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(inputs)))
    model.save(tmp_path / "cifar.keras")
    with pytest.raises(ValueError, match=r"\(None, 28, 28, 1\)"):
        build_site(tmp_path / "cifar.keras", tmp_path / "dist")


def test_build_refuses_to_replace_a_directory_it_did_not_build(tiny_model, tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(ExportError, match="not a DigitGlyph site"):
        build_site(tiny_model, tmp_path)
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_float16_needs_a_deployable_model(tiny_model, tmp_path):
    """float16 storage of unfolded float32 weights would make the page compute other numbers than Python."""
    with pytest.raises(ExportError, match="digitglyph ship"):
        build_site(tiny_model, tmp_path / "dist", weights="float16")
    assert not (tmp_path / "dist").exists()


def test_a_deployable_model_exports_float16_without_losing_agreement(tiny_model, tmp_path):
    import keras

    from digitglyph.deploy import deployable

    keras.utils.set_random_seed(1)
    inputs = keras.Input(shape=(28, 28, 1))
    x = keras.layers.Conv2D(6, 3, use_bias=False)(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Activation("relu")(x)
    x = keras.layers.Dropout(0.3)(keras.layers.Flatten()(x))
    trained_like = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))
    deployable(trained_like).save(tmp_path / "deployable.keras")
    manifest = build_site(tmp_path / "deployable.keras", tmp_path / "dist", weights="float16")
    assert manifest["weights"] == "float16" and manifest["check"]["max_abs_difference"] <= 1e-5
    float32_bytes = 4 * keras.models.load_model(tmp_path / "deployable.keras").count_params()
    # two bytes per weight (the converter keeps small constants such as biases inline in model.json)
    assert float32_bytes // 2 - 64 <= manifest["weights_bytes"] <= float32_bytes // 2 + 64


def test_build_rejects_unknown_weight_types(tiny_model, tmp_path):
    with pytest.raises(ExportError, match="float16"):
        build_site(tiny_model, tmp_path / "dist", weights="int8")


def _small_model(outputs: int, activation: str = "softmax"):
    import keras

    keras.utils.set_random_seed(2)
    inputs = keras.Input(shape=(28, 28, 1))
    x = keras.layers.Flatten()(keras.layers.Conv2D(3, 3, strides=2, activation="relu")(inputs))
    return keras.Model(inputs, keras.layers.Dense(outputs, activation=activation)(x))


def test_an_eleven_output_model_passes_the_tfjs_parity_check(tmp_path):
    """Ten digits and "not a digit": TF.js reproduces all eleven outputs."""
    model = _small_model(11)
    convert(model, tmp_path / "model", "float32")
    assert verify_model_json(tmp_path / "model")["format"] == "graph-model"
    check = check_graph_model(tmp_path / "model", model)
    assert check["outputs"] == 11 and check["max_abs_difference"] <= 1e-4
    outputs = run_in_tfjs(tmp_path / "model", np.zeros((2, 28, 28), np.uint8))
    assert outputs.shape == (2, 11) and np.allclose(outputs.sum(axis=1), 1, atol=1e-5)


def test_a_model_whose_outputs_are_not_probabilities_is_refused(tmp_path):
    model = _small_model(10, activation=None)  # logits
    convert(model, tmp_path / "model", "float32")
    with pytest.raises(ExportError, match="not probabilities"):
        check_graph_model(tmp_path / "model", model)


def test_the_build_carries_the_answer_rule_recorded_beside_the_model(tiny_model, tmp_path):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    shutil.copyfile(tiny_model, model_dir / "tiny.keras")
    rule = {"unsure_below": 0.5, "not_a_digit_at": 0.42}
    (model_dir / "metrics.json").write_text(json.dumps({"answer_rule": rule}))
    manifest = build_site(model_dir / "tiny.keras", tmp_path / "dist", weights="float32")
    assert manifest["answer_rule"] == rule
    assert json.loads((tmp_path / "dist" / "build.json").read_text())["answer_rule"] == rule
