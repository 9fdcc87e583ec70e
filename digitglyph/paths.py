"""Where the repository's folders are, resolved from this package's location (never the working directory).

So ``digitglyph reports``, the sweep runner, the exporter and the tests find the same folders whichever
directory they are started from.  A path a person passes on a command line or in a sweep file is theirs
to mean; a path the package itself needs comes from here.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
ROOT = PACKAGE.parent
MODELS = ROOT / "models"
REPORTS = ROOT / "reports"
FIGURES = REPORTS / "figures"
NOTEBOOKS = ROOT / "notebooks"
SWEEPS = ROOT / "sweeps"
RUNS = ROOT / "runs"
WEB = ROOT / "web"
TESTS = ROOT / "tests"
VECTORS = TESTS / "vectors"


def from_root(path: str | Path) -> Path:
    """``path`` as given when absolute, else relative to the repository root."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else ROOT / path


def relative_to_root(path: str | Path) -> str:
    """``path`` written relative to the repository root when it lies inside it, else absolute: what the
    package records (notebook parameters, results tables), so records do not depend on where a clone lives."""
    path = Path(path).expanduser().absolute()
    try:
        return path.relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)
