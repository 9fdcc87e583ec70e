"""The corrections store and the drawing app's handlers, without a browser."""

from __future__ import annotations

import gzip
import json
import re
import sqlite3
import subprocess
import sys
from datetime import datetime, timezone

import numpy as np
import pytest

from digitglyph.corrections import CorrectionError, CorrectionStore, main as corrections_main
from digitglyph.strokes import drawn_digits, render_strokes

STROKES = [[(60.0, 60.0), (140.0, 40.0), (200.0, 220.0)], [(90.0, 150.0), (190.0, 150.0)]]


def sample(label: int = 7, offset: float = 0.0):
    strokes = [[(x + offset, y) for x, y in stroke] for stroke in STROKES]
    canvas = render_strokes(strokes, 280, 280, 20)
    model_input = np.zeros((28, 28), np.uint8)
    model_input[4:24, 10 + label % 5] = 255
    return dict(strokes=strokes, canvas_rgba=canvas, model_input=model_input, predicted=1, true_label=label,
                model_version="model-abc123")


# -- corrections store ------------------------------------------------------------------------


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
    assert abs((datetime.now(timezone.utc) - created).total_seconds()) < 600


def test_a_correction_is_on_disk_when_add_returns_even_if_the_process_dies(tmp_path):
    path = tmp_path / "corrections.sqlite"
    code = ("import os, numpy as np\n"
            "from digitglyph.corrections import CorrectionStore\n"
            f"store = CorrectionStore({str(path)!r})\n"
            "store.add([[(1.0, 2.0), (30.0, 40.0)]], np.zeros((50, 50, 4), np.uint8), np.zeros((28, 28), np.uint8),"
            " None, 4, 'v1')\n"
            "os._exit(0)  # no clean shutdown\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    x, y = CorrectionStore(path).export_arrays()
    assert y.tolist() == [4]


@pytest.mark.parametrize("label", [-1, 10, 3.0, "3", True, None, 2.5])
def test_bad_labels_are_refused_clearly(tmp_path, label):
    store = CorrectionStore(tmp_path / "c.sqlite")
    with pytest.raises(CorrectionError, match="true_label must be a digit 0-9"):
        store.add(**{**sample(), "true_label": label})
    assert store.count() == 0


@pytest.mark.parametrize("change, message", [
    ({"predicted": 11}, "predicted must be a digit 0-9"),
    ({"strokes": []}, "strokes are empty"),
    ({"strokes": [[(1.0, float("nan"))]]}, "not a finite number"),
    ({"strokes": "abc"}, "list of strokes"),
    ({"model_input": np.zeros((28, 27), np.uint8)}, r"model_input must have shape \(28, 28\)"),
    ({"model_input": None}, "model_input must be a uint8 numpy array"),
    ({"canvas_rgba": np.zeros((28, 28), np.uint8)}, "RGBA"),
])
def test_bad_corrections_are_refused_clearly(tmp_path, change, message):
    store = CorrectionStore(tmp_path / "c.sqlite")
    with pytest.raises(CorrectionError, match=message):
        store.add(**{**sample(), **change})
    assert store.count() == 0


def test_a_file_that_is_not_a_database_gives_a_clear_error(tmp_path):
    path = tmp_path / "c.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(CorrectionError, match="corrections database .*not a database"):
        CorrectionStore(path)


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
    for exported, item in zip(x, samples):
        np.testing.assert_array_equal(exported, item["model_input"])
    # as MNIST's own IDX files, readable by digitglyph's MNIST reader
    from digitglyph.data import _parse_idx

    assert corrections_main(["--db", str(store.path), "export", str(tmp_path / "out")]) == 0
    images = _parse_idx(gzip.decompress((tmp_path / "out/corrections-images-idx3-ubyte.gz").read_bytes()), "x", 3)
    labels = _parse_idx(gzip.decompress((tmp_path / "out/corrections-labels-idx1-ubyte.gz").read_bytes()), "y", 1)
    np.testing.assert_array_equal(images, x)
    np.testing.assert_array_equal(labels, y)


def test_training_data_includes_the_corrections(tmp_path, mnist_dir):
    from digitglyph.train import TrainConfig, load_training_data

    store = CorrectionStore(tmp_path / "c.sqlite")
    store.add(**sample(6))
    config = TrainConfig(train_subset=100, data_dir=str(mnist_dir), corrections_db=str(store.path))
    (x_fit, y_fit), _, _ = load_training_data(config)
    assert len(x_fit) == 100 + config.corrections_weight
    assert (y_fit[-config.corrections_weight:] == 6).all()
    np.testing.assert_allclose(x_fit[-1, :, :, 0], sample(6)["model_input"] / 255.0)


# -- the app's handlers (real widgets and model, no browser) ----------------------------------


@pytest.fixture
def app(recognizer, tmp_path):
    from digitglyph.app import DrawingApp

    return DrawingApp(recognizer, CorrectionStore(tmp_path / "corrections.sqlite"))


@pytest.fixture(scope="module")
def digits():
    return drawn_digits(3, seed=4, canvas_size=280, brush_range=(1 / 14, 1 / 14))


def draw(app, strokes):
    for stroke in strokes:
        app.pointer_down(*stroke[0])
        for point in stroke[1:]:
            app.pointer_move(*point)
        app.pointer_up()


def shown_text(app) -> str:
    return re.sub(r"<[^>]+>", " ", app.prediction_view.value).split(None, 1)[0]


def assert_same(prediction, expected):
    assert prediction.status == expected.status and prediction.digit == expected.digit
    np.testing.assert_allclose(prediction.probabilities, expected.probabilities, atol=1e-5)


def test_an_empty_canvas_asks_for_a_digit(app):
    assert app.prediction.status == "empty"
    assert shown_text(app) == "?" and "draw a digit" in app.prediction_view.value
    from digitglyph.corrections import from_png

    shown = from_png(bytes(app.model_input_view.value))
    assert shown.shape == (140, 140) and not shown.any()


def test_every_stroke_end_recognises_the_strokes_drawn(app, recognizer, digits):
    for digit in digits:
        app.clear()
        before = app.recognitions
        draw(app, digit.strokes)
        assert app.recognitions == before + len(digit.strokes)
        expected = recognizer.predict_canvas(render_strokes(digit.strokes, 280, 280, digit.brush_width))
        assert_same(app.prediction, expected)
        assert shown_text(app) == (str(expected.digit) if expected.status == "ok" else "?")
        bars = [float(value) for value in re.findall(r'data-probability="([0-9.]+)"', app.probabilities_view.value)]
        np.testing.assert_allclose(bars, expected.probabilities, atol=1e-5)


def test_the_prediction_text_changes_on_every_recognition(app, digits):
    draw(app, digits[0].strokes)
    first = app.prediction_view.value
    app.recognize()
    assert app.prediction_view.value != first


def test_undo_removes_the_last_stroke_and_clear_empties(app, recognizer, digits):
    strokes = max(digits, key=lambda digit: len(digit.strokes)).strokes
    draw(app, strokes)
    app.undo()
    assert app.sketch.strokes == [list(stroke) for stroke in strokes[:-1]]
    if strokes[:-1]:
        expected = recognizer.predict_canvas(render_strokes(strokes[:-1], 280, 280, 20))
        assert_same(app.prediction, expected)
    app.clear()
    assert app.sketch.is_empty and app.prediction.status == "empty" and shown_text(app) == "?"
    count = app.recognitions
    app.undo()  # nothing left to undo: harmless, no new recognition
    assert app.recognitions == count


def test_not_sure_and_sure_states(app, recognizer, digits):
    from digitglyph.recognizer import Recognizer

    draw(app, digits[0].strokes)
    app.recognizer = Recognizer(recognizer.model, recognizer.version, threshold=1.01)
    app.recognize()
    assert app.prediction.status == "unsure" and shown_text(app) == "?" and "not sure" in app.prediction_view.value
    app.recognizer = Recognizer(recognizer.model, recognizer.version, threshold=0.0)
    app.recognize()
    assert app.prediction.status == "ok" and shown_text(app) == str(app.prediction.digit)


def test_brush_width_changes_rerecognise(app, recognizer, digits):
    draw(app, digits[1].strokes)
    app.brush.value = 30
    assert app.sketch.brush_width == 30
    assert_same(app.prediction, recognizer.predict_canvas(render_strokes(digits[1].strokes, 280, 280, 30)))


def test_pointer_events_arrive_through_ipycanvas_messages(app):
    send = app.canvas._handle_frontend_event
    send(None, {"event": "mouse_down", "x": 50, "y": 60}, [])
    send(None, {"event": "mouse_move", "x": 120, "y": 200}, [])
    send(None, {"event": "mouse_up", "x": 130, "y": 210}, [])
    send(None, {"event": "touch_start", "touches": [{"x": 200, "y": 30}]}, [])
    send(None, {"event": "touch_move", "touches": [{"x": 210, "y": 250}]}, [])
    send(None, {"event": "touch_end", "touches": []}, [])
    assert app.sketch.strokes == [[(50.0, 60.0), (120.0, 200.0), (130.0, 210.0)], [(200.0, 30.0), (210.0, 250.0)]]
    assert app.recognitions == 3


def test_bad_pointer_input_is_ignored_or_clipped(app):
    app.pointer_down("not a number", None)
    app.pointer_move(float("nan"), 3)
    app.pointer_up()
    assert app.sketch.is_empty and app.recognitions == 1
    app.pointer_down(-50, 10_000)
    app.pointer_move(float("inf"), 5)
    app.pointer_move(400, 100)
    app.pointer_up()
    assert app.sketch.strokes == [[(0.0, 280.0), (280.0, 100.0)]]


def test_a_correction_is_stored_then_confirmed_and_the_canvas_cleared(app, digits):
    draw(app, digits[2].strokes)
    shown = app.prediction
    correction_id = app.save_correction(digits[2].label)
    record = app.store.records()[-1]
    assert record["id"] == correction_id and record["true_label"] == digits[2].label
    assert record["predicted"] == shown.best_guess and record["model_version"] == app.recognizer.version
    np.testing.assert_array_equal(record["model_input"], shown.model_input)
    assert json.loads(json.dumps(record["strokes"])) == [[list(p) for p in s] for s in digits[2].strokes]
    assert app.saved_view.value.startswith(f"Saved as {digits[2].label}")
    assert app.count_view.value == "Corrections stored: 1"
    assert app.sketch.is_empty and app.prediction.status == "empty"


def test_saving_an_empty_canvas_stores_nothing(app):
    assert app.save_correction(3) is None
    assert app.saved_view.value.startswith("?") and app.store.count() == 0


def test_a_failed_save_keeps_the_drawing(app, digits, tmp_path):
    draw(app, digits[0].strokes)
    app.store.path = tmp_path / "missing-directory" / "c.sqlite"  # sqlite cannot create it
    assert app.save_correction(1) is None
    assert app.saved_view.value.startswith("!") and "still here" in app.saved_view.value
    assert len(app.sketch.strokes) == len(digits[0].strokes)


def test_a_browser_view_that_connects_late_gets_the_whole_drawing(app, monkeypatch):
    """ipycanvas drops draw commands sent before a view exists; client_ready redraws from the strokes."""
    draw(app, [[(50.0, 50.0), (100.0, 120.0)], [(200.0, 60.0)], [(30.0, 200.0), (60.0, 230.0), (90.0, 200.0)]])
    lines, dots = [], []
    monkeypatch.setattr(app.canvas, "stroke_lines", lambda points: lines.append([tuple(p) for p in points]))
    monkeypatch.setattr(app.canvas, "fill_circle", lambda x, y, radius: dots.append((x, y, radius)))
    app.canvas._handle_frontend_event(None, {"event": "client_ready"}, [])
    assert lines == [app.sketch.strokes[0], app.sketch.strokes[2]]
    assert dots == [(200.0, 60.0, app.sketch.brush_width / 2)]
