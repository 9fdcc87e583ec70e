"""The corrections store and its command line: what is stored, what reading never does, and one clear
line (with a non-zero exit) for every way the command can fail (issue 17 item 6)."""

from __future__ import annotations

import gzip
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime

import numpy as np
import pytest

from digitglyph.corrections import (
    IMAGES_FILE,
    LABELS_FILE,
    NOT_A_DIGIT,
    NOT_A_DIGIT_FILE,
    CorrectionError,
    CorrectionStore,
)
from digitglyph.corrections import main as corrections_main
from digitglyph.strokes import render_strokes

STROKES = [[(60.0, 60.0), (140.0, 40.0), (200.0, 220.0)], [(90.0, 150.0), (190.0, 150.0)]]


def sample(label: int = 7, offset: float = 0.0):
    strokes = [[(x + offset, y) for x, y in stroke] for stroke in STROKES]
    canvas = render_strokes(strokes, 280, 280, 20)
    model_input = np.zeros((28, 28), np.uint8)
    model_input[4:24, 10 + label % 5] = 255
    return dict(
        strokes=strokes,
        canvas_rgba=canvas,
        model_input=model_input,
        predicted=1,
        true_label=label,
        model_version="model-abc123",
    )


def read_idx(path):
    from digitglyph.data.mnist import _parse_idx

    data = gzip.decompress(path.read_bytes())
    return _parse_idx(data, path.name, data[3])


def test_add_commits_and_survives_reopening(tmp_path):
    path = tmp_path / "corrections.sqlite"
    store = CorrectionStore(path)
    first = store.add(**sample(7), brush_width=20, confidence=0.42)
    second = store.add(**sample(3, offset=5))
    assert second > first
    # another connection (as another process would) sees both rows: add() committed
    with sqlite3.connect(path) as other:
        assert other.execute("SELECT COUNT(*) FROM corrections").fetchone()[0] == 2
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    reopened = CorrectionStore(path)
    assert reopened.count() == 2
    record = reopened.records()[0]
    expected = sample(7)
    assert record["true_label"] == 7 and record["predicted"] == 1 and record["model_version"] == "model-abc123"
    assert record["brush_width"] == 20 and record["confidence"] == pytest.approx(0.42)
    assert record["strokes"] == [[list(point) for point in stroke] for stroke in expected["strokes"]]
    np.testing.assert_array_equal(record["canvas_rgba"], expected["canvas_rgba"])
    np.testing.assert_array_equal(record["model_input"], expected["model_input"])
    created = datetime.fromisoformat(record["created_utc"])
    assert created.utcoffset().total_seconds() == 0
    assert abs((datetime.now(UTC) - created).total_seconds()) < 600


