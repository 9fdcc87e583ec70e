"""Corrections the app's users make, kept in a local SQLite file.

Each correction is one drawing with the label its author says is right: the
stroke list (JSON), the canvas image and the 28x28 model input (both PNG), the
model's guess, the true label, the model version and a UTC timestamp.
:meth:`CorrectionStore.add` commits (WAL journal, ``synchronous=FULL``) before
it returns, so the app confirms a correction only once it is on disk.

The file lives in ``platformdirs.user_data_dir("digitglyph")/corrections.sqlite``
unless the ``path`` argument or the ``DIGITGLYPH_CORRECTIONS`` environment
variable says otherwise.  Nothing here sends anything anywhere.

``CorrectionStore(path).export_arrays()`` gives an MNIST-style dataset (uint8
images, 0 background, 255 ink, and uint8 labels) that training appends to MNIST
(``TrainConfig.corrections_db``); ``python -m digitglyph.corrections export DIR``
writes it as MNIST's IDX files.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import math
import os
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ENV_VAR = "DIGITGLYPH_CORRECTIONS"
SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS corrections (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_utc TEXT NOT NULL,
    model_version TEXT NOT NULL,
    predicted INTEGER CHECK (predicted IS NULL OR predicted BETWEEN 0 AND 9),
    confidence REAL,
    true_label INTEGER NOT NULL CHECK (true_label BETWEEN 0 AND 9),
    strokes_json TEXT NOT NULL,
    brush_width REAL,
    canvas_width INTEGER NOT NULL,
    canvas_height INTEGER NOT NULL,
    canvas_png BLOB NOT NULL,
    model_input_png BLOB NOT NULL
)
"""


class CorrectionError(ValueError):
    """A correction that cannot be stored as given (the message says why)."""


def default_path() -> Path:
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("digitglyph")) / "corrections.sqlite"


def check_digit(value, name: str, allow_none: bool = False) -> int | None:
    """``value`` as an int 0-9 (None passes when allowed); anything else is a CorrectionError."""
    if value is None and allow_none:
        return None
    is_integer = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    if not is_integer or not 0 <= int(value) <= 9:
        raise CorrectionError(f"{name} must be a digit 0-9, got {value!r}")
    return int(value)


def check_strokes(strokes) -> list[list[list[float]]]:
    """Strokes as JSON-ready lists of finite ``[x, y]`` points; at least one point in all."""
    try:
        cleaned = [[[float(x), float(y)] for x, y in stroke] for stroke in strokes]
    except (TypeError, ValueError):
        raise CorrectionError("strokes must be a list of strokes, each a list of (x, y) numbers") from None
    points = [value for stroke in cleaned for point in stroke for value in point]
    if not points:
        raise CorrectionError("strokes are empty: there is no drawing to store")
    if not all(math.isfinite(value) for value in points):
        raise CorrectionError("strokes contain a coordinate that is not a finite number")
    return cleaned


def check_image(image, name: str, shape: tuple | None = None) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise CorrectionError(f"{name} must be a uint8 numpy array, got {type(image).__name__}"
                              + (f" of {image.dtype}" if isinstance(image, np.ndarray) else ""))
    if shape is not None and image.shape != shape:
        raise CorrectionError(f"{name} must have shape {shape}, got {image.shape}")
    return image


def to_png(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def from_png(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)))


