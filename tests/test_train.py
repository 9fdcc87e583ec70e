"""Training runs on a small subset: every output written, resume after interruption, bad parameters."""

import json

import keras
import numpy as np
import pytest

from digitglyph.train import TrainConfig, read_history, train

TINY = dict(architecture="glyphnet-small", epochs=3, batch_size=64, train_subset=600, validation_size=300, seed=3)


@pytest.fixture
def tiny(mnist_dir):
    return dict(TINY, data_dir=str(mnist_dir))


def test_a_run_writes_every_output(tiny, tmp_path):
    metrics = train(tiny, tmp_path / "run")
    run = tmp_path / "run"
    for name in ("config.json", "history.csv", "model.keras", "best.keras", "metrics.json"):
        assert (run / name).is_file(), name
    assert not (run / "backup").exists()
    stored = json.loads((run / "metrics.json").read_text())
    assert stored == json.loads(json.dumps(metrics))
    for key in (
        "test_accuracy",
        "per_class_accuracy",
        "confusion_matrix",
        "validation_accuracy",
        "wall_time_s",
        "parameter_count",
        "parameters",
        "package_version",
        "git_commit",
    ):
        assert key in stored, key
    assert np.array(stored["confusion_matrix"]).sum() == 10000
    assert stored["parameters"]["architecture"] == "glyphnet-small"
    assert stored["epochs_trained"] == 3 and len(read_history(run)) == 3
    assert stored["test_accuracy"] > 0.5  # 600 images, 3 epochs: well above chance
    # the selected model is the best one by validation accuracy
    best_val = max(row["val_accuracy"] for row in read_history(run))
    assert abs(stored["validation_accuracy"] - best_val) < 0.01


def test_final_selection_keeps_the_weights_of_the_moment_the_budget_is_spent(tiny, tmp_path):
    # a 1 ms budget: training stops after the first batch, and that model is kept
    metrics = train(dict(tiny, selection="final", time_budget_s=0.001), tmp_path / "run")
    history = read_history(tmp_path / "run")
    assert metrics["epochs_trained"] == 1 and len(history) == 1
    assert metrics["parameters"]["selection"] == "final"
    assert abs(metrics["validation_accuracy"] - history[-1]["val_accuracy"]) < 1e-6


def test_one_cycle_on_the_clock_follows_the_step_schedule():
    from digitglyph.train import learning_rate_schedule, one_cycle

    config = TrainConfig(**dict(TINY, epochs=10, learning_rate=0.004))
    steps = learning_rate_schedule(config, steps_per_epoch=100)  # the Keras step-based schedule
    for progress in (0.0, 0.05, 0.15, 0.3, 0.6, 0.9, 1.0):
        assert one_cycle(progress, 0.004) == pytest.approx(float(steps(int(progress * 1000))), rel=1e-3, abs=1e-7)
    assert one_cycle(2.0, 0.004) == one_cycle(1.0, 0.004) == pytest.approx(0.004 * 0.002)


def test_a_budgeted_one_cycle_run_anneals_when_the_time_is_up(tiny, tmp_path):
    metrics = train(dict(tiny, epochs=1000, time_budget_s=8, selection="final"), tmp_path / "run")
    history = read_history(tmp_path / "run")
    assert 1 <= metrics["epochs_trained"] < 1000
    # it stops in the epoch that spends the budget: every earlier epoch ended before it, the last one after it
    assert history[-1]["wall_seconds"] >= 8
    assert all(row["wall_seconds"] < 8 for row in history[:-1])
    peak = max(row["learning_rate"] for row in history)
    assert history[-1]["learning_rate"] < 0.05 * tiny.get("learning_rate", 3e-3)
    assert peak > history[-1]["learning_rate"]


def test_the_run_clock_leaves_out_report_only_time_and_carries_over_sessions(tmp_path, monkeypatch):
    from digitglyph import train as train_module

    now = [100.0]
    monkeypatch.setattr(train_module.time, "perf_counter", lambda: now[0])
    clock = train_module.RunClock(tmp_path)
    now[0] += 5
    with clock.excluding():  # e.g. the benchmark's per-epoch test accuracy
        now[0] += 3
    now[0] += 2
    assert clock() == pytest.approx(7.0)
    with pytest.raises(RuntimeError), clock.excluding():  # time is left out even when the work fails
        now[0] += 4
        raise RuntimeError("report failed")
    assert clock() == pytest.approx(7.0)
    clock.save()
    now[0] = 1000.0  # a later session (a resumed run) goes on from the stored seconds
    resumed = train_module.RunClock(tmp_path)
    now[0] += 1
    assert resumed() == pytest.approx(8.0)


