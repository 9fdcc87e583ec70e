"""Sweep workers: one process per run, so a worker that dies fails only its own run."""

import json
import os
import signal
from pathlib import Path

from digitglyph import sweep as sweeps


def finish_or_die(task):
    """A stand-in for ``execute_run``: the run named "dies" kills its own worker process, as the
    out-of-memory killer would; the others finish."""
    if task.run_id == "dies":
        os.kill(os.getpid(), signal.SIGKILL)
    return {"run_id": task.run_id, "status": "done", "seconds": 0.0}


def task(tmp_path, run_id):
    return sweeps.RunTask(run_id, str(tmp_path / f"{run_id}.ipynb"), str(tmp_path / f"{run_id}.error.json"),
                          {"seed": 0}, str(tmp_path))


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
