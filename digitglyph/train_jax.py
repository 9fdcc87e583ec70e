"""Train one run on an accelerator: Keras on JAX, where TensorFlow is not installed (a lent GPU machine).

The same run as :func:`digitglyph.train.train` computes, moved to where it is fast:

1. **Data, here.**  :func:`save_run_data` writes a recipe's training examples (``data.sources.run_data``: the
   pool of images, each example's candidates, the labels) and MNIST's validation split to one ``.npz``, which
   travels to the accelerator with the code.
2. **Training, there.**  :func:`train_jax` shows each example one of its candidates every epoch (as
   ``train._dataset`` does), augments inside the training step with ``augment.augment_batch_ops`` (the
   TensorFlow augmentation's spec in ``keras.ops``), and follows the one-cycle learning rate on the clock of
   ``time_budget_s``, set at each epoch's start.  ``training_seed`` seeds the weights, the draws and the
   augmentation, so members of an ensemble differ while their data (``seed``: the writers' splits) stay
   the same.
3. **Measuring, here again.**  The run directory holds ``config.json``, ``training.json`` (seed, backend,
   device, epochs, seconds), ``history.csv`` and ``model.keras``; ``digitglyph ensemble`` (or ``ship`` through
   it) measures it on the evaluation sets, which need the pen data.

    digitglyph train-jax --save-data run-data.npz --recipe ship-member     # here
    KERAS_BACKEND=jax digitglyph train-jax runs/member-11 --data run-data.npz --recipe ship-member \\
        --training-seed 11                                                       # on the accelerator

Not supported here (a ValueError): resuming (an interrupted run's directory is refused, its history kept),
fine-tuning (``initial_model``), label smoothing, and the elastic distortion; a finished run directory is never
overwritten.
"""

from __future__ import annotations

import csv
import json
import os
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .files import write_json_atomic
from .train import TrainConfig, epoch_draw, one_cycle, optimizer

STEPS_PER_EXECUTION = 32  # training steps per compiled call: fewer round trips to the device
NOT_SUPPORTED = {"initial_model": None, "label_smoothing": 0.0}


def save_run_data(config: TrainConfig, path) -> dict:
    """Write what :func:`train_jax` trains on to ``path`` (a compressed ``.npz``); returns its sizes."""
    from .data.sources import run_data
    from .preprocess import network_input

    data = run_data(config)
    validation = data.validation["mnist"]
    np.savez_compressed(
        path,
        pool=data.pool,
        candidates=data.candidates,
        labels=data.labels,
        classes=np.array(data.classes),
        validation_images=network_input(validation.images),
        validation_labels=validation.labels,
    )
    return {"examples": int(data.train_size), "pool": int(len(data.pool)), "classes": int(data.classes)}


def _check_supported(config: TrainConfig) -> None:
    problems = [
        f"{name}={getattr(config, name)!r}" for name, value in NOT_SUPPORTED.items() if getattr(config, name) != value
    ]
    if config.augment and config.augmentation.get("elastic_pixels", 0) > 0:
        problems.append("augmentation.elastic_pixels > 0")
    if problems:
        raise ValueError(f"train-jax does not support {', '.join(problems)}; use `digitglyph train`")


