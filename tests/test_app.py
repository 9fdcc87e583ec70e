"""The drawing app's handlers with real widgets and the shipped model, without a browser."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from digitglyph.corrections import NOT_A_DIGIT, CorrectionStore
from digitglyph.strokes import drawn_digits, render_strokes

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
    app.recognizer = Recognizer(recognizer.runtime, recognizer.version, threshold=1.01)
    app.recognize()
    assert app.prediction.status == "unsure" and shown_text(app) == "?" and "not sure" in app.prediction_view.value
    app.recognizer = Recognizer(recognizer.runtime, recognizer.version, threshold=1e-6)
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


def test_the_light_pages_strokes_make_the_same_strokes_without_drawing_them_back(app, digits, monkeypatch):
    """The light page inks a stroke itself and sends its points when it ends (a long one in batches on the way);
    the kernel keeps every point, recognises once per stroke and draws nothing back while the stroke comes in."""
    from digitglyph.app import MAX_POINTS_PER_MESSAGE

    drawn_back = []
    monkeypatch.setattr(app.canvas, "stroke_line", lambda *points: drawn_back.append(points))
    monkeypatch.setattr(app.canvas, "fill_circle", lambda *circle: drawn_back.append(circle))
    send = app.canvas._handle_custom_msg  # the app's handler (canvas.on_msg); ipycanvas's own ignores the event
    strokes = [*digits[0].strokes, [(10.0 + i % 200, 20.0 + i // 200) for i in range(MAX_POINTS_PER_MESSAGE + 40)]]
    for stroke in strokes:
        points = [list(point) for point in stroke]
        while len(points) > MAX_POINTS_PER_MESSAGE:  # a long stroke: its full batches on the way
            send({"event": "stroke_points", "points": points[:MAX_POINTS_PER_MESSAGE], "end": False}, [])
            points = points[MAX_POINTS_PER_MESSAGE:]
        send({"event": "stroke_points", "points": points, "end": True}, [])
    kept = [[point for index, point in enumerate(s) if index == 0 or point != s[index - 1]] for s in strokes]
    assert app.sketch.strokes == [[tuple(map(float, point)) for point in stroke] for stroke in kept]
    assert drawn_back == [] and app.recognitions == 1 + len(strokes)
    # a batch that is too long, not a list, or holds non-points keeps nothing (and does not raise) ...
    assert app.stroke_points([[20, 20]] * (MAX_POINTS_PER_MESSAGE + 1)) == 0
    assert app.stroke_points("20,20") == 0 and app.stroke_points([[1, 2, 3], "ab", None, [float("nan"), 4]]) == 0
    assert len(app.sketch.strokes) == len(strokes) and not app.sketch.drawing
    # ... points are clipped to the canvas, and only a real True ends the stroke
    assert app.stroke_points([[30, 40], [500, -5]], end="yes") == 2 and app.sketch.drawing
    assert app.stroke_points([], end=True) == 0 and not app.sketch.drawing
    assert app.sketch.strokes[-1] == [(30.0, 40.0), (280.0, 0.0)] and app.recognitions == 2 + len(strokes)


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
    (tmp_path / "a-file").write_text("not a directory")
    app.store.path = tmp_path / "a-file" / "c.sqlite"  # its folder cannot be made
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


def test_a_not_a_digit_correction_is_stored_with_label_10(app, digits):
    draw(app, digits[1].strokes)
    shown = app.prediction
    app.not_a_digit_button.click()
    record = app.store.records()[-1]
    assert record["true_label"] == NOT_A_DIGIT and record["predicted"] == shown.best_guess
    np.testing.assert_array_equal(record["model_input"], shown.model_input)
    assert app.saved_view.value.startswith("Saved as not a digit")
    assert app.count_view.value == "Corrections stored: 1"
    assert app.sketch.is_empty and app.store.export_arrays()[1].tolist() == []  # not among the digits


def test_each_status_is_worded_as_answers_words_it(app, recognizer, digits):
    from digitglyph import answers
    from digitglyph.app import prediction_html
    from digitglyph.recognizer import Prediction

    draw(app, digits[0].strokes)
    probabilities = tuple(app.prediction.probabilities)
    cases = {
        "ok": Prediction(app.prediction.digit, probabilities, app.prediction.model_input, "ok"),
        "unsure": Prediction(None, probabilities, app.prediction.model_input, "unsure"),
        "not_a_digit": Prediction(None, probabilities, app.prediction.model_input, "not_a_digit", not_a_digit=0.9),
        "empty": Prediction(None, (0.0,) * 10, None, "empty"),
    }
    for status, prediction in cases.items():
        answer = answers.Answer(status, prediction.digit, prediction.best_guess, probabilities, prediction.not_a_digit)
        head, detail = answers.wording(answer)
        text = re.sub(r"<[^>]+>", " ", prediction_html(prediction, 7)).split()
        assert text[0] == head and " ".join(text[1:]) == f"{detail} · #7", (status, text)


def send_state(widget, state: dict) -> None:
    """A widget state update as the page sends it (a comm ``update`` message)."""
    widget._handle_msg({"content": {"data": {"method": "update", "state": state, "buffer_paths": []}}, "buffers": []})


@pytest.mark.parametrize(
    "state",
    [
        {"min": -50, "max": -10, "value": -30},
        {"min": 0, "value": 0},
        {"max": 100000, "value": 100000},
        {"min": 30, "max": 35},
        {"value": float("nan")},
    ],
)
def test_brush_values_from_the_page_are_held_to_the_allowed_range(app, recognizer, digits, state):
    """Issue 17 item 10: a page setting the slider's range or value out of bounds cannot break recognition."""
    low, high = app.brush_range
    send_state(app.brush, state)
    assert (app.brush.min, app.brush.max) == (low, high)
    assert low <= app.brush.value <= high and app.sketch.brush_width == app.brush.value
    draw(app, digits[0].strokes)
    expected = recognizer.predict_canvas(render_strokes(digits[0].strokes, 280, 280, app.brush.value))
    assert_same(app.prediction, expected)
    send_state(app.brush, {"value": 25})  # the slider still works
    assert app.sketch.brush_width == 25