def test_batches_come_without_tf_data_autotuning_and_each_epoch_draws_new_variants():
    # Autotuning's background thread made the end of an epoch wait for up to a minute (train._dataset).
    from digitglyph.data.sources import RunData
    from digitglyph.train import _dataset

    rng = np.random.default_rng(0)
    pool = rng.integers(0, 256, (600, 28, 28), dtype=np.uint8)
    candidates = np.stack([np.arange(300), np.arange(300, 600)], axis=1)  # two variants of each example
    labels = np.arange(300) % 10
    data = RunData(pool, candidates, labels, 10)
    config = TrainConfig(**dict(TINY, batch_size=128))
    dataset = _dataset(data, config, training=True)
    assert dataset.options().autotune.enabled is False
    epochs = [list(dataset.as_numpy_iterator()) for _ in range(2)]  # the dataset restarts each epoch
    for batches in epochs:
        assert [len(y) for _, y in batches] == [128, 128, 44]
        assert sorted(np.concatenate([y for _, y in batches]).tolist()) == sorted(labels.tolist())  # each once
        x = np.concatenate([x for x, _ in batches])
        assert x.shape == (300, 28, 28, 1) and 0.0 <= x.min() and x.max() <= 1.0
    first, second = (np.concatenate([x for x, _ in batches]) for batches in epochs)
    assert not np.array_equal(first, second)  # reshuffled, with other variants drawn
    validation = list(_dataset((pool[:300], labels), config, training=False).as_numpy_iterator())
    assert validation[0][0].dtype == np.float32
    np.testing.assert_array_equal(np.concatenate([x for x, _ in validation])[..., 0], pool[:300] / np.float32(255))


def test_a_finished_run_is_not_trained_again(tiny, tmp_path):
    first = train(tiny, tmp_path / "run")
    stamp = (tmp_path / "run" / "model.keras").stat().st_mtime_ns
    assert train(tiny, tmp_path / "run") == json.loads(json.dumps(first))
    assert (tmp_path / "run" / "model.keras").stat().st_mtime_ns == stamp


class Interrupt(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            raise KeyboardInterrupt("simulated Ctrl-C after two epochs")


def test_an_interrupted_run_resumes_where_it_stopped(tiny, tmp_path):
    run = tmp_path / "run"
    config = dict(tiny, epochs=4)
    with pytest.raises(KeyboardInterrupt):
        train(config, run, callbacks=[Interrupt()])
    assert (run / "backup").exists() and not (run / "metrics.json").exists()
    assert [row["epoch"] for row in read_history(run)] == [0, 1]
    metrics = train(config, run)
    epochs = [int(line.split(",")[0]) for line in (run / "history.csv").read_text().splitlines()[1:]]
    assert epochs == [0, 1, 2, 3], "epochs 0 and 1 must not be trained again"
    assert metrics["epochs_trained"] == 4


def test_resuming_with_other_parameters_is_refused(tiny, tmp_path):
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(dict(tiny, epochs=4), run, callbacks=[Interrupt()])
    with pytest.raises(ValueError, match="different parameters"):
        train(dict(tiny, epochs=4, learning_rate=0.01), run)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(architecture="resnet999"), "architecture='resnet999' is unknown"),
        (dict(epochs=-1), "epochs=-1 must be a positive integer"),
        (dict(learning_rate=0), "learning_rate=0"),
        (dict(data_dir="/no/such/dir"), "data_dir='/no/such/dir' is not a directory"),
        (dict(train_subset=5), "train_subset=5"),
        (dict(selection="best_test"), "selection='best_test'"),
    ],
)
def test_bad_parameters_fail_fast_naming_the_parameter(change, message):
    with pytest.raises(ValueError, match="bad training parameter: " + message.replace("(", r"\(")):
        TrainConfig(**dict(TINY, **change))


def test_unknown_parameter_names_are_refused():
    with pytest.raises(ValueError, match="unknown name"):
        TrainConfig.from_dict(dict(TINY, epoch=3))


def test_a_finished_run_is_not_returned_for_other_parameters(tiny, tmp_path):
    train(tiny, tmp_path / "run")
    with pytest.raises(ValueError, match=r"finished run with different parameters \(epochs\)"):
        train(dict(tiny, epochs=5), tmp_path / "run")
    # settings that do not change the result may differ
    assert train(dict(tiny, threads=1), tmp_path / "run")["epochs_trained"] == 3
    # a run written before the elastic augmentation fields existed is the same run (they default to off) ...
    stored = json.loads((tmp_path / "run" / "metrics.json").read_text())
    for name in ("elastic_pixels", "elastic_grid"):
        del stored["parameters"]["augmentation"][name]
    (tmp_path / "run" / "metrics.json").write_text(json.dumps(stored))
    assert train(tiny, tmp_path / "run")["epochs_trained"] == 3
    # ... and not the same as one that asks for the distortion
    elastic = dict(tiny, augmentation={"elastic_pixels": 2.0})
    with pytest.raises(ValueError, match=r"different parameters \(augmentation\)"):
        train(elastic, tmp_path / "run")


def test_a_partial_augmentation_dict_is_recorded_complete():
    augmentation = TrainConfig(augmentation={"rotation_degrees": 8.0}).augmentation
    assert augmentation["rotation_degrees"] == 8.0
    assert augmentation == {**TrainConfig().augmentation, "rotation_degrees": 8.0}