def _augmenting_trainer(model, config: TrainConfig, training_seed: int):
    """``model`` behind a layer that augments each batch while training (and passes images through otherwise)."""
    import keras

    from .augment import NO_AUGMENTATION, augment_batch_ops

    augment = config.augment_config

    class Augmentation(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.seed_generator = keras.random.SeedGenerator(training_seed)

        def call(self, images, training=False):
            if not training or augment == NO_AUGMENTATION:
                return images
            return augment_batch_ops(images, augment, self.seed_generator)

    return keras.Sequential([keras.Input(model.input_shape[1:]), Augmentation(), model], name="trainer")


def train_jax(config: TrainConfig | dict, run_dir, data_path, training_seed: int = 0, progress: bool = True) -> dict:
    """Train ``config`` on the examples in ``data_path`` (:func:`save_run_data`) into ``run_dir``; returns
    ``training.json``'s record.  Runs on whatever Keras backend is active (JAX on an accelerator)."""
    import keras

    from .models import build
    from .preprocess import network_input

    if isinstance(config, dict):
        config = TrainConfig.from_dict(config)
    _check_supported(config)
    run_dir = Path(run_dir)
    if (run_dir / "model.keras").exists():
        raise ValueError(f"{run_dir} already holds a trained model; choose a new run directory")
    if (run_dir / "history.csv").exists():  # its epochs are kept: a new run would mix its rows with them
        raise ValueError(
            f"{run_dir} holds an interrupted run (history.csv, no model.keras) and train-jax does not resume; "
            "choose a new run directory"
        )
    data = np.load(data_path)
    pool, candidates, labels = data["pool"], data["candidates"], data["labels"]
    classes = int(data["classes"])
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(run_dir / "config.json", asdict(config))

    keras.utils.set_random_seed(training_seed)
    model = build(config.architecture, classes)
    trainer = _augmenting_trainer(model, config, training_seed)
    peak = config.learning_rate
    trainer.compile(
        optimizer=optimizer(config, one_cycle(0.0, peak) if config.schedule == "onecycle" else peak),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=["accuracy"],
        steps_per_execution=STEPS_PER_EXECUTION,
    )
    validation = (data["validation_images"], data["validation_labels"])
    history_path = run_dir / "history.csv"
    started = time.perf_counter()
    trained = 0
    epochs = _epoch_bar(config.epochs, progress)
    for epoch in epochs:
        elapsed = time.perf_counter() - started
        if config.time_budget_s and elapsed >= config.time_budget_s:
            break
        fraction = elapsed / config.time_budget_s if config.time_budget_s else epoch / config.epochs
        learning_rate = one_cycle(fraction, peak) if config.schedule == "onecycle" else peak
        trainer.optimizer.learning_rate.assign(learning_rate)
        order, chosen = epoch_draw(candidates, np.random.default_rng([training_seed, epoch]))
        images = network_input(pool[chosen])
        epoch_start = time.perf_counter()
        fit = trainer.fit(
            images,
            labels[order],
            batch_size=config.batch_size,
            epochs=1,
            shuffle=False,
            validation_data=validation,
            verbose=0,
        )
        row = {
            "epoch": epoch,
            **{name: float(values[-1]) for name, values in fit.history.items()},
            "epoch_seconds": time.perf_counter() - epoch_start,
            "learning_rate": learning_rate,
            "wall_seconds": time.perf_counter() - started,
        }
        _append_row(history_path, row)
        trained += 1
        if progress:
            epochs.set_postfix(loss=f"{row['loss']:.4f}", val_accuracy=f"{row.get('val_accuracy', 0):.4f}")
    model.save(run_dir / "model.keras")
    record = {
        "trainer": "train_jax",
        "keras_backend": keras.backend.backend(),
        "devices": _devices(),
        "training_seed": training_seed,
        "epochs_trained": trained,
        "wall_time_s": time.perf_counter() - started,
        "data": str(data_path),
    }
    write_json_atomic(run_dir / "training.json", record)
    return record


def _epoch_bar(epochs: int, progress: bool):
    if not progress:
        return range(epochs)
    from tqdm import tqdm

    return tqdm(range(epochs), desc="epochs", unit="epoch")


def _append_row(path: Path, row: dict) -> None:
    new = not path.exists()
    with open(path, "a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)


def _devices() -> list[str]:
    try:
        import jax

        return [str(device) for device in jax.devices()]
    except ImportError:
        return [os.uname().machine]


def main(args) -> int:
    from .recipes import config as recipe_config

    values = json.loads(args.params) if args.params else {}
    config = recipe_config(args.recipe, **values)
    if args.save_data:
        sizes = save_run_data(config, args.save_data)
        print(f"wrote {args.save_data}: {sizes['examples']:,} examples an epoch from {sizes['pool']:,} images")
        return 0
    if not args.run_dir or not args.data:
        raise ValueError("give a run directory and --data FILE (written here by --save-data)")
    record = train_jax(config, args.run_dir, args.data, args.training_seed)
    print(json.dumps(record, indent=2))
    return 0
