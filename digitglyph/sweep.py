"""``digitglyph sweep SWEEP.yaml``: a grid of training runs, each one papermill execution of 02-train.

A sweep file::

    name: default
    reports_dir: reports        # runs/ (executed notebooks + run dirs), sweep/ (results), figures/;
                                # a relative path is relative to the repository root
    workers: 2                  # parallel local worker processes (``--workers`` overrides)
    seeds: [0, 1]
    fixed:                      # every run: the per-run budget and anything else
      epochs: 6
      time_budget_s: 150
    grid:                       # every combination of these, for every seed
      architecture: [glyph17, glyphnet]
      learning_rate: [0.003]
    report: true                # execute 03-sweep at the end (table + plots)

Every key under ``fixed`` and ``grid`` is a parameter of ``notebooks/02-train.ipynb``: a
``TrainConfig`` field, or ``recipe`` (``recipes/<name>.yaml``, the base the other values override;
without one a run starts from ``TrainConfig``'s defaults).  ``grid`` is required and names at least
one parameter.  The whole file is checked when it is loaded, before anything runs: its shape, its
keys, and every run's configuration (by :meth:`digitglyph.train.TrainConfig.from_dict`, through
:func:`digitglyph.recipes.config`), so a mistake is one clear :class:`SweepFileError` naming it,
never a run that starts and fails, nor a default training run.  Paths in run parameters
(``data_dir``, ``corrections_db``, ``initial_model``) are relative to the directory the sweep is started
from, where its runs execute; ``reports_dir`` is relative to the repository root.
A run's id is its architecture, seed and a hash of all its parameters, so the same
run always lands in the same place: ``reports_dir/runs/<run-id>/`` (the run directory
of :func:`digitglyph.train.train`) and ``reports_dir/runs/<run-id>.ipynb`` / ``.html``.
A run is finished when its ``metrics.json`` and executed notebook exist; finished runs
are skipped, interrupted ones resume from their last epoch (``train`` resumes), failed
ones leave ``<run-id>.error.json`` and ``<run-id>.failed.ipynb`` and are retried next time
while the other runs go on.

Runs go to local worker processes by default, each training with
``threads = cores // workers`` TensorFlow threads, or to a Dask cluster with
``--scheduler tcp://host:port`` (the workers must see the same file system).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from . import recipes
from .files import write_json_atomic, write_text_atomic
from .notebooks import SWEEP as SWEEP_NOTEBOOK
from .notebooks import TRAIN as TRAIN_NOTEBOOK
from .notebooks import execute_notebook, failed_notebook, is_current, keep_failed, parameter_names
from .paths import from_root, relative_to_root

SWEEP_KEYS = {"name", "reports_dir", "workers", "seeds", "fixed", "grid", "report"}
RESERVED = {"run_dir", "threads", "figures_dir"}  # set by the sweep, not by a sweep file
RESULT_METRICS = [
    "test_accuracy",
    "test_errors",
    "validation_accuracy",
    "wall_time_s",
    "epochs_trained",
    "parameter_count",
    "expected_calibration_error",
    "train_size",
]


@dataclass(frozen=True)
class Run:
    run_id: str
    parameters: dict


@dataclass
class Sweep:
    name: str
    file: Path
    reports_dir: Path
    workers: int
    runs: list[Run]
    grid_names: list[str] = field(default_factory=list)
    report: bool = True

    @property
    def runs_dir(self) -> Path:
        return self.reports_dir / "runs"

    @property
    def results_dir(self) -> Path:
        return self.reports_dir / "sweep"

    @property
    def figures_dir(self) -> Path:
        return self.reports_dir / "figures"

    def run_dir(self, run: Run) -> Path:
        return self.runs_dir / run.run_id

    def notebook(self, run: Run) -> Path:
        return self.runs_dir / f"{run.run_id}.ipynb"

    def error_file(self, run: Run) -> Path:
        return self.runs_dir / f"{run.run_id}.error.json"

    def finished(self, run: Run) -> bool:
        return (self.run_dir(run) / "metrics.json").exists() and self.notebook(run).exists()


@dataclass(frozen=True)
class RunTask:
    """Everything one worker needs to execute one run (picklable, for processes and Dask)."""

    run_id: str
    notebook: str
    error_file: str
    parameters: dict
    cwd: str


# ----------------------------------------------------------------------------- the sweep file


class SweepFileError(ValueError):
    """A sweep file that cannot be run as written (the message names the file and the mistake)."""


def load_sweep(path: str | os.PathLike) -> Sweep:
    """Read and check a sweep file; every run's parameters are validated here, before anything runs."""
    path = Path(path)
    spec = _read_spec(path)

    def problem(text: str) -> SweepFileError:
        return SweepFileError(f"sweep file {path}: {text}")

    unknown = set(spec) - SWEEP_KEYS
    if unknown:
        raise problem(f"unknown key(s) {sorted(unknown)}; known: {sorted(SWEEP_KEYS)}")
    grid, fixed, seeds = spec.get("grid"), spec.get("fixed") or {}, spec.get("seeds", [0])
    if not isinstance(grid, dict) or not grid:
        raise problem(
            f"grid must map each varied parameter to a list of values (for example "
            f"'grid: {{architecture: [glyphnet, lenet5]}}'), got {grid!r}; a sweep without a grid "
            "would start one default training run"
        )
    if not all(isinstance(values, list) and values for values in grid.values()):
        raise problem("every grid entry must be a non-empty list of values")
    if not isinstance(fixed, dict):
        raise problem(f"fixed must map parameter names to values, got {fixed!r}")
    if not (isinstance(seeds, list) and seeds and all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)):
        raise problem(f"seeds must be a non-empty list of integers, got {seeds!r}")
    allowed = train_parameter_names()
    unknown = (set(grid) | set(fixed)) - allowed
    if unknown:
        raise problem(
            f"{sorted(unknown)} are not parameters of {TRAIN_NOTEBOOK.name} (TrainConfig fields or "
            f"recipe); choose from {sorted(allowed)}"
        )
    if set(grid) & set(fixed):
        raise problem(f"{sorted(set(grid) & set(fixed))} are both fixed and in the grid")
    workers = spec.get("workers", 1)
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise problem(f"workers={workers!r} must be a positive integer")
    for key, kind in (("name", str), ("reports_dir", str), ("report", bool)):
        if key in spec and not isinstance(spec[key], kind):
            raise problem(f"{key}={spec[key]!r} must be a {kind.__name__}")

    runs = {}
    for seed in seeds:  # seed-major: the first seed of every configuration finishes first
        for combination in itertools.product(*grid.values()):
            parameters = {**fixed, **dict(zip(grid, combination, strict=True)), "seed": seed}
            try:
                run_config(parameters)
            except (TypeError, ValueError) as error:
                raise problem(f"the run {_describe(parameters)} cannot train: {error}") from None
            run = Run(run_id(parameters), parameters)
            runs[run.run_id] = run
    return Sweep(
        name=spec.get("name", path.stem),
        file=path.absolute(),
        reports_dir=from_root(spec.get("reports_dir", "reports")),
        workers=workers,
        runs=list(runs.values()),
        grid_names=list(grid),
        report=spec.get("report", True),
    )