class CorrectionStore:
    """The SQLite file of corrections (created on first use)."""

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path).expanduser() if path is not None else default_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = self._connect()
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA_VERSION):
                raise CorrectionError(f"{self.path} has corrections schema {version}; "
                                      f"this digitglyph reads schema {SCHEMA_VERSION}")
            with connection:
                connection.execute(SCHEMA)
                connection.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.DatabaseError as error:
            raise CorrectionError(f"{self.path} is not a usable corrections database: {error}") from None
        finally:
            connection.close()

    def _connect(self) -> sqlite3.Connection:
        try:
            connection = sqlite3.connect(self.path, timeout=10)
            connection.execute("PRAGMA synchronous=FULL")
        except sqlite3.DatabaseError as error:
            raise CorrectionError(f"cannot open corrections database {self.path}: {error}") from None
        return connection

    def add(self, strokes, canvas_rgba, model_input, predicted, true_label, model_version,
            brush_width: float | None = None, confidence: float | None = None) -> int:
        """Store one correction and commit it; returns its id."""
        true_label = check_digit(true_label, "true_label")
        predicted = check_digit(predicted, "predicted", allow_none=True)
        strokes = check_strokes(strokes)
        canvas_rgba = check_image(canvas_rgba, "canvas_rgba")
        if canvas_rgba.ndim != 3 or canvas_rgba.shape[2] != 4:
            raise CorrectionError(f"canvas_rgba must be (H, W, 4) RGBA, got shape {canvas_rgba.shape}")
        model_input = check_image(model_input, "model_input", (28, 28))
        row = {
            "created_utc": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "model_version": str(model_version),
            "predicted": predicted,
            "confidence": None if confidence is None else float(confidence),
            "true_label": true_label,
            "strokes_json": json.dumps(strokes),
            "brush_width": None if brush_width is None else float(brush_width),
            "canvas_width": canvas_rgba.shape[1],
            "canvas_height": canvas_rgba.shape[0],
            "canvas_png": to_png(canvas_rgba),
            "model_input_png": to_png(model_input),
        }
        columns = ", ".join(row)
        placeholders = ", ".join(f":{name}" for name in row)
        connection = self._connect()
        try:
            with connection:  # commits on success, rolls back on error
                cursor = connection.execute(f"INSERT INTO corrections ({columns}) VALUES ({placeholders})", row)
            return int(cursor.lastrowid)
        finally:
            connection.close()

    def count(self) -> int:
        return self._query("SELECT COUNT(*) FROM corrections")[0][0]

    def records(self) -> list[dict]:
        """Every correction as a dict (images decoded to arrays, strokes to lists), oldest first."""
        names = ["id", "created_utc", "model_version", "predicted", "confidence", "true_label",
                 "strokes_json", "brush_width", "canvas_png", "model_input_png"]
        records = []
        for values in self._query(f"SELECT {', '.join(names)} FROM corrections ORDER BY id"):
            record = dict(zip(names, values))
            record["strokes"] = json.loads(record.pop("strokes_json"))
            record["canvas_rgba"] = from_png(record.pop("canvas_png"))
            record["model_input"] = from_png(record.pop("model_input_png"))
            records.append(record)
        return records

    def export_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """``(x, y)``: uint8 ``(N, 28, 28)`` model inputs and uint8 ``(N,)`` true labels, oldest first."""
        rows = self._query("SELECT model_input_png, true_label FROM corrections ORDER BY id")
        x = np.zeros((len(rows), 28, 28), np.uint8)
        for index, (png, _) in enumerate(rows):
            x[index] = from_png(png)
        y = np.array([label for _, label in rows], np.uint8)
        return x, y

    def export_idx(self, directory: str | os.PathLike) -> tuple[Path, Path]:
        """Write the dataset as MNIST's gzipped IDX files; returns (images path, labels path)."""
        x, y = self.export_arrays()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        images_path = directory / "corrections-images-idx3-ubyte.gz"
        labels_path = directory / "corrections-labels-idx1-ubyte.gz"
        with gzip.open(images_path, "wb") as handle:
            handle.write((0x0803).to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in x.shape) + x.tobytes())
        with gzip.open(labels_path, "wb") as handle:
            handle.write((0x0801).to_bytes(4, "big") + len(y).to_bytes(4, "big") + y.tobytes())
        return images_path, labels_path

    def _query(self, sql: str) -> list[tuple]:
        connection = self._connect()
        try:
            return connection.execute(sql).fetchall()
        finally:
            connection.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m digitglyph.corrections", description=__doc__.split("\n")[0])
    parser.add_argument("--db", help=f"corrections file (default: ${ENV_VAR} or the per-user data directory)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("count", help="print how many corrections are stored")
    export = commands.add_parser("export", help="write the corrections as MNIST-style IDX files")
    export.add_argument("directory")
    args = parser.parse_args(argv)
    store = CorrectionStore(args.db)
    if args.command == "count":
        print(store.count())
    else:
        images_path, labels_path = store.export_idx(args.directory)
        print(f"{store.count()} corrections -> {images_path}, {labels_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
