"""Corrections the app's users make, kept in a local SQLite file.

Each correction is one drawing with the label its author says is right: a digit 0-9, or
:data:`NOT_A_DIGIT` (10) for a drawing that is no digit at all.  With it: the stroke list (JSON),
the canvas image and the 28x28 model input (both PNG), the model's guess, the model version and a
UTC timestamp.  :meth:`CorrectionStore.add` commits (WAL journal, ``synchronous=FULL``) before it
returns, so the app confirms a correction only once it is on disk.

The file lives in ``platformdirs.user_data_dir("digitglyph")/corrections.sqlite`` unless the
``path`` argument or the ``DIGITGLYPH_CORRECTIONS`` environment variable says otherwise.  Only
:meth:`~CorrectionStore.add` creates it (and its directory); reading never creates or changes
anything, so a mistyped path is reported, and a read-only file can be read.  Nothing here sends
anything anywhere.

``CorrectionStore(path).export_arrays()`` gives the digit corrections as an MNIST-style dataset
(uint8 images, 0 background, 255 ink, and uint8 labels) that training appends to MNIST
(``TrainConfig.corrections_db``); ``export_arrays(not_a_digit=True)`` includes the not-a-digit
drawings, labelled 10.  ``python -m digitglyph.corrections export DIR`` writes the digits as MNIST's
IDX files and the not-a-digit drawings as a separate images file.

Schema 2 (this version) allows label 10; a schema-1 file (digits only) is read as it is and
upgraded in place, in one transaction, the first time a correction is added to it.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import math
import os
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ENV_VAR = "DIGITGLYPH_CORRECTIONS"
NOT_A_DIGIT = 10  # the label of a drawing its author says is not a digit
SCHEMA_VERSION = 2
READABLE_SCHEMAS = (1, 2)
COLUMNS = """
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_utc TEXT NOT NULL,
    model_version TEXT NOT NULL,
    predicted INTEGER CHECK (predicted IS NULL OR predicted BETWEEN 0 AND 9),
    confidence REAL,
    true_label INTEGER NOT NULL CHECK (true_label BETWEEN 0 AND 10),
    strokes_json TEXT NOT NULL,
    brush_width REAL,
    canvas_width INTEGER NOT NULL,
    canvas_height INTEGER NOT NULL,
    canvas_png BLOB NOT NULL,
    model_input_png BLOB NOT NULL
