"""Executed notebooks under ``reports/``: the ``digitglyph reports`` command.

Every report is a notebook from ``notebooks/`` run by papermill with its parameters into
``reports/`` (plus an HTML copy), by :mod:`digitglyph.notebooks`: a report is only re-run when
its parameters or the code of its source notebook changed (or it failed last time), and an
interrupted or failed run never replaces a good report.  Paths in the parameters are relative to
the repository root, where the notebooks run, so the reports are the same from any directory.
"""

from __future__ import annotations

import sys
from pathlib import Path

from . import recipes, sweep
from .notebooks import EXPLORE, TRAIN, execute_notebook, is_current
from .paths import FIGURES, REPORTS, RUNS, SWEEPS, relative_to_root

DEFAULT_SWEEP = SWEEPS / "default.yaml"
EXPLORE_PARAMETERS = {
    "data_dir": None,
    "sample_size": 3000,
    "examples_per_class": 10,
    "seed": 0,
    "figures_dir": relative_to_root(FIGURES),
}
TRAIN_RECIPE = "report"  # recipes/report.yaml: the small run 02-train's report shows


def report(source: Path, target: Path, parameters: dict) -> bool:
    """Execute unless current; True when it ran."""
    if is_current(source, target, parameters):
        print(f"{target}: up to date")
        return False
    print(f"{target}: executing {source.name} ...", flush=True)
    execute_notebook(source, target, parameters, progress=True)
    return True


def train_parameters() -> dict:
    """The report's run (its recipe), in a run directory named by the recipe's values (a finished run
    directory is reused by ``train``, so other values must never share it)."""
    values = {"seed": 0, **recipes.load(TRAIN_RECIPE)}
    return {
        "recipe": TRAIN_RECIPE,
        "run_dir": relative_to_root(RUNS / "reports" / sweep.run_id(values)),
        "figures_dir": relative_to_root(FIGURES),
    }


def main(args=None) -> int:
    """``digitglyph reports``: 01-explore, 02-train (the report recipe), then the default sweep and 03-sweep."""
    report(EXPLORE, REPORTS / "01-explore.ipynb", EXPLORE_PARAMETERS)
    report(TRAIN, REPORTS / "02-train.ipynb", train_parameters())
    return sweep.run_sweep(sweep.load_sweep(DEFAULT_SWEEP))


if __name__ == "__main__":
    sys.exit(main())
