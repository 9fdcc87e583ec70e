"""A training run: split, augment, fit, checkpoint, resume, and a run directory.

A run directory holds everything a run made::

    config.json     every parameter of the run
    backup/         Keras BackupAndRestore state (removed when the run completes)
    best.keras      the checkpoint with the best *validation* accuracy so far
    history.csv     one row per epoch (loss, accuracy, val_*, lr, seconds)
    model.keras     the selected model: by ``selection``, the best validation epoch
                    (``"best_validation"``) or the end of the schedule (``"final"``)
    metrics.json    test metrics, written last and atomically: its presence means "done"

Running :func:`train` again on the same directory resumes an interrupted run from
its last finished epoch, and returns the stored metrics of a finished one.
The test set is only touched after training, to report (or, with
``report_test_each_epoch``, to print a learning curve for benchmarks); it never
drives early stopping, checkpoint choice or any other decision.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from .augment import NO_AUGMENTATION, AugmentConfig
from .files import write_json_atomic

OPTIMIZERS = ("adamw", "adam")
SCHEDULES = ("onecycle", "constant")
SELECTIONS = ("best_validation", "final")


@dataclass
class TrainConfig:
    architecture: str = "glyphnet"
    epochs: int = 30
    batch_size: int = 128
    learning_rate: float = 3e-3
    schedule: str = "onecycle"
    optimizer: str = "adamw"
    weight_decay: float = 0.01
    label_smoothing: float = 0.0
    augment: bool = True
    augmentation: dict = field(default_factory=lambda: AugmentConfig().as_dict())
    validation_size: int = 5000
    train_subset: int | None = None
    seed: int = 0
    data_dir: str | None = None
    corrections_db: str | None = None
    corrections_weight: int = 5
    redrawn_digits: int = 0
    pen_digits: int = 0
    not_a_digit: int = 0
    not_a_digit_emphasis: float = 0.0
    hard_negative_model: str | None = None
    pen_variants: int = 4
    pen_dir: str | None = None
    initial_model: str | None = None
    time_budget_s: float | None = None
    selection: str = "best_validation"
    threads: int | None = None
    report_test_each_epoch: bool = False

    def __post_init__(self):
        from .models import ARCHITECTURES

        problems = []
        if self.architecture not in ARCHITECTURES:
            problems.append(f"architecture={self.architecture!r} is unknown (choose one of {sorted(ARCHITECTURES)})")
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                problems.append(f"{name}={value!r} must be a positive integer")
        if not (isinstance(self.learning_rate, (int, float)) and 0 < self.learning_rate < 1):
            problems.append(f"learning_rate={self.learning_rate!r} must be between 0 and 1")
        if self.schedule not in SCHEDULES:
            problems.append(f"schedule={self.schedule!r} must be one of {SCHEDULES}")
        if self.selection not in SELECTIONS:
            problems.append(f"selection={self.selection!r} must be one of {SELECTIONS}")
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"optimizer={self.optimizer!r} must be one of {OPTIMIZERS}")
        if self.train_subset is not None and (
            not isinstance(self.train_subset, (int, np.integer)) or self.train_subset < 100
        ):
            problems.append(f"train_subset={self.train_subset!r} must be empty (all) or an integer of at least 100")
        if not isinstance(self.validation_size, (int, np.integer)) or self.validation_size < 10:
            problems.append(f"validation_size={self.validation_size!r} must be an integer of at least 10")
        if self.data_dir is not None and not Path(self.data_dir).expanduser().is_dir():
            problems.append(f"data_dir={self.data_dir!r} is not a directory")
        if self.corrections_db is not None and not Path(self.corrections_db).expanduser().is_file():
            problems.append(f"corrections_db={self.corrections_db!r} does not exist")
        if not isinstance(self.redrawn_digits, (int, np.integer)) or self.redrawn_digits < 0:
            problems.append(f"redrawn_digits={self.redrawn_digits!r} must be a non-negative integer")
        for name in ("pen_digits", "not_a_digit"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
                problems.append(f"{name}={value!r} must be a non-negative integer")
        emphasis = self.not_a_digit_emphasis
        if isinstance(emphasis, bool) or not isinstance(emphasis, (int, float)) or not 0 <= emphasis <= 1:
            problems.append(f"not_a_digit_emphasis={emphasis!r} must be a number from 0 to 1")
        elif emphasis and not self.not_a_digit:
            problems.append("not_a_digit_emphasis needs not_a_digit examples (not_a_digit > 0)")
        elif emphasis and not (self.hard_negative_model or self.initial_model):
            problems.append(
                "not_a_digit_emphasis needs a model to find the hard non-digits with: "
                "hard_negative_model or initial_model"
            )
        if self.hard_negative_model is not None and not Path(self.hard_negative_model).expanduser().is_file():
            problems.append(f"hard_negative_model={self.hard_negative_model!r} does not exist")
        if not isinstance(self.pen_variants, (int, np.integer)) or not 1 <= self.pen_variants <= 16:
            problems.append(f"pen_variants={self.pen_variants!r} must be an integer from 1 to 16")
        if self.pen_dir is not None and not Path(self.pen_dir).expanduser().is_dir():
            problems.append(f"pen_dir={self.pen_dir!r} is not a directory")
        if self.initial_model is not None and not Path(self.initial_model).expanduser().is_file():
            problems.append(f"initial_model={self.initial_model!r} does not exist")
        if self.time_budget_s is not None and self.time_budget_s <= 0:
            problems.append(f"time_budget_s={self.time_budget_s!r} must be positive")
        try:  # stored complete, so a run records every augmentation setting it used
            self.augmentation = AugmentConfig(**self.augmentation).as_dict()
        except (TypeError, ValueError) as error:
            problems.append(f"augmentation={self.augmentation!r} is not valid ({error})")
        if problems:
            raise ValueError("bad training parameter: " + "; ".join(problems))

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"bad training parameter: unknown name(s) {sorted(unknown)}; known: {sorted(known)}")
        return cls(**values)

    @property
    def augment_config(self) -> AugmentConfig:
        return AugmentConfig(**self.augmentation) if self.augment else NO_AUGMENTATION


def git_commit() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).parent
        )
        return result.stdout.strip() if result.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def configure_threads(threads: int | None) -> None:
    if threads:
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:  # already initialised in this process
            pass


def _dataset(data, config: TrainConfig, training: bool):
    """Batches for ``fit``.

    Training (``data`` a :class:`~digitglyph.data.sources.RunData`): every epoch shuffles the examples and
    shows each one a variant drawn at random from its candidates (a pen character's renderings, a slot's
    non-digits), then augments the batch.  Evaluation (``data`` an ``(images, labels)`` pair): as it is.

    tf.data's autotuning is switched off (fixed parallelism and prefetch instead).  With it on, the
    end of every epoch destroys an iterator whose autotuning thread may be asleep for up to a minute
    (seen here: the whole process idle for 30-40 s in about a third of the epochs, py-spy showing the
    iterator's destructor waiting on that thread), which cost a time-budgeted run one epoch in four.
    """
    import tensorflow as tf

    from .augment import augment_batch
    from .preprocess import network_input

    parallel = max(1, config.threads or os.cpu_count() or 1)
    if training:
        epochs = iter(range(1 << 30))
        batch = config.batch_size

        def batches():  # called once per epoch
            order, chosen = epoch_draw(data.candidates, np.random.default_rng([config.seed, next(epochs)]))
            for start in range(0, data.train_size, batch):
                yield network_input(data.pool[chosen[start : start + batch]]), data.labels[order[start : start + batch]]

        dataset = tf.data.Dataset.from_generator(
            batches, output_signature=(tf.TensorSpec([None, 28, 28, 1], tf.float32), tf.TensorSpec([None], tf.int64))
        )
        if config.augment:
            augment = config.augment_config
            dataset = dataset.map(lambda x, y: (augment_batch(x, augment), y), num_parallel_calls=parallel)
    else:
        images, labels = data
        dataset = tf.data.Dataset.from_tensor_slices((network_input(images), labels)).batch(config.batch_size)
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.prefetch(2).with_options(options)


WARMUP_FRACTION = 0.15
FINAL_FRACTION = 0.002  # the schedule ends at this fraction of the peak learning rate


def one_cycle(progress: float, peak: float) -> float:
    """The one-cycle learning rate at ``progress`` (0 to 1) of a run: linear warm-up from peak/20 over
    the first 15 %, then cosine decay to 0.002 x peak (the same curve as the step-based schedule)."""
    progress = min(max(progress, 0.0), 1.0)
    if progress < WARMUP_FRACTION:
        return peak / 20 + (peak - peak / 20) * progress / WARMUP_FRACTION
    decay = (progress - WARMUP_FRACTION) / (1 - WARMUP_FRACTION)
    return peak * (FINAL_FRACTION + (1 - FINAL_FRACTION) * 0.5 * (1 + np.cos(np.pi * decay)))


def learning_rate_schedule(config: TrainConfig, steps_per_epoch: int):
    """What the optimizer gets: a Keras step schedule (one-cycle over ``epochs``), or a float (constant, or
    the start of a one-cycle that runs on the clock of ``time_budget_s``, set batch by batch)."""
    import keras

    total = config.epochs * steps_per_epoch
    if config.schedule == "onecycle" and config.time_budget_s:
        return one_cycle(0.0, config.learning_rate)
    if config.schedule == "onecycle":
        warmup = max(1, int(WARMUP_FRACTION * total))
        return keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=config.learning_rate / 20,
            decay_steps=total - warmup,
            alpha=FINAL_FRACTION,
            warmup_target=config.learning_rate,
            warmup_steps=warmup,
        )
    return config.learning_rate


def _optimizer(config: TrainConfig, steps_per_epoch: int):
    return optimizer(config, learning_rate_schedule(config, steps_per_epoch))


def optimizer(config: TrainConfig, learning_rate):
    """``config.optimizer`` (AdamW with ``config.weight_decay``, or Adam) at ``learning_rate``."""
    import keras

    if config.optimizer == "adamw":
        return keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=config.weight_decay)
    return keras.optimizers.Adam(learning_rate=learning_rate)


def epoch_draw(candidates: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    """One epoch's examples: their shuffled ``order`` and, for each, the pool image ``chosen`` among its candidates
    (a pen character's renderings, a not-a-digit slot's characters), both drawn from ``rng``."""
    order = rng.permutation(len(candidates))
    return order, candidates[order, rng.integers(0, candidates.shape[1], len(candidates))]


class RunClock:
    """A run's training seconds so far, over all resumed sessions (stored in ``wall.json``).

    Time spent on report-only work (the benchmarks' per-epoch test accuracy) is left out with
    :meth:`excluding`, so a time budget buys the same training whether or not a run reports.
    """

    def __init__(self, run_dir: Path):
        self.state = run_dir / "wall.json"
        previous = json.loads(self.state.read_text())["seconds"] if self.state.exists() else 0.0
        self.started = time.perf_counter() - previous  # as if all earlier sessions ran just before

    def __call__(self) -> float:
        return time.perf_counter() - self.started

    @contextmanager
    def excluding(self):
        begin = time.perf_counter()
        try:
            yield
        finally:
            self.started += time.perf_counter() - begin

    def save(self) -> None:
        write_json_atomic(self.state, {"seconds": self()})


def _callbacks(config: TrainConfig, run_dir: Path, test_data, wall: RunClock):
    import keras

    from .evaluate import probabilities
    from .preprocess import network_input

    class EpochClock(keras.callbacks.Callback):
        """Elapsed seconds (over all resumed sessions), learning rate, optional test accuracy, time budget.

        The budget is a wall-clock limit on the whole run (report-only test accuracy left out): training
        stops after the batch where it is spent, and the weights of that moment are the run's
        "final" model.  With a budget, the one-cycle schedule runs on the clock instead of on
        steps (:func:`one_cycle` of the budget fraction used), so it anneals to ~0 exactly when
        the time is up, however fast the machine is that day.
        """

        timed_schedule = bool(config.time_budget_s) and config.schedule == "onecycle"

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_begin(self, batch, logs=None):
            if self.timed_schedule:
                self.model.optimizer.learning_rate = one_cycle(wall() / config.time_budget_s, config.learning_rate)

        def on_train_batch_end(self, batch, logs=None):
            if config.time_budget_s and wall() >= config.time_budget_s:
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            logs["epoch_seconds"] = time.perf_counter() - self.start
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            if config.report_test_each_epoch:
                with wall.excluding():
                    predictions = probabilities(self.model, network_input(test_data.images))
                logs["test_accuracy_report_only"] = float(np.mean(predictions[:, :10].argmax(1) == test_data.labels))
            logs["wall_seconds"] = wall()
            if config.time_budget_s and logs["wall_seconds"] >= config.time_budget_s:
                self.model.stop_training = True

    checkpoint = keras.callbacks.ModelCheckpoint(
        run_dir / "best.keras", monitor="val_accuracy", mode="max", save_best_only=True
    )
    earlier = [row["val_accuracy"] for row in read_history(run_dir) if "val_accuracy" in row]
    if earlier:  # resuming: do not let a worse epoch overwrite the best checkpoint
        checkpoint.best = max(earlier)
    callbacks = [
        EpochClock(),
        checkpoint,
        keras.callbacks.BackupAndRestore(str(run_dir / "backup")),
        keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=True),
    ]
    try:
        from tqdm.keras import TqdmCallback

        callbacks.append(TqdmCallback(verbose=0, desc=config.architecture))
    except ImportError:
        pass
    return callbacks


def read_history(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / "history.csv"
    if not path.exists():
        return []
    with open(path) as handle:
        rows = [
            {k: float(v) if k != "epoch" else int(v) for k, v in row.items() if v != ""}
            for row in csv.DictReader(handle)
        ]
    # a resumed run may have re-logged an epoch: keep the last record of each
    return list({row["epoch"]: row for row in rows}.values())


def train(config: TrainConfig | dict, run_dir: str | os.PathLike, callbacks=()) -> dict:
    """Train (or resume, or return the finished result of) one run in ``run_dir``.

    ``callbacks`` are extra Keras callbacks (live plots in a notebook, say), run after the built-in ones.
    """
    if isinstance(config, dict):
        config = TrainConfig.from_dict(config)
    run_dir = Path(run_dir)
    metrics_path = run_dir / "metrics.json"
    if metrics_path.exists():
        metrics = json.loads(metrics_path.read_text())
        _check_same_run(metrics.get("parameters", {}), config, run_dir, "a finished run")
        return metrics
    run_dir.mkdir(parents=True, exist_ok=True)
    stored = run_dir / "config.json"
    if stored.exists() and (run_dir / "backup").exists():
        _check_same_run(json.loads(stored.read_text()), config, run_dir, "an interrupted run")
    write_json_atomic(stored, asdict(config))

    configure_threads(config.threads)
    import keras

    from .data.sources import run_data
    from .evaluate import measure
    from .models import build

    keras.utils.set_random_seed(config.seed)
    data = run_data(config)
    classes = data.classes
    train_data = _dataset(data, config, training=True)
    steps = int(np.ceil(data.train_size / config.batch_size))
    model = build(config.architecture, classes)
    if config.initial_model:  # fine-tuning: start from trained weights (a new output layer if the classes differ)
        _load_initial_weights(model, config.initial_model)
    loss = (
        keras.losses.SparseCategoricalCrossentropy()
        if not config.label_smoothing
        else keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing)
    )
    mnist_validation = data.validation["mnist"]
    y_val_fit = mnist_validation.labels
    if config.label_smoothing:
        train_data = train_data.map(lambda x, y: (x, _one_hot(y, classes)))
        y_val_fit = keras.utils.to_categorical(y_val_fit, classes)
    model.compile(optimizer=_optimizer(config, steps), loss=loss, metrics=["accuracy"])

    wall = RunClock(run_dir)
    try:
        model.fit(
            train_data,
            epochs=config.epochs,  # no steps_per_epoch: Keras would not restart the data
            validation_data=_dataset((mnist_validation.images, y_val_fit), config, training=False),
            callbacks=_callbacks(config, run_dir, data.test["mnist"], wall) + list(callbacks),
            verbose=0,
        )
    finally:
        wall.save()
    wall_time = wall()

    best = run_dir / "best.keras"
    if config.selection == "best_validation" and best.exists():
        selected = keras.models.load_model(best, compile=False)
    else:  # "final": the weights at the end of the schedule (or of the time budget)
        selected = model
    selected.save(run_dir / "model.keras")
    history = read_history(run_dir)
    metrics = measure(selected, data.validation, data.test)
    metrics.update(
        {
            "epochs_trained": len(history),
            "wall_time_s": wall_time,
            "parameter_count": int(selected.count_params()),
            "parameters": asdict(config),
            "package_version": _version(),
            "git_commit": git_commit(),
            "train_size": int(data.train_size),
        }
    )
    write_json_atomic(metrics_path, metrics)
    shutil.rmtree(run_dir / "backup", ignore_errors=True)
    return metrics


def _load_initial_weights(model, path) -> None:
    """Every layer's weights from ``path``; a final layer of another width (10 -> 11 outputs) keeps its new
    initialisation for the added outputs and takes the trained ones for the others."""
    import keras

    initial = keras.models.load_model(path, compile=False)
    if len(model.layers) != len(initial.layers):
        raise ValueError(
            f"initial_model={path} has {len(initial.layers)} layers, this architecture {len(model.layers)}"
        )
    for layer, trained in zip(model.layers, initial.layers, strict=True):
        new, old = layer.get_weights(), trained.get_weights()
        if [w.shape for w in new] == [w.shape for w in old]:
            layer.set_weights(old)
        elif len(new) == len(old) == 2 and new[0].shape[:-1] == old[0].shape[:-1]:
            width = old[0].shape[-1]
            new[0][..., :width], new[1][:width] = old[0], old[1]
            layer.set_weights(new)
        else:
            raise ValueError(
                f"initial_model={path}: layer {layer.name!r} has weights {[w.shape for w in old]}, "
                f"this architecture needs {[w.shape for w in new]}"
            )


# Settings that do not change what a run computes: a run may be resumed or reused with other values.
NOT_IDENTITY = ("threads", "data_dir", "pen_dir", "report_test_each_epoch")


def _check_same_run(previous: dict, config: TrainConfig, run_dir: Path, what: str) -> None:
    current = asdict(config)
    defaults = asdict(TrainConfig())  # a run written before a field existed used its default
    previous = {**defaults, **previous}
    for name, default in defaults.items():  # likewise inside dict fields (augmentation's elastic_* came later)
        if isinstance(default, dict) and isinstance(previous[name], dict):
            previous[name] = {**default, **previous[name]}
    differing = sorted(
        k for k in set(previous) | set(current) if k not in NOT_IDENTITY and previous.get(k) != current.get(k)
    )
    if differing:
        raise ValueError(
            f"{run_dir} holds {what} with different parameters ({', '.join(differing)}); "
            "use another run directory or delete this one"
        )


def _one_hot(labels, classes: int):
    import tensorflow as tf

    return tf.one_hot(labels, classes)


def _version() -> str:
    from . import __version__

    return __version__
