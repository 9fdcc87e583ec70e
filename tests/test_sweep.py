"""The sweep runner without training: sweep files checked when loaded, and workers (one process per run,
so a worker that dies fails only its own run).  Sweeps that train are in test_notebooks.py."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from digitglyph import recipes
from digitglyph import sweep as sweeps
from digitglyph.paths import ROOT, SWEEPS


def finish_or_die(task):
    """A stand-in for ``execute_run``: the run named "dies" kills its own worker process, as the
    out-of-memory killer would; the others finish."""
    if task.run_id == "dies":
        os.kill(os.getpid(), signal.SIGKILL)
    return {"run_id": task.run_id, "status": "done", "seconds": 0.0}


def task(tmp_path, run_id):
    return sweeps.RunTask(
        run_id, str(tmp_path / f"{run_id}.ipynb"), str(tmp_path / f"{run_id}.error.json"), {"seed": 0}, str(tmp_path)
    )


def test_a_worker_that_dies_fails_only_its_own_run(tmp_path):
    (tmp_path / "dies.partial.ipynb").write_text("{}")  # what papermill had written when the worker died
    tasks = [task(tmp_path, name) for name in ("first", "dies", "third", "fourth")]

    outcomes = sweeps._on_local_workers(tasks, 2, len(tasks), target=finish_or_die)

    status = {outcome["run_id"]: outcome["status"] for outcome in outcomes}
    assert status == {"first": "done", "dies": "failed", "third": "done", "fourth": "done"}
    died = next(outcome for outcome in outcomes if outcome["run_id"] == "dies")
    assert "killed by signal 9" in died["error"]
    recorded = json.loads((tmp_path / "dies.error.json").read_text())
    assert recorded["error"] == died["error"] and recorded["parameters"] == {"seed": 0}
    assert Path(recorded["failed_notebook"]).exists() and not (tmp_path / "dies.partial.ipynb").exists()
    assert not any((tmp_path / f"{name}.error.json").exists() for name in ("first", "third", "fourth"))


# ---- sweep files: every mistake is one clear error when the file is loaded, before anything runs ----

GOOD = {"fixed": {"epochs": 1, "train_subset": 500}, "grid": {"architecture": ["lenet5", "glyphnet-small"]}}


def sweep_file(tmp_path, text) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(text if isinstance(text, str) else yaml.safe_dump(text))
    return path


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "is empty"),
        ("# only a comment\n", "is empty"),
        ("grid: {}\n", "grid must map each varied parameter"),
        ("fixed:\n  epochs: 2\n", "grid must map each varied parameter"),
        ("grid:\n", "grid must map each varied parameter"),
        ("grid: [architecture, lenet5]\n", "grid must map each varied parameter"),
        ("grid:\n  architecture: lenet5\n", "every grid entry must be a non-empty list"),
        ("grid:\n  architecture: []\n", "every grid entry must be a non-empty list"),
        ("grid: {architecture: [lenet5]\nfixed: [", "is not valid YAML at line"),
        ("grid:\n  architecture: [lenet5]\n bad indent: 1\n", "is not valid YAML at line 3"),
        ("hello\n", "must be a mapping of keys"),
        ("- grid\n", "must be a mapping of keys"),
        ("grid: {architecture: [lenet5]}\nrepeats: 3\n", "unknown key(s) ['repeats']"),
        ("grid: {learning_rat: [0.1]}\n", "['learning_rat'] are not parameters of 02-train.ipynb"),
        ("grid: {architecture: [lenet5]}\nfixed: {run_dir: here}\n", "['run_dir'] are not parameters"),
        ("grid: {recipe: [ship, no-such-recipe]}\n", "unknown recipe 'no-such-recipe'"),
        ("grid: {architecture: [lenet5]}\nfixed: {architecture: lenet5}\n", "both fixed and in the grid"),
        ("grid: {architecture: [lenet5]}\nfixed: [epochs]\n", "fixed must map"),
        ("grid: {architecture: [lenet5]}\nseeds: 3\n", "seeds must be a non-empty list of integers"),
        ("grid: {architecture: [lenet5]}\nworkers: 0\n", "workers=0 must be a positive integer"),
        ("grid: {architecture: [lenet5]}\nreport: maybe\n", "report='maybe' must be a bool"),
        ("grid: {architecture: [lenet5, glyph99]}\n", "architecture='glyph99' is unknown"),
        ("grid: {architecture: [lenet5]}\nfixed: {epochs: -3}\n", "epochs=-3 must be a positive integer"),
        ("grid: {learning_rate: [0.003, 5.0]}\n", "learning_rate=5.0 must be between 0 and 1"),
        ("grid: {architecture: [lenet5]}\nfixed: {time_budget_s: soon}\n", "time_budget_s='soon'"),
        ("grid: {architecture: [lenet5]}\nfixed: {data_dir: /nonexistent/mnist}\n", "data_dir='/nonexistent/mnist'"),
        ("grid: {architecture: [lenet5]}\nfixed: {augmentation: {spin: 3}}\n", "augmentation="),
    ],
    ids=lambda value: value if len(value) < 40 else value[:40],
)
def test_a_bad_sweep_file_is_refused_when_loaded(tmp_path, text, message):
    with pytest.raises(sweeps.SweepFileError) as error:
        sweeps.load_sweep(sweep_file(tmp_path, text))
    assert message in str(error.value)
    assert str(error.value).startswith(f"sweep file {tmp_path / 'sweep.yaml'}")


def test_a_bad_run_is_named_with_its_parameters(tmp_path):
    path = sweep_file(tmp_path, {"grid": {"architecture": ["lenet5"], "epochs": [2, -1]}, "seeds": [0, 1]})
    with pytest.raises(sweeps.SweepFileError, match=r"the run architecture='lenet5', epochs=-1, seed=0 cannot train"):
        sweeps.load_sweep(path)


def test_a_missing_or_unreadable_sweep_file_is_one_clear_error(tmp_path):
    with pytest.raises(sweeps.SweepFileError, match="does not exist"):
        sweeps.load_sweep(tmp_path / "nope.yaml")
    with pytest.raises(sweeps.SweepFileError, match="cannot be read"):
        sweeps.load_sweep(tmp_path)


def test_a_good_sweep_file_gives_every_run(tmp_path):
    sweep = sweeps.load_sweep(sweep_file(tmp_path, {**GOOD, "seeds": [0, 1], "reports_dir": "runs/x"}))
    assert [run.parameters for run in sweep.runs] == [
        {"epochs": 1, "train_subset": 500, "architecture": architecture, "seed": seed}
        for seed in (0, 1)
        for architecture in ("lenet5", "glyphnet-small")
    ]
    assert sweep.reports_dir == ROOT / "runs" / "x", "a relative reports_dir is relative to the repository"


def test_the_committed_sweep_files_load():
    for path in sorted(SWEEPS.glob("*.yaml")):
        assert sweeps.load_sweep(path).runs, path


@pytest.mark.parametrize("text", ["grid: {}\n", "x: ["])
def test_the_cli_refuses_a_bad_sweep_file_with_one_line_and_no_run(tmp_path, text):
    path = sweep_file(tmp_path, text)
    result = subprocess.run(
        [sys.executable, "-m", "digitglyph.cli", "sweep", str(path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    assert f"digitglyph sweep: sweep file {path}" in result.stderr
    assert result.stdout == "" and list(tmp_path.iterdir()) == [path], "nothing ran, nothing was written"


def test_notebook_execution_has_one_home_and_no_import_cycle():
    """notebooks.py runs notebooks for reports and sweep; neither it nor sweep imports reports (imports inside
    functions counted)."""
    import ast

    from digitglyph.paths import PACKAGE

    def imported(module):
        tree = ast.parse((PACKAGE / f"{module}.py").read_text())
        return {node.module.lstrip(".") for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}

    assert "reports" not in imported("sweep") and "notebooks" in imported("sweep")
    assert {"reports", "sweep"}.isdisjoint(imported("notebooks"))
    assert "papermill" not in imported("reports") | imported("sweep")


def test_a_run_trains_its_recipe_with_the_sweep_values_on_top(tmp_path):
    sweep = sweeps.load_sweep(sweep_file(tmp_path, {"grid": {"recipe": ["fast"], "epochs": [2]}}))
    (run,) = sweep.runs
    config = sweeps.run_config(run.parameters)
    assert config.epochs == 2 and config.architecture == recipes.load("fast")["architecture"]
    assert sweeps.run_config({"epochs": 2, "seed": 0}).architecture == "glyphnet", "no recipe: the defaults"
