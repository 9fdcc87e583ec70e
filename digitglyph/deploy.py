"""Make a trained model the one model both runtimes compute with, and ship it to ``models/``.

A trained run's model has BatchNormalization layers and float32 weights.  The TF.js
converter folds each batch norm into the convolution before it and the page stores
weights as float16, so the browser would compute with *different numbers* than
Python (measured: probabilities up to 6e-4 apart).  :func:`deployable` does both steps
once, in Python, and the shipped model *is* the result:

1. fold every BatchNormalization into the Conv2D/Dense right before it
   (``w' = w * gamma / sqrt(var + eps)``, ``b' = beta + (b - mean) * gamma / sqrt(var + eps)``);
2. drop Dropout layers (identity at inference);
3. round every weight to the nearest float16 value (kept in float32);

and writes the light export beside it (``model.tflite``, :mod:`digitglyph.runtime`), which is what the
apps run.

Float16 storage of such a model is lossless, so TF.js and Keras evaluate the same
function and differ only by float32 summation order (about 1e-6).  The rounding moves
the model's own probabilities by well under 1e-3; :func:`ship` measures the shipped
model itself, so its ``metrics.json`` describes exactly what the apps run.

    digitglyph ship RUN_DIR [--out models]
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from .files import write_json_atomic
from .paths import MODELS
from .runtime import export_light

ROUNDED_DTYPE = np.float16


class DeployError(ValueError):
    """The model cannot be turned into a deployable (folded, float16-exact) model."""


def deployable(model):
    """A new Keras model computing ``model``'s inference function with BN folded and float16-exact weights
    (an ensemble: each member so, averaged as before)."""
    import keras

    from . import ensemble

    members = ensemble.members_of(model)
    if members:
        return ensemble.build([deployable(member) for member in members], name=f"{model.name}_deployable")
    layers = _chain(model)
    inputs = keras.Input(shape=model.input_shape[1:], name=model.inputs[0].name.split(":")[0])
    x = inputs
    index = 0
    while index < len(layers):
        layer = layers[index]
        following = layers[index + 1] if index + 1 < len(layers) else None
        if isinstance(layer, keras.layers.Dropout):
            index += 1
            continue
        if isinstance(layer, keras.layers.BatchNormalization):
            raise DeployError(
                f"BatchNormalization {layer.name!r} does not directly follow a Conv2D or Dense "
                "layer without activation, so it cannot be folded"
            )
        config = layer.get_config()
        weights = layer.get_weights()
        if isinstance(following, keras.layers.BatchNormalization) and _foldable(layer):
            weights = _fold(layer, following)
            config["use_bias"] = True
            index += 1  # the batch norm is now part of this layer
        clone = layer.__class__.from_config(config)
        x = clone(x)
        clone.set_weights([round_float16(w) for w in weights])
        index += 1
    return keras.Model(inputs, x, name=f"{model.name}_deployable")


def round_float16(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values)
    if not np.issubdtype(values.dtype, np.floating):
        return values
    rounded = values.astype(ROUNDED_DTYPE)
    if not np.isfinite(rounded).all():
        raise DeployError("a weight is too large for float16 (|w| > 65504)")
    return rounded.astype(np.float32)


def is_float16_exact(model) -> bool:
    """True when storing ``model``'s weights as float16 loses nothing and TF.js has nothing to fold."""
    import keras

    if any(isinstance(layer, keras.layers.BatchNormalization) for layer in _layers_within(model)):
        return False
    return all(np.array_equal(w, round_float16(w)) for w in model.get_weights())