"""
IMAGES_FILE = "corrections-images-idx3-ubyte.gz"
LABELS_FILE = "corrections-labels-idx1-ubyte.gz"
NOT_A_DIGIT_FILE = "corrections-not-a-digit-images-idx3-ubyte.gz"


class CorrectionError(ValueError):
    """A correction that cannot be stored as given, or a store that cannot be used (the message says why)."""


def default_path() -> Path:
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("digitglyph")) / "corrections.sqlite"


# -- checking what is stored ------------------------------------------------------------------


def check_label(value, name: str, allowed: range, allow_none: bool = False) -> int | None:
    """``value`` as an int in ``allowed`` (None passes when allowed); anything else is a CorrectionError."""
    if value is None and allow_none:
        return None
    is_integer = isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)
    if not is_integer or int(value) not in allowed:
        what = "a digit 0-9" if allowed == range(10) else f"a digit 0-9 or {NOT_A_DIGIT} (not a digit)"
        raise CorrectionError(f"{name} must be {what}, got {value!r}")
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
        raise CorrectionError(
            f"{name} must be a uint8 numpy array, got {type(image).__name__}"
            + (f" of {image.dtype}" if isinstance(image, np.ndarray) else "")
        )
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


# -- the store ----------------------------------------------------------------------------------


class CorrectionStore:
    """The SQLite file of corrections (created by the first :meth:`add`)."""

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path).expanduser() if path is not None else default_path()

    @property
    def exists(self) -> bool:
        return self.path.is_file()

    # -- writing --------------------------------------------------------------------------------

    def add(
        self,
        strokes,
        canvas_rgba,
        model_input,
        predicted,
        true_label,
        model_version,
        brush_width: float | None = None,
        confidence: float | None = None,
    ) -> int:
        """Store one correction and commit it; returns its id.  ``true_label`` 0-9 or NOT_A_DIGIT."""
        true_label = check_label(true_label, "true_label", range(NOT_A_DIGIT + 1))
        predicted = check_label(predicted, "predicted", range(10), allow_none=True)
        strokes = check_strokes(strokes)
        canvas_rgba = check_image(canvas_rgba, "canvas_rgba")
        if canvas_rgba.ndim != 3 or canvas_rgba.shape[2] != 4:
            raise CorrectionError(f"canvas_rgba must be (H, W, 4) RGBA, got shape {canvas_rgba.shape}")
        model_input = check_image(model_input, "model_input", (28, 28))
        row = {
            "created_utc": datetime.now(UTC).isoformat(timespec="milliseconds"),
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
        connection = self._connect_for_writing()
        try:
            with connection:  # commits on success, rolls back on error
                cursor = connection.execute(f"INSERT INTO corrections ({columns}) VALUES ({placeholders})", row)
            return int(cursor.lastrowid)
        except sqlite3.Error as error:
            raise CorrectionError(f"cannot store a correction in {self.path}: {error}") from None
        finally:
            connection.close()

    def _connect_for_writing(self) -> sqlite3.Connection:
        """A connection to the file, created with its directory if need be, at the current schema."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise CorrectionError(f"cannot create the folder for corrections database {self.path}: {error}") from None
        try:
            connection = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        except sqlite3.Error as error:
            raise CorrectionError(f"cannot open corrections database {self.path}: {error}") from None
        try:
            connection.execute("PRAGMA synchronous=FULL")
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("BEGIN IMMEDIATE")
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                connection.execute(f"CREATE TABLE corrections ({COLUMNS})")
            elif version == 1:  # labels 0-9 only: rebuild the table with the wider CHECK, rows kept
                connection.execute(f"CREATE TABLE corrections_v2 ({COLUMNS})")
                connection.execute("INSERT INTO corrections_v2 SELECT * FROM corrections")
                connection.execute("DROP TABLE corrections")
                connection.execute("ALTER TABLE corrections_v2 RENAME TO corrections")
            elif version != SCHEMA_VERSION:
                raise CorrectionError(unknown_schema(self.path, version))
            connection.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            connection.execute("COMMIT")
        except sqlite3.Error as error:
            connection.close()
            raise CorrectionError(f"{self.path} is not a usable corrections database: {error}") from None
        except CorrectionError:
            connection.close()
            raise
        connection.isolation_level = ""  # back to Python's implicit transactions for add()
        return connection

    # -- reading (never creates or changes anything) ---------------------------------------------

    def count(self, label: int | None = None) -> int:
        """How many corrections are stored (0 when there is no file yet); only those labelled ``label`` if given."""
        if not self.exists:
            return 0
        if label is None:
            return self._query("SELECT COUNT(*) FROM corrections")[0][0]
        return self._query("SELECT COUNT(*) FROM corrections WHERE true_label = ?", (label,))[0][0]

    def records(self) -> list[dict]:
        """Every correction as a dict (images decoded to arrays, strokes to lists), oldest first."""
        names = [
            "id",
            "created_utc",
            "model_version",
            "predicted",
            "confidence",
            "true_label",
            "strokes_json",
            "brush_width",
            "canvas_png",
            "model_input_png",
        ]
        records = []
        for values in self._query(f"SELECT {', '.join(names)} FROM corrections ORDER BY id"):
            record = dict(zip(names, values, strict=True))
            record["strokes"] = json.loads(record.pop("strokes_json"))
            record["canvas_rgba"] = from_png(record.pop("canvas_png"))
            record["model_input"] = from_png(record.pop("model_input_png"))
            records.append(record)
        return records

    def export_arrays(self, not_a_digit: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """``(x, y)``: uint8 ``(N, 28, 28)`` model inputs and uint8 ``(N,)`` true labels, oldest first.

        The digit corrections only, unless ``not_a_digit``: then the not-a-digit drawings too, labelled 10.
        """
        if not self.exists:
            return np.zeros((0, 28, 28), np.uint8), np.zeros((0,), np.uint8)
        rows = self._query(
            "SELECT model_input_png, true_label FROM corrections WHERE true_label <= ? ORDER BY id",
            (NOT_A_DIGIT if not_a_digit else 9,),
        )
        x = np.zeros((len(rows), 28, 28), np.uint8)
        for index, (png, _) in enumerate(rows):
            x[index] = from_png(png)
        y = np.array([label for _, label in rows], np.uint8)
        return x, y

    def export_idx(self, directory: str | os.PathLike) -> dict:
        """Write the digits as MNIST's gzipped IDX files and the not-a-digit drawings as a separate images file.

        Returns ``{"digits": n, "not_a_digit": m, "files": [paths written]}``.  The not-a-digit file is
        written only when there are some.
        """
        x, y = self.export_arrays(not_a_digit=True)
        digits = y != NOT_A_DIGIT
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        files = [directory / IMAGES_FILE, directory / LABELS_FILE]
        write_idx(files[0], x[digits])
        write_idx(files[1], y[digits])
        if (~digits).any():
            files.append(directory / NOT_A_DIGIT_FILE)
            write_idx(files[2], x[~digits])
        return {"digits": int(digits.sum()), "not_a_digit": int((~digits).sum()), "files": files}

    def _query(self, sql: str, parameters: tuple = ()) -> list[tuple]:
        if not self.exists:
            raise CorrectionError(f"there is no corrections database at {self.path}")
        try:
            connection = sqlite3.connect(self._read_only_uri(), uri=True, timeout=10)
        except sqlite3.Error as error:
            raise CorrectionError(f"cannot open corrections database {self.path}: {error}") from None
        try:
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            if version not in READABLE_SCHEMAS:
                raise CorrectionError(unknown_schema(self.path, version))
            return connection.execute(sql, parameters).fetchall()
        except sqlite3.Error as error:
            raise CorrectionError(f"{self.path} is not a usable corrections database: {error}") from None
        finally:
            connection.close()

    def _read_only_uri(self) -> str:
        """Read-only; also ``immutable`` when no writer left a WAL file, so SQLite creates no -shm/-wal beside it."""
        from urllib.parse import quote

        wal = self.path.with_name(self.path.name + "-wal")
        return f"file:{quote(str(self.path.absolute()))}?mode=ro" + ("" if wal.exists() else "&immutable=1")


def unknown_schema(path: Path, version: int) -> str:
    return f"{path} has corrections schema {version}; this digitglyph reads schemas {list(READABLE_SCHEMAS)}"


def write_idx(path: Path, array: np.ndarray) -> None:
    """One array as MNIST's gzipped IDX file (uint8 images ``(N, 28, 28)`` or labels ``(N,)``)."""
    magic = 0x0800 + array.ndim
    header = magic.to_bytes(4, "big") + b"".join(size.to_bytes(4, "big") for size in array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + np.ascontiguousarray(array, np.uint8).tobytes())


# -- the command line ---------------------------------------------------------------------------


def main(argv=None) -> int:
    """``python -m digitglyph.corrections [--db FILE] count | export DIR``; one line and status 1 on failure."""
    parser = argparse.ArgumentParser(prog="python -m digitglyph.corrections", description=__doc__.split("\n")[0])
    parser.add_argument("--db", help=f"corrections file (default: ${ENV_VAR} or the per-user data directory)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("count", help="print how many corrections are stored")
    export = commands.add_parser("export", help="write the corrections as MNIST-style IDX files")
    export.add_argument("directory")
    args = parser.parse_args(argv)
    store = CorrectionStore(args.db)
    try:
        if not store.exists:
            raise CorrectionError(
                f"there is no corrections database at {store.path}"
                + (" (a directory)" if store.path.is_dir() else "")
                + "; the app creates it with the first correction"
            )
        if args.command == "count":
            print(store.count())
        else:
            result = store.export_idx(args.directory)
            print(
                f"{result['digits']} digit corrections -> {result['files'][0]}, {result['files'][1]}"
                + (
                    f"; {result['not_a_digit']} not-a-digit drawings -> {result['files'][2]}"
                    if result["not_a_digit"]
                    else "; no not-a-digit drawings"
                )
            )
    except (CorrectionError, OSError) as error:
        message = str(error) if isinstance(error, CorrectionError) else f"cannot export to {args.directory}: {error}"
        print(f"error: {message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