def _read_spec(path: Path) -> dict:
    """The sweep file's top-level mapping, or a :class:`SweepFileError` saying why there is none."""
    import yaml

    try:
        text = path.read_text()
    except FileNotFoundError:
        raise SweepFileError(f"sweep file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise SweepFileError(f"sweep file {path} cannot be read: {error}") from None
    try:
        spec = yaml.safe_load(text)
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        reason = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise SweepFileError(f"sweep file {path} is not valid YAML{at}: {reason}") from None
    if spec is None:
        raise SweepFileError(f"sweep file {path} is empty: it needs at least a grid")
    if not isinstance(spec, dict):
        raise SweepFileError(
            f"sweep file {path} must be a mapping of keys ({', '.join(sorted(SWEEP_KEYS))}), "
            f"got a {type(spec).__name__}: {spec!r}"
        )
    return spec


def train_parameter_names() -> set[str]:
    """What a sweep may set: 02-train's parameters and every ``TrainConfig`` field, less what the sweep sets."""
    from dataclasses import fields

    from .train import TrainConfig  # here, not above: a malformed file is refused without importing TensorFlow

    return (parameter_names(TRAIN_NOTEBOOK) | {field.name for field in fields(TrainConfig)}) - RESERVED - {"seed"}


def run_config(parameters: dict):
    """The ``TrainConfig`` a run trains with: its recipe (if it names one) with its other values on top, as
    02-train builds it (ValueError or TypeError naming a bad value)."""
    values = dict(parameters)
    return recipes.config(values.pop("recipe", None), **values)


def _describe(parameters: dict) -> str:
    return ", ".join(f"{name}={value!r}" for name, value in parameters.items())


def run_id(parameters: dict) -> str:
    """``<architecture>-seed<seed>-<hash>``: the same parameters always give the same id."""
    digest = hashlib.sha256(json.dumps(parameters, sort_keys=True, default=str).encode()).hexdigest()[:10]
    return f"{parameters.get('architecture', 'default')}-seed{parameters['seed']}-{digest}"


# ----------------------------------------------------------------------------- running


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def run_sweep(sweep: Sweep, workers: int | None = None, scheduler: str | None = None) -> int:
    """Execute every unfinished run, then the results table and (if ``report``) 03-sweep.

    Returns 0 when every run is finished, 1 when some failed."""
    workers = workers or sweep.workers
    threads = max(1, available_cores() // workers)
    pending = [run for run in sweep.runs if not sweep.finished(run)]
    print(
        f"sweep {sweep.name}: {len(sweep.runs)} runs, {len(sweep.runs) - len(pending)} already finished, "
        f"{len(pending)} to run on {'Dask at ' + scheduler if scheduler else f'{workers} local worker(s)'} "
        f"with {threads} TensorFlow thread(s) each",
        flush=True,
    )
    sweep.runs_dir.mkdir(parents=True, exist_ok=True)
    tasks = [
        RunTask(
            run.run_id,
            str(sweep.notebook(run)),
            str(sweep.error_file(run)),
            {"recipe": None, **run.parameters, "run_dir": str(sweep.run_dir(run)), "threads": threads},
            os.getcwd(),
        )
        for run in pending
    ]
    outcomes = (
        _on_dask(tasks, scheduler, len(sweep.runs)) if scheduler else _on_local_workers(tasks, workers, len(sweep.runs))
    )

    write_results(sweep)
    if sweep.report and (outcomes or not _report_current(sweep)):
        execute_notebook(SWEEP_NOTEBOOK, sweep.results_dir / "03-sweep.ipynb", _report_parameters(sweep))
    failed = [outcome for outcome in outcomes if outcome["status"] == "failed"]
    print(
        f"sweep {sweep.name}: {sum(sweep.finished(run) for run in sweep.runs)} of {len(sweep.runs)} runs finished, "
        f"{len(failed)} failed; results in {sweep.results_dir / 'results.md'}"
    )
    return 1 if failed else 0


def _report_parameters(sweep: Sweep) -> dict:
    """03-sweep's parameters (it runs in the repository root, so the file is named relative to it)."""
    return {"sweep_file": relative_to_root(sweep.file)}


def _report_current(sweep: Sweep) -> bool:
    target = sweep.results_dir / "03-sweep.ipynb"
    if not is_current(SWEEP_NOTEBOOK, target, _report_parameters(sweep)):
        return False
    newest_run = max((sweep.notebook(run).stat().st_mtime for run in sweep.runs if sweep.finished(run)), default=0)
    return target.stat().st_mtime >= newest_run


def _on_local_workers(tasks: list[RunTask], workers: int, total: int, target=None) -> list[dict]:
    if not tasks:
        return []
    return _track(_in_processes(tasks, workers, target or execute_run), len(tasks), total, workers)


def _in_processes(tasks: list[RunTask], workers: int, target):
    """``target(task)`` for every task, each in its own spawned process, ``workers`` at a time; yields the
    outcomes as they finish.

    One process per run, not a process pool: a worker that dies (killed, out of memory) breaks a whole pool,
    which then fails every queued run with it.  Here only that run is recorded as failed, and the others go on.
    "spawn", not fork: a forked worker inherits the parent's TensorFlow runtime without its threads, and
    garbage-collecting an inherited tf.function there crashed it (seen: a segfault in remove_function).
    """
    import multiprocessing
    from multiprocessing.connection import wait

    context = multiprocessing.get_context("spawn")
    waiting, running = list(tasks), {}
    try:
        while waiting or running:
            while waiting and len(running) < workers:
                task = waiting.pop(0)
                receiver, sender = context.Pipe(duplex=False)
                process = context.Process(target=_child, args=(target, task, sender), name=f"run {task.run_id}")
                process.start()
                sender.close()  # the child holds the only sending end: its death reads as end of file
                running[receiver] = (process, task, time.perf_counter())
            for receiver in wait(list(running)):  # an outcome arrived, or a worker died without one
                process, task, started = running.pop(receiver)
                try:
                    outcome = receiver.recv()
                except EOFError:
                    outcome = None
                receiver.close()
                process.join()
                yield outcome or _worker_died(task, process.exitcode, time.perf_counter() - started)
    finally:  # interrupted (Ctrl-C): stop the runs still going; they resume from their last epoch next time
        for process, _, _ in running.values():
            process.terminate()
            process.join()


def _child(target, task: RunTask, sender) -> None:
    sender.send(target(task))
    sender.close()


def _worker_died(task: RunTask, exitcode, seconds: float) -> dict:
    how = f"killed by signal {-exitcode}" if exitcode and exitcode < 0 else f"exit code {exitcode}"
    keep_failed(Path(task.notebook))  # as far as papermill got
    message = (
        f"WorkerDied: the worker process running this run ended without a result ({how}; out of memory?). "
        "Its finished epochs are kept: the next sweep resumes it."
    )
    return _record_failure(task, message, "", seconds)


def _on_dask(tasks: list[RunTask], scheduler: str, total: int) -> list[dict]:
    from distributed import Client, as_completed

    if not tasks:
        return []
    with Client(scheduler) as client:
        futures = [
            client.submit(execute_run, task, pure=False, key=f"digitglyph-run-{task.run_id}-{time.time_ns()}")
            for task in tasks
        ]
        slots = sum(client.nthreads().values()) or 1
        return _track((future.result() for future in as_completed(futures)), len(tasks), total, slots)


def _track(outcomes, count: int, total: int, slots: int) -> list[dict]:
    """Collect ``outcomes`` (as they finish) with a progress bar of runs done (of the whole sweep), running
    and failed."""
    from tqdm.auto import tqdm

    collected = []
    with tqdm(total=total, initial=total - count, unit="run", desc="sweep", dynamic_ncols=True) as bar:
        bar.set_postfix(running=min(slots, count), failed=0)
        for outcome in outcomes:
            collected.append(outcome)
            failed = sum(o["status"] == "failed" for o in collected)
            bar.set_postfix(running=min(slots, count - len(collected)), failed=failed, refresh=False)
            bar.update(1)
            if outcome["status"] == "failed":
                bar.write(f"run {outcome['run_id']} failed: {outcome['error']}")
    return collected


def execute_run(task: RunTask) -> dict:
    """Execute one run's notebook; never raises for a failed run, records it instead."""
    started = time.perf_counter()
    error_file = Path(task.error_file)
    try:
        execute_notebook(TRAIN_NOTEBOOK, Path(task.notebook), task.parameters, cwd=task.cwd)
    except Exception as error:  # noqa: BLE001 - any failure of one run is recorded, the sweep goes on
        return _record_failure(
            task,
            _error_message(error),
            _strip_ansi("".join(getattr(error, "traceback", None) or traceback.format_exception(error))),
            time.perf_counter() - started,
        )
    error_file.unlink(missing_ok=True)
    return {"run_id": task.run_id, "status": "done", "seconds": time.perf_counter() - started}


def _record_failure(task: RunTask, message: str, details: str, seconds: float) -> dict:
    """Write the run's ``<run-id>.error.json`` and return its "failed" outcome."""
    write_json_atomic(
        Path(task.error_file),
        {
            "run_id": task.run_id,
            "error": message,
            "parameters": task.parameters,
            "failed_notebook": str(failed_notebook(Path(task.notebook))),
            "traceback": details,
            "seconds": seconds,
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
    )
    return {"run_id": task.run_id, "status": "failed", "error": message, "seconds": seconds}


def _error_message(error: Exception) -> str:
    if getattr(error, "ename", None):  # papermill.PapermillExecutionError: the notebook's own exception
        return _strip_ansi(f"{error.ename}: {error.evalue}")
    return f"{type(error).__name__}: {error}"


def _strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


# ----------------------------------------------------------------------------- results


def collect_results(sweep: Sweep):
    """One row per run of the sweep, read from its run directory (or error file)."""
    import pandas as pd

    rows = []
    for run in sweep.runs:
        row = {"run_id": run.run_id, "status": "pending", **run.parameters}
        metrics_file = sweep.run_dir(run) / "metrics.json"
        if sweep.finished(run):
            metrics = json.loads(metrics_file.read_text())
            metrics["expected_calibration_error"] = metrics["calibration"]["expected_calibration_error"]
            row.update(status="done", **{name: metrics.get(name) for name in RESULT_METRICS})
        elif sweep.error_file(run).exists():
            row.update(status="failed", error=json.loads(sweep.error_file(run).read_text())["error"])
        row["notebook"] = os.path.relpath(sweep.notebook(run).with_suffix(".html"), sweep.results_dir)
        rows.append(row)
    frame = pd.DataFrame(rows)
    for column in RESULT_METRICS + ["error"]:
        if column not in frame:
            frame[column] = None
    return frame


def write_results(sweep: Sweep):
    """``results.csv`` and ``results.md`` under ``reports_dir/sweep/``; returns the results table."""
    results = collect_results(sweep)
    sweep.results_dir.mkdir(parents=True, exist_ok=True)
    csv_path = sweep.results_dir / "results.csv"
    write_text_atomic(csv_path, results.to_csv(index=False))
    write_text_atomic(sweep.results_dir / "results.md", results_markdown(sweep, results))
    return results


def summary_by_architecture(results):
    done = results[results["status"] == "done"]
    summary = done.groupby("architecture").agg(
        runs=("run_id", "count"),
        mean_test_accuracy=("test_accuracy", "mean"),
        min_test_accuracy=("test_accuracy", "min"),
        max_test_accuracy=("test_accuracy", "max"),
        mean_wall_time_s=("wall_time_s", "mean"),
        mean_epochs=("epochs_trained", "mean"),
        parameter_count=("parameter_count", "first"),
    )
    return summary.sort_values("mean_test_accuracy", ascending=False).reset_index()


def results_markdown(sweep: Sweep, results) -> str:
    fixed = (
        {k: v for k, v in sweep.runs[0].parameters.items() if k not in sweep.grid_names + ["seed"]}
        if sweep.runs
        else {}
    )
    counts = results["status"].value_counts().to_dict()
    summary = summary_by_architecture(results)
    lines = [
        f"# Sweep `{sweep.name}`",
        "",
        f"{len(results)} runs ({', '.join(f'{n} {status}' for status, n in counts.items())}) from "
        f"`{relative_to_root(sweep.file)}`: {' x '.join(sweep.grid_names) or 'one configuration'} x "
        f"{results['seed'].nunique()} seed(s). Every run: {', '.join(f'`{k}={v}`' for k, v in fixed.items())}.",
        "Test accuracy is on the 10,000 MNIST test images; training time is the run's own fit time.",
        "",
        "![test accuracy per architecture](../figures/sweep-accuracy-by-architecture.png)",
        "",
        "## By architecture (over seeds)",
        "",
    ]
    lines += markdown_table(
        summary.assign(
            mean_test_accuracy=summary.mean_test_accuracy.map(percent),
            min_test_accuracy=summary.min_test_accuracy.map(percent),
            max_test_accuracy=summary.max_test_accuracy.map(percent),
            mean_wall_time_s=summary.mean_wall_time_s.map("{:.0f}".format),
            mean_epochs=summary.mean_epochs.map("{:.1f}".format),
            parameter_count=summary.parameter_count.map("{:,.0f}".format),
        ).rename(columns=_spaced)
    )
    lines += ["", "## Every run", ""]
    table = results[
        ["run_id", "status", "architecture", "seed"]
        + [name for name in sweep.grid_names if name != "architecture"]
        + ["test_accuracy", "test_errors", "validation_accuracy", "wall_time_s", "epochs_trained", "notebook"]
    ].copy()
    done = table["status"] == "done"
    for column in ("test_accuracy", "validation_accuracy"):
        table[column] = [percent(v) if ok else "" for v, ok in zip(table[column], done, strict=True)]
    table["wall_time_s"] = [f"{v:.0f}" if ok else "" for v, ok in zip(table["wall_time_s"], done, strict=True)]
    for column in ("test_errors", "epochs_trained"):
        table[column] = [f"{v:.0f}" if ok else "" for v, ok in zip(table[column], done, strict=True)]
    table["notebook"] = [f"[notebook]({link})" for link in table["notebook"]]
    lines += markdown_table(table)
    failed = results[results["status"] == "failed"]
    if len(failed):
        lines += ["", "## Failed runs", ""] + markdown_table(failed[["run_id", "error"]])
    return "\n".join(lines) + "\n"


def _spaced(name: str) -> str:
    return name.replace("_", " ")


def markdown_table(frame) -> list[str]:
    lines = ["| " + " | ".join(_cell(c) for c in frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return lines


def _cell(value) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def percent(value) -> str:
    return f"{value:.2%}"


def main(args) -> int:
    return run_sweep(load_sweep(args.sweep_file), workers=args.workers, scheduler=args.scheduler)