def ship(run_dir, out=None, data_dir=None) -> dict:
    """Make ``run_dir``'s selected model deployable, measure it, and write it with its metrics to ``out``."""
    import keras

    from .data.sources import evaluation_data
    from .evaluate import measure

    run_dir, out = Path(run_dir), Path(out) if out else MODELS
    run_metrics_path = run_dir / "metrics.json"
    if not run_metrics_path.is_file():
        raise DeployError(f"{run_dir} holds no finished run (no metrics.json); finish it with `digitglyph train` first")
    run_metrics = json.loads(run_metrics_path.read_text())
    trained = keras.models.load_model(run_dir / "model.keras", compile=False)
    model = deployable(trained)
    parameters = run_metrics["parameters"]
    # the run's data directories if they are still there, else $DIGITGLYPH_DATA / $DIGITGLYPH_PEN_DATA or the cache
    here = {
        key: parameters[key]
        for key in ("data_dir", "pen_dir")
        if parameters.get(key) and Path(parameters[key]).is_dir()
    }
    metrics = measure(model, *evaluation_data(parameters, data_dir or here.get("data_dir"), here.get("pen_dir")))
    metrics.update(
        {
            **{
                k: run_metrics[k]
                for k in (
                    "epochs_trained",
                    "wall_time_s",
                    "parameters",
                    "members",
                    "package_version",
                    "git_commit",
                    "train_size",
                )
                if k in run_metrics
            },
            "parameter_count": int(model.count_params()),
            "trained_parameter_count": run_metrics.get("parameter_count"),
            "deployment": {
                "source_run": str(run_dir),
                "folded_batch_norms": sum(
                    isinstance(layer, keras.layers.BatchNormalization) for layer in _layers_within(trained)
                ),
                "weights": "float16-exact (float32 storage)",
                "run_test_accuracy": run_metrics["test_accuracy"],
                "run_validation_accuracy": run_metrics.get("validation_accuracy"),
            },
        }
    )
    out.mkdir(parents=True, exist_ok=True)
    staging = out / ".model.keras.partial.keras"
    model.save(staging)
    export_light(staging, out / "model.tflite")  # first: the pair is current the moment model.keras appears
    staging.replace(out / "model.keras")
    if (run_dir / "history.csv").is_file():
        shutil.copyfile(run_dir / "history.csv", out / "history.csv")
    write_json_atomic(out / "metrics.json", metrics)
    return metrics


def _chain(model) -> list:
    """The layers of a model that is one straight chain (every registry model is), input layer excluded."""
    import keras

    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    previous = model.inputs[0]
    for layer in layers:
        inbound = layer._inbound_nodes
        if len(inbound) != 1 or len(inbound[0].input_tensors) != 1 or inbound[0].input_tensors[0] is not previous:
            raise DeployError(
                f"{model.name} is not a single chain of layers (at {layer.name!r}); deployable() folds chains only"
            )
        previous = layer.output
    return layers


def _layers_within(model):
    """Every layer of ``model``, those inside its member models too."""
    import keras

    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _layers_within(layer)


def _foldable(layer) -> bool:
    import keras

    return isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)) and layer.get_config().get("activation") in (
        "linear",
        None,
    )


def _fold(layer, batch_norm) -> list[np.ndarray]:
    weights = layer.get_weights()
    kernel = weights[0].astype(np.float64)
    bias = weights[1].astype(np.float64) if layer.use_bias else np.zeros(kernel.shape[-1])
    values = dict(zip([w.path.split("/")[-1] for w in batch_norm.weights], batch_norm.get_weights(), strict=True))
    gamma = values.get("gamma", np.ones_like(values["moving_mean"])).astype(np.float64)
    beta = values.get("beta", np.zeros_like(values["moving_mean"])).astype(np.float64)
    scale = gamma / np.sqrt(values["moving_variance"].astype(np.float64) + batch_norm.epsilon)
    folded_bias = beta + (bias - values["moving_mean"]) * scale
    return [(kernel * scale).astype(np.float32), folded_bias.astype(np.float32)]


def main(args) -> int:
    metrics = ship(args.run_dir, args.out, args.data_dir)
    deployment = metrics["deployment"]
    print(
        f"shipped {args.run_dir} -> {args.out or MODELS}/model.keras: MNIST test {metrics['test_accuracy']:.4%} "
        f"(the run's own model: {deployment['run_test_accuracy']:.4%}), validation "
        f"{metrics['validation_accuracy']:.4%}, {metrics['parameter_count']:,} parameters, "
        f"{deployment['folded_batch_norms']} batch norms folded, float16-exact weights"
    )
    return 0
