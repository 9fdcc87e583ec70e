"""Executing the project's notebooks with papermill: the one place that does it, for ``reports`` and ``sweep``.

:func:`execute_notebook` runs a notebook from ``notebooks/`` with parameters into a target ``.ipynb``
(plus an ``.html`` copy), atomically: papermill writes ``NAME.partial.ipynb`` while it runs, which
becomes the target only when every cell succeeded; a failed or interrupted run is kept as
``NAME.failed.ipynb`` (with its error), so it never replaces a good result.  An executed notebook
records its parameters in its metadata, so :func:`is_current` can tell whether it is a successful
run of the source's current code with exactly those parameters (in the spirit of Ploomber).

Notebooks run on the project's Jupyter kernel (``digitglyph``, registered by ``make setup``) and,
unless told otherwise, in the repository root, so relative paths in their parameters mean the same
thing whichever directory the command was started from.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .paths import NOTEBOOKS, ROOT

KERNEL = "digitglyph"
EXPLORE, TRAIN, SWEEP = (NOTEBOOKS / name for name in ("01-explore.ipynb", "02-train.ipynb", "03-sweep.ipynb"))


def execute_notebook(
    source: Path, target: Path, parameters: dict, cwd: str | os.PathLike | None = None, progress: bool = False
) -> Path:
    """Run ``source`` with ``parameters`` into ``target`` (and ``target`` with ``.html``), atomically.

    ``cwd`` is the directory the notebook runs in (default: the repository root).  On failure the
    executed notebook (with the error in it) is kept as ``NAME.failed.ipynb`` and papermill's
    exception propagates.
    """
    import papermill

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_notebook(target)
    try:
        papermill.execute_notebook(
            str(source),
            str(partial),
            parameters=parameters,
            kernel_name=KERNEL,
            cwd=str(cwd or ROOT),
            progress_bar=progress,
        )
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
    """An HTML copy of an executed notebook, written under a temporary name and renamed."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_filename(str(notebook))
    partial = html.with_name(html.name + ".partial")
    partial.write_text(body, encoding="utf-8")
    os.replace(partial, html)


def code_cells(notebook) -> list[str]:
    """Source of every code cell except the one papermill injects."""
    return [
        cell.source
        for cell in notebook.cells
        if cell.cell_type == "code" and "injected-parameters" not in cell.metadata.get("tags", [])
    ]


def is_current(source: Path, target: Path, parameters: dict) -> bool:
    """``target`` is a successful execution of ``source``'s current code with exactly ``parameters``."""
    import nbformat

    if not target.exists():
        return False
    executed, original = nbformat.read(target, as_version=4), nbformat.read(source, as_version=4)
    recorded = executed.metadata.get("papermill", {}).get("parameters")
    return _normalise(recorded) == _normalise(parameters) and code_cells(executed) == code_cells(original)


def parameter_names(source: Path) -> set[str]:
    """The names in ``source``'s parameters cell: what papermill can set."""
    import papermill

    return set(papermill.inspect_notebook(str(source)))


def _normalise(value):
    return json.loads(json.dumps(value, sort_keys=True, default=str))
