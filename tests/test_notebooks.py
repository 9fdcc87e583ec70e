"""The papermill notebooks, the sweep runner and its reports, with tiny parameters.

Every notebook is executed for real on the ``digitglyph`` kernel; training runs are one
epoch on a few hundred images, so the whole file takes a few minutes on two cores.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import yaml
from papermill.exceptions import PapermillExecutionError

from digitglyph import sweep as sweeps
from digitglyph.notebooks import EXPLORE, SWEEP, TRAIN, execute_notebook, is_current
from digitglyph.paths import NOTEBOOKS, ROOT, SWEEPS

pytestmark = pytest.mark.slow
TINY_SWEEP = SWEEPS / "tiny.yaml"
TINY_RUN = {"architecture": "lenet5", "epochs": 1, "train_subset": 500, "validation_size": 200, "batch_size": 64}
EXPLORE_FIGURES = [
    "class-balance",
    "samples",
    "mean-images",
    "intensity",
    "ink-geometry",
    "stroke-thickness",
    "pca",
    "hardest",
    "pen-sources",
    "pen-strokes",
    "pen-samples",
    "pen-shape",
    "digit-like",
    "non-digits",
]
TRAIN_FIGURES = ["learning-curves", "confusion", "per-class-accuracy", "misclassified", "reliability"]


def tiny_sweep_file(tmp_path: Path, mnist_dir: Path, **changes) -> Path:
    """``sweeps/tiny.yaml`` with its reports under ``tmp_path`` and ``changes`` applied."""
    spec = yaml.safe_load(TINY_SWEEP.read_text())
    spec["reports_dir"] = str(tmp_path / "reports")
    spec["fixed"]["data_dir"] = str(mnist_dir)
    spec.update(changes)
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def errors_in(notebook_path: Path) -> list:
    notebook = nbformat.read(notebook_path, as_version=4)
    return [output for cell in notebook.cells for output in cell.get("outputs", []) if output.output_type == "error"]


# ----------------------------------------------------------------------------- notebooks as committed


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda path: path.name)
def test_committed_notebooks_carry_no_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: strip the outputs"


@pytest.mark.parametrize("path", [EXPLORE, TRAIN, SWEEP], ids=lambda path: path.name)
def test_report_notebooks_use_the_project_kernel_and_a_parameters_cell(path):
    notebook = nbformat.read(path, as_version=4)
    assert notebook.metadata.kernelspec.name == "digitglyph"
    tagged = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1


# ----------------------------------------------------------------------------- each notebook runs


def test_explore_notebook_draws_and_saves_every_figure(tmp_path, mnist_dir):
    target = tmp_path / "01-explore.ipynb"
    parameters = {
        "data_dir": str(mnist_dir),
        "sample_size": 300,
        "examples_per_class": 4,
        "figures_dir": str(tmp_path / "figures"),
    }
    execute_notebook(EXPLORE, target, parameters)

    assert errors_in(target) == []
    assert target.with_suffix(".html").stat().st_size > 10_000
    for name in EXPLORE_FIGURES:
        assert (tmp_path / "figures" / f"explore-{name}.png").stat().st_size > 5_000, name
    assert is_current(EXPLORE, target, parameters)
    assert not is_current(EXPLORE, target, {**parameters, "seed": 1})


def test_train_notebook_writes_the_run_directory_and_its_figures(tmp_path, mnist_dir):
    target, run_dir = tmp_path / "02-train.ipynb", tmp_path / "run"
    execute_notebook(
        TRAIN,
        target,
        {
            **TINY_RUN,
            "data_dir": str(mnist_dir),
            "run_dir": str(run_dir),
            "figures_dir": str(tmp_path / "figures"),
            "threads": 1,
        },
    )

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["parameters"]["architecture"] == "lenet5" and metrics["parameters"]["threads"] == 1
    assert metrics["epochs_trained"] == 1 and metrics["train_size"] == 500
    for name in TRAIN_FIGURES:
        assert (tmp_path / "figures" / f"train-{name}.png").stat().st_size > 5_000, name
    text = target.with_suffix(".html").read_text()
    assert f"{metrics['test_accuracy']:.2%}" in text  # the summary table shows the run's own result


@pytest.mark.parametrize(
    "notebook, parameters, named",
    [
        (TRAIN, {"architecture": "glyph99"}, "architecture='glyph99'"),
        (TRAIN, {"epochs": -3}, "epochs=-3"),
        (TRAIN, {"data_dir": "/nonexistent/mnist"}, "data_dir='/nonexistent/mnist'"),
        (EXPLORE, {"sample_size": 5}, "sample_size=5"),
    ],
    ids=["architecture", "epochs", "train-data_dir", "explore-sample_size"],
)
def test_bad_parameters_fail_fast_naming_the_parameter(tmp_path, notebook, parameters, named):
    target = tmp_path / "out.ipynb"
    with pytest.raises(PapermillExecutionError) as error:
        execute_notebook(
            notebook, target, {"run_dir": str(tmp_path / "run"), **parameters} if notebook == TRAIN else parameters
        )

    assert error.value.ename == "ValueError" and named in error.value.evalue
    assert "bad" in error.value.evalue
    failed = nbformat.read(tmp_path / "out.failed.ipynb", as_version=4)
    code = [cell for cell in failed.cells if cell.cell_type == "code"]
    injected = next(i for i, cell in enumerate(code) if "injected-parameters" in cell.metadata.get("tags", []))
    assert code[injected + 1].outputs[-1].output_type == "error", "the check right after the parameters fails"
    assert all(cell.execution_count is None for cell in code[injected + 2 :])
    assert not target.exists() and not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------- sweeps


def corrupt_mnist_dir(tmp_path: Path, mnist_dir: Path) -> Path:
    """A directory whose MNIST files exist but are not gzip: a run on it fails inside its notebook (every
    parameter is valid, so the sweep file loads)."""
    corrupt = tmp_path / "corrupt-mnist"
    corrupt.mkdir()
    for source in mnist_dir.glob("*-ubyte.gz"):
        (corrupt / source.name).write_bytes(b"not gzip")
    return corrupt


def test_sweep_records_a_failed_run_and_completes_the_others(tmp_path, mnist_dir):
    corrupt = corrupt_mnist_dir(tmp_path, mnist_dir)
    path = tiny_sweep_file(
        tmp_path,
        mnist_dir,
        grid={"architecture": ["lenet5"], "learning_rate": [0.003, 0.01], "data_dir": [str(mnist_dir), str(corrupt)]},
    )
    spec = yaml.safe_load(path.read_text())
    del spec["fixed"]["data_dir"]
    path.write_text(yaml.safe_dump(spec))
    sweep = sweeps.load_sweep(path)
    assert len(sweep.runs) == 4 and len({run.run_id for run in sweep.runs}) == 4

    assert sweeps.run_sweep(sweep) == 1  # some run failed

    bad = [run for run in sweep.runs if run.parameters["data_dir"] == str(corrupt)]
    good = [run for run in sweep.runs if run not in bad]
    for run in bad:
        error = json.loads(sweep.error_file(run).read_text())
        assert "MnistDataError" in error["error"] and "not a readable gzip file" in error["error"]
        assert Path(error["failed_notebook"]).exists() and not sweep.notebook(run).exists()
    bad = bad[0]
    for run in good:
        assert sweep.finished(run)
        assert sweep.notebook(run).with_suffix(".html").exists()
        assert not sweep.error_file(run).exists()

    results = pd.read_csv(sweep.results_dir / "results.csv")
    assert sorted(results["status"]) == ["done", "done", "failed", "failed"]
    for run in good:  # the table is read from the run directories
        stored = json.loads((sweep.run_dir(run) / "metrics.json").read_text())
        row = results.set_index("run_id").loc[run.run_id]
        assert row["test_accuracy"] == pytest.approx(stored["test_accuracy"])
        assert row["learning_rate"] == run.parameters["learning_rate"]
    markdown = (sweep.results_dir / "results.md").read_text()
    assert bad.run_id in markdown and "not a readable gzip file" in markdown
    assert errors_in(sweep.results_dir / "03-sweep.ipynb") == []
    for name in ("accuracy-by-architecture", "accuracy-vs-time", "accuracy-vs-learning-rate", "validation-curves"):
        assert (sweep.figures_dir / f"sweep-{name}.png").exists(), name


def test_interrupted_sweep_resumes_without_redoing_finished_runs(tmp_path, mnist_dir):
    path = tiny_sweep_file(
        tmp_path, mnist_dir, workers=1, report=False, grid={"architecture": ["lenet5"], "learning_rate": [0.003, 0.01]}
    )
    sweep = sweeps.load_sweep(path)
    command = [sys.executable, "-m", "digitglyph.cli", "sweep", str(path)]
    process = subprocess.Popen(
        command, cwd=tmp_path, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 240
        while not any(sweep.finished(run) for run in sweep.runs):
            assert process.poll() is None and time.monotonic() < deadline, "the first run never finished"
            time.sleep(0.5)
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the sweep and its workers die at once, like a crash
        process.wait()
    first, second = sorted(sweep.runs, key=lambda run: not sweep.finished(run))
    assert sweep.finished(first) and not sweep.finished(second)
    kept = {
        path: path.stat().st_mtime_ns
        for path in (sweep.notebook(first), sweep.run_dir(first) / "metrics.json", sweep.run_dir(first) / "model.keras")
    }

    finished = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)

    assert finished.returncode == 0, finished.stderr[-2000:]
    assert "1 already finished, 1 to run" in finished.stdout
    assert sweep.finished(second)
    assert {path: path.stat().st_mtime_ns for path in kept} == kept, "a finished run was redone"


def test_sweep_runs_on_a_dask_cluster(tmp_path, mnist_dir):
    from distributed import LocalCluster

    path = tiny_sweep_file(tmp_path, mnist_dir, report=False, grid={"architecture": ["lenet5"]})
    sweep = sweeps.load_sweep(path)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        assert sweeps.run_sweep(sweep, scheduler=cluster.scheduler_address) == 0
    (run,) = sweep.runs
    assert sweep.finished(run)
    assert pd.read_csv(sweep.results_dir / "results.csv")["status"].tolist() == ["done"]


def test_run_ids_are_stable_and_depend_on_every_parameter():
    parameters = {"architecture": "glyphnet", "seed": 1, "epochs": 3}
    assert sweeps.run_id(parameters) == sweeps.run_id(dict(reversed(parameters.items())))
    assert sweeps.run_id(parameters) != sweeps.run_id({**parameters, "epochs": 4})
    assert sweeps.run_id(parameters).startswith("glyphnet-seed1-")


def test_committed_sweep_report_matches_its_run_directories(monkeypatch):
    """reports/sweep/results.csv, its plots and reports/runs/ come from the same runs of sweeps/default.yaml."""
    monkeypatch.chdir(ROOT.parent)  # the repository's folders do not depend on the working directory
    sweep = sweeps.load_sweep(SWEEPS / "default.yaml")
    committed = pd.read_csv(sweep.results_dir / "results.csv").set_index("run_id")
    assert sorted(committed.index) == sorted(run.run_id for run in sweep.runs)
    architectures = {run.parameters["architecture"] for run in sweep.runs}
    assert {"glyph17", "glyphnet"} <= architectures and len(architectures) >= 4
    assert len({run.parameters["seed"] for run in sweep.runs}) >= 2
    for run in sweep.runs:
        assert sweep.finished(run), f"{run.run_id} has no executed notebook or metrics"
        metrics = json.loads((sweep.run_dir(run) / "metrics.json").read_text())
        row = committed.loc[run.run_id]
        assert row["status"] == "done"
        assert row["test_accuracy"] == pytest.approx(metrics["test_accuracy"])
        assert row["wall_time_s"] == pytest.approx(metrics["wall_time_s"])
        assert row["epochs_trained"] == metrics["epochs_trained"] == run.parameters["epochs"], (
            "every run completed its whole learning-rate schedule"
        )
        assert sweep.notebook(run).with_suffix(".html").exists()
    expected_markdown = sweeps.results_markdown(sweep, sweeps.collect_results(sweep))
    assert (sweep.results_dir / "results.md").read_text() == expected_markdown
    for name in ("accuracy-by-architecture", "accuracy-vs-time", "accuracy-vs-parameter-count"):
        figure = sweep.figures_dir / f"sweep-{name}.png"
        # (file times mean nothing in a fresh clone: check the figure is a real, non-trivial PNG)
        assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and figure.stat().st_size > 10_000, name
