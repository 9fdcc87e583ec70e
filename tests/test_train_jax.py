"""train_jax: a run trained with Keras on JAX, with no TensorFlow in the process, that the TensorFlow side loads."""

import csv
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from digitglyph.recipes import config as recipe_config
from digitglyph.train_jax import save_run_data, train_jax

SMALL = {"train_subset": 2000, "validation_size": 500, "epochs": 3, "batch_size": 64, "seed": 1}
# the accelerator has no TensorFlow: the child process makes importing it fail
WITHOUT_TENSORFLOW = "import sys; sys.modules['tensorflow'] = None; from digitglyph.cli import main; sys.exit(main())"


@pytest.fixture(scope="module")
def run_data_file(mnist_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("jax") / "run-data.npz"
    sizes = save_run_data(recipe_config(None, **SMALL, data_dir=str(mnist_dir)), path)
    assert sizes == {"examples": 2000, "pool": 2000, "classes": 10}
    return path


def train_in_a_process_without_tensorflow(run_dir, data_file, *extra):
    environment = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    command = [sys.executable, "-c", WITHOUT_TENSORFLOW, "train-jax", str(run_dir), "--data", str(data_file)]
    command += ["--params", json.dumps(SMALL), "--training-seed", "7", *extra]
    return subprocess.run(command, capture_output=True, text=True, env=environment, timeout=600)


def test_a_jax_run_learns_and_the_tensorflow_side_loads_it(run_data_file, tmp_path):
    run_dir = tmp_path / "member"
    result = train_in_a_process_without_tensorflow(run_dir, run_data_file)
    assert result.returncode == 0, result.stderr[-3000:]
    training = json.loads((run_dir / "training.json").read_text())
    assert training["keras_backend"] == "jax" and training["training_seed"] == 7
    assert training["epochs_trained"] == 3
    with open(run_dir / "history.csv") as handle:
        history = list(csv.DictReader(handle))
    assert [int(row["epoch"]) for row in history] == [0, 1, 2]
    assert float(history[-1]["loss"]) < float(history[0]["loss"])
    assert json.loads((run_dir / "config.json").read_text())["train_subset"] == 2000

    assert float(history[-1]["accuracy"]) > float(history[0]["accuracy"]) + 0.3  # it learns

    # the TensorFlow side computes the same function: its validation accuracy is the one JAX logged last
    model = keras.models.load_model(run_dir / "model.keras", compile=False)
    data = np.load(run_data_file)
    outputs = model.predict_on_batch(data["validation_images"])
    assert outputs.shape == (500, 10)
    accuracy = (outputs.argmax(1) == data["validation_labels"]).mean()
    assert accuracy == pytest.approx(float(history[-1]["val_accuracy"]), abs=0.005)

    again = train_in_a_process_without_tensorflow(run_dir, run_data_file)
    assert again.returncode == 2 and "already holds a trained model" in again.stderr


def test_what_train_jax_does_not_do_is_refused_by_name(run_data_file, tmp_path):
    for change, name in (
        ({"label_smoothing": 0.1}, "label_smoothing"),
        ({"augmentation": {"elastic_pixels": 2.0}}, "elastic"),
    ):
        with pytest.raises(ValueError, match=name):
            train_jax(recipe_config(None, **SMALL, **change), tmp_path / "refused", run_data_file)
    assert not (tmp_path / "refused").exists()


def test_an_interrupted_run_directory_is_refused_and_kept(run_data_file, tmp_path):
    run_dir = tmp_path / "interrupted"
    run_dir.mkdir()
    (run_dir / "history.csv").write_text("epoch,loss\n0,1.5\n")
    with pytest.raises(ValueError, match="interrupted run"):
        train_jax(recipe_config(None, **SMALL), run_dir, run_data_file)
    assert (run_dir / "history.csv").read_text() == "epoch,loss\n0,1.5\n"
