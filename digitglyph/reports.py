"""Executed notebooks under ``reports/``: the ``digitglyph reports`` command.

Every report is a notebook from ``notebooks/`` run by papermill with its
parameters into ``reports/`` (plus an HTML copy).  An executed notebook keeps its
parameters in its metadata, so a report is only re-run when its parameters or
the code of its source notebook changed (or it failed last time), in the spirit
of Ploomber.  Outputs are written under a temporary name and renamed when the
run succeeded, so an interrupted or failed run never replaces a good report.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
EXPLORE, TRAIN, SWEEP = (NOTEBOOKS / name for name in ("01-explore.ipynb", "02-train.ipynb", "03-sweep.ipynb"))
KERNEL = "digitglyph"
REPORTS_DIR = Path("reports")
DEFAULT_SWEEP = Path("sweeps") / "default.yaml"

EXPLORE_PARAMETERS = {"data_dir": None, "sample_size": 3000, "examples_per_class": 10, "seed": 0,
                      "figures_dir": str(REPORTS_DIR / "figures")}
# the default small run: a few minutes on two cores (fewer steps leave BatchNorm statistics unsettled)
TRAIN_RUN = {"architecture": "glyphnet-small", "epochs": 4, "train_subset": 20000, "seed": 0}


def code_cells(notebook) -> list[str]:
    """Source of every code cell except the one papermill injects."""
    return [cell.source for cell in notebook.cells
            if cell.cell_type == "code" and "injected-parameters" not in cell.metadata.get("tags", [])]


def is_current(source: Path, target: Path, parameters: dict) -> bool:
    """``target`` is a successful execution of ``source``'s current code with exactly ``parameters``."""
    import nbformat

    if not target.exists():
        return False
    executed, original = nbformat.read(target, as_version=4), nbformat.read(source, as_version=4)
    recorded = executed.metadata.get("papermill", {}).get("parameters")
    return _normalise(recorded) == _normalise(parameters) and code_cells(executed) == code_cells(original)


def _normalise(value):
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def execute_notebook(source: Path, target: Path, parameters: dict, cwd: str | os.PathLike | None = None,
                     progress: bool = False) -> Path:
    """Run ``source`` with ``parameters`` into ``target`` (and ``target`` with ``.html``), atomically.

    On failure the executed notebook (with the error in it) is kept as ``NAME.failed.ipynb``
    and papermill's exception propagates.
    """
    import papermill

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_notebook(target)
    try:
        papermill.execute_notebook(str(source), str(partial), parameters=parameters, kernel_name=KERNEL,
                                   cwd=str(cwd or os.getcwd()), progress_bar=progress)
    except BaseException:
        keep_failed(target)
        raise
    write_html(partial, target.with_suffix(".html"))
    os.replace(partial, target)
    failed_notebook(target).unlink(missing_ok=True)
    return target


def partial_notebook(target: Path) -> Path:
    """Where :func:`execute_notebook` writes ``target`` while it runs."""
    return target.with_name(target.stem + ".partial.ipynb")


def failed_notebook(target: Path) -> Path:
    """Where a failed execution of ``target`` is kept, with its error."""
    return target.with_name(target.stem + ".failed.ipynb")


def keep_failed(target: Path) -> None:
    """Keep what an interrupted or failed execution of ``target`` had written as its failed notebook."""
    if partial_notebook(target).exists():
        os.replace(partial_notebook(target), failed_notebook(target))


def write_html(notebook: Path, html: Path) -> None:
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_filename(str(notebook))
    partial = html.with_name(html.name + ".partial")
    partial.write_text(body, encoding="utf-8")
    os.replace(partial, html)


def report(source: Path, target: Path, parameters: dict) -> bool:
    """Execute unless current; True when it ran."""
    if is_current(source, target, parameters):
        print(f"{target}: up to date")
        return False
    print(f"{target}: executing {source.name} ...", flush=True)
    execute_notebook(source, target, parameters, progress=True)
    return True


def train_parameters() -> dict:
    """The default small run, in a run directory named by its parameters (a finished run directory
    is reused by ``train``, so other parameters must never share it)."""
    from .sweep import run_id

    return {**TRAIN_RUN, "run_dir": str(Path("runs") / "reports" / run_id(TRAIN_RUN)),
            "figures_dir": str(REPORTS_DIR / "figures")}


def main(args=None) -> int:
    """``digitglyph reports``: 01-explore, 02-train (a small default run), then the default sweep and 03-sweep."""
    from . import sweep

    report(EXPLORE, REPORTS_DIR / "01-explore.ipynb", EXPLORE_PARAMETERS)
    report(TRAIN, REPORTS_DIR / "02-train.ipynb", train_parameters())
    return sweep.run_sweep(sweep.load_sweep(DEFAULT_SWEEP))


if __name__ == "__main__":
    sys.exit(main())