def test_a_correction_is_on_disk_when_add_returns_even_if_the_process_dies(tmp_path):
    path = tmp_path / "corrections.sqlite"
    code = (
        "import os, numpy as np\n"
        "from digitglyph.corrections import CorrectionStore\n"
        f"store = CorrectionStore({str(path)!r})\n"
        "store.add([[(1.0, 2.0), (30.0, 40.0)]], np.zeros((50, 50, 4), np.uint8), np.zeros((28, 28), np.uint8),"
        " None, 4, 'v1')\n"
        "os._exit(0)  # no clean shutdown\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    x, y = CorrectionStore(path).export_arrays()
    assert y.tolist() == [4]


@pytest.mark.parametrize("label", [-1, 11, 3.0, "3", True, None, 2.5])
def test_bad_labels_are_refused_clearly(tmp_path, label):
    store = CorrectionStore(tmp_path / "c.sqlite")
    with pytest.raises(CorrectionError, match="true_label must be a digit 0-9 or 10"):
        store.add(**{**sample(), "true_label": label})
    assert store.count() == 0


@pytest.mark.parametrize(
    "change, message",
    [
        ({"predicted": 11}, "predicted must be a digit 0-9"),
        ({"strokes": []}, "strokes are empty"),
        ({"strokes": [[(1.0, float("nan"))]]}, "not a finite number"),
        ({"strokes": "abc"}, "list of strokes"),
        ({"model_input": np.zeros((28, 27), np.uint8)}, r"model_input must have shape \(28, 28\)"),
        ({"model_input": None}, "model_input must be a uint8 numpy array"),
        ({"canvas_rgba": np.zeros((28, 28), np.uint8)}, "RGBA"),
    ],
)
def test_bad_corrections_are_refused_clearly(tmp_path, change, message):
    store = CorrectionStore(tmp_path / "c.sqlite")
    with pytest.raises(CorrectionError, match=message):
        store.add(**{**sample(), **change})
    assert store.count() == 0


def test_a_file_that_is_not_a_database_gives_a_clear_error(tmp_path):
    path = tmp_path / "c.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    for use in (CorrectionStore(path).count, lambda: CorrectionStore(path).add(**sample())):
        with pytest.raises(CorrectionError, match="corrections database: file is not a database"):
            use()


def test_default_path_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("DIGITGLYPH_CORRECTIONS", str(tmp_path / "env.sqlite"))
    assert CorrectionStore().path == tmp_path / "env.sqlite"
    assert CorrectionStore(tmp_path / "arg.sqlite").path == tmp_path / "arg.sqlite"


def test_export_is_an_mnist_style_dataset(tmp_path):
    store = CorrectionStore(tmp_path / "c.sqlite")
    x, y = store.export_arrays()
    assert x.shape == (0, 28, 28) and y.shape == (0,)
    samples = [sample(label) for label in (5, 0, 9)]
    for item in samples:
        store.add(**item)
    x, y = store.export_arrays()
    assert x.dtype == np.uint8 and y.dtype == np.uint8 and x.shape == (3, 28, 28)
    assert y.tolist() == [5, 0, 9]
    for exported, item in zip(x, samples, strict=True):
        np.testing.assert_array_equal(exported, item["model_input"])
    # as MNIST's own IDX files, readable by digitglyph's MNIST reader
    assert corrections_main(["--db", str(store.path), "export", str(tmp_path / "out")]) == 0
    images, labels = read_idx(tmp_path / "out" / IMAGES_FILE), read_idx(tmp_path / "out" / LABELS_FILE)
    np.testing.assert_array_equal(images, x)
    np.testing.assert_array_equal(labels, y)
    assert not (tmp_path / "out" / NOT_A_DIGIT_FILE).exists()


# -- "not a digit" ----------------------------------------------------------------------------------


def test_a_not_a_digit_correction_is_kept_apart_from_the_digits(tmp_path, capsys):
    store = CorrectionStore(tmp_path / "c.sqlite")
    store.add(**sample(4))
    scribble = sample(NOT_A_DIGIT, offset=3)
    store.add(**scribble)
    assert store.count() == 2 and store.count(NOT_A_DIGIT) == 1
    assert store.records()[1]["true_label"] == NOT_A_DIGIT
    x, y = store.export_arrays()  # what training appends to MNIST: digits only
    assert y.tolist() == [4]
    x_all, y_all = store.export_arrays(not_a_digit=True)
    assert y_all.tolist() == [4, NOT_A_DIGIT]
    np.testing.assert_array_equal(x_all[1], scribble["model_input"])

    assert corrections_main(["--db", str(store.path), "export", str(tmp_path / "out")]) == 0
    assert read_idx(tmp_path / "out" / LABELS_FILE).tolist() == [4]
    np.testing.assert_array_equal(read_idx(tmp_path / "out" / NOT_A_DIGIT_FILE), x_all[1:])
    printed = capsys.readouterr().out
    assert "1 digit corrections" in printed and "1 not-a-digit drawings" in printed


def test_a_schema_1_file_is_read_as_it_is_and_upgraded_by_the_first_add(tmp_path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as old:  # the previous version's table: labels 0-9 only
        old.execute("""CREATE TABLE corrections (
            id INTEGER PRIMARY KEY AUTOINCREMENT, created_utc TEXT NOT NULL, model_version TEXT NOT NULL,
            predicted INTEGER CHECK (predicted IS NULL OR predicted BETWEEN 0 AND 9), confidence REAL,
            true_label INTEGER NOT NULL CHECK (true_label BETWEEN 0 AND 9), strokes_json TEXT NOT NULL,
            brush_width REAL, canvas_width INTEGER NOT NULL, canvas_height INTEGER NOT NULL,
            canvas_png BLOB NOT NULL, model_input_png BLOB NOT NULL)""")
        old.execute("PRAGMA user_version=1")
    old.close()
    CorrectionStore(path).add(**sample(3))  # an old version's row ...
    with sqlite3.connect(path) as old:
        old.execute("PRAGMA user_version=1")  # ... in an old version's file
    old.close()
    before = path.read_bytes()
    store = CorrectionStore(path)
    assert store.count() == 1 and path.read_bytes() == before  # read as it is, not changed
    store.add(**sample(NOT_A_DIGIT))
    assert [record["true_label"] for record in store.records()] == [3, NOT_A_DIGIT]


# -- reading creates and changes nothing -----------------------------------------------------------


def test_reading_creates_no_file_and_a_missing_store_counts_zero(tmp_path):
    missing = CorrectionStore(tmp_path / "no" / "such" / "c.sqlite")
    assert missing.count() == 0 and missing.export_arrays()[1].shape == (0,)
    assert list(tmp_path.iterdir()) == []
    store = CorrectionStore(tmp_path / "c.sqlite")
    store.add(**sample(2))
    files = sorted(tmp_path.iterdir())
    store.count(), store.records(), store.export_arrays()
    assert sorted(tmp_path.iterdir()) == files  # no -wal / -shm left beside it by a reader
