"""The Voila drawing app (``notebooks/app.ipynb``, ``make app``): draw a digit, see it recognised, correct it.

The page holds an ipycanvas canvas, a brush-width slider, undo and clear
buttons, the prediction (large digit, one probability bar per digit, the 28x28
model input) and ten "it was N" buttons that store a correction.

Drawing happens in the kernel: ipycanvas reports pointer positions in canvas
pixels (it scales by the canvas element's CSS size, so ink lands under the
pointer at any CSS size and device pixel ratio), :class:`Sketch` keeps the
strokes, and the canvas is drawn from them.  At the end of every stroke the
strokes are rendered again with :func:`digitglyph.strokes.render_strokes` and
recognised, so the prediction never depends on reading the image back from the
browser.  When a browser view connects (``client_ready``) the canvas is redrawn
from the strokes, so nothing drawn before the page was ready is lost.

Stable hooks (CSS classes) for tests and tools:

=============================  ==========================================================
``digitglyph-canvas``          the drawing canvas
``digitglyph-prediction``      text starts with the digit, or ``?`` ("not sure", "draw a
                               digit"); it ends with ``#N``, the recognition counter, so it
                               changes on every recognition
``digitglyph-probabilities``   ten ``digitglyph-bar`` rows with ``data-digit``,
                               ``data-probability`` and ``data-recognition`` (the counter N
                               of the recognition they show: they arrive in a message of their own)
``digitglyph-model-input``     the 28x28 model input (PNG, upscaled 5x, nearest)
``digitglyph-brush``           brush width slider (canvas pixels)
``digitglyph-undo``            undo the last stroke
``digitglyph-clear``           clear the drawing
``digitglyph-correct-N``       N = 0..9: store the drawing as a correction labelled N, then
                               clear the canvas
``digitglyph-correct-not-a-digit``  store the drawing as "not a digit" (label 10), then clear
``digitglyph-saved``           the outcome of the last correction: starts with ``Saved``
                               only after the database committed it
``digitglyph-count``           "Corrections stored: N"
=============================  ==========================================================

The answer is worded by :func:`digitglyph.answers.wording`, as on the web page.

Two pages speak to this kernel (``digitglyph.serve --frontend``): Voila's JupyterLab frontend sends one
ipycanvas ``mouse_move`` per pointer move and the kernel draws each segment back; the light page
(``share/jupyter/voila/templates/digitglyph/static/digitglyph-widgets.js``) inks the stroke itself and sends its
points when it ends, in one message (``{"event": "stroke_points", "points": [[x, y], ...], "end": true}``; a stroke
longer than :data:`MAX_POINTS_PER_MESSAGE` points sends each full batch on the way with ``"end": false``), so a
stroke costs the server one message in and the answer out instead of two per move.  Either way the kernel keeps
every point and redraws the canvas from the strokes when the stroke ends.

The page can only send pointer positions, button clicks and widget values; nothing it sends is
executed (Voila itself refuses execute requests from the page), pointer positions are clipped to
the canvas, and the brush slider's range and value are held to :data:`BRUSH_RANGE` whatever the
page sets (:meth:`DrawingApp.check_brush`).
"""

from __future__ import annotations

import html
import math

import numpy as np

from . import answers
from .corrections import NOT_A_DIGIT, CorrectionError, CorrectionStore, to_png
from .strokes import render_strokes

CANVAS_SIZE = 280  # canvas pixels; the preprocessing spec's reference size
CANVAS_CSS_SIZE = "336px"  # on screen; the pointer positions are scaled back to canvas pixels
DEFAULT_BRUSH = CANVAS_SIZE // 14  # preprocess.py: about 1/14 of the canvas matches MNIST
BRUSH_RANGE = (CANVAS_SIZE // 28, CANVAS_SIZE // 8)  # canvas pixels, at CANVAS_SIZE
MODEL_INPUT_ZOOM = 5
MAX_STROKES = 200
MAX_POINTS_PER_STROKE = 5000
MAX_POINTS_PER_MESSAGE = 256  # a stroke's points in one message from the light page; a longer batch is ignored
STYLE = """<style>
.digitglyph-canvas { touch-action: none; cursor: crosshair; border: 0; padding: 0; background: #fff; }
.digitglyph-pad { border: 2px solid #888; border-radius: 4px; width: fit-content; }
.digitglyph-prediction .digit { font-size: 96px; line-height: 1; font-weight: 700; }
.digitglyph-prediction .unsure { font-size: 96px; line-height: 1; color: #999; }
.digitglyph-prediction .detail { font-size: 16px; color: #555; }
.digitglyph-bar { display: flex; align-items: center; gap: 6px; font: 13px monospace; height: 18px; }
.digitglyph-bar .track { width: 160px; height: 12px; background: #eee; }
.digitglyph-bar .fill { height: 12px; background: #4a7bd0; }
.digitglyph-bar.top .fill { background: #d0522a; }
.digitglyph-model-input { image-rendering: pixelated; border: 1px solid #888; }
</style>"""


class Sketch:
    """A drawing as data: strokes (lists of ``(x, y)`` canvas pixels) drawn with one brush width."""

    def __init__(self, width: int = CANVAS_SIZE, height: int = CANVAS_SIZE, brush_width: float = DEFAULT_BRUSH):
        self.width, self.height, self.brush_width = width, height, brush_width
        self.strokes: list[list[tuple[float, float]]] = []
        self.drawing = False  # a stroke is under way (pointer down)

    @property
    def is_empty(self) -> bool:
        return not self.strokes

    def point(self, x, y) -> tuple[float, float] | None:
        """A reported position as a point on the canvas, or None if it is not a finite number."""
        try:
            x, y = float(x), float(y)
        except (TypeError, ValueError):
            return None
        if not (math.isfinite(x) and math.isfinite(y)):
            return None
        return min(max(x, 0.0), float(self.width)), min(max(y, 0.0), float(self.height))

    def begin(self, x, y) -> bool:
        """Pointer down: start a stroke.  False when the position is unusable or the drawing is full."""
        self.end()
        point = self.point(x, y)
        if point is None or len(self.strokes) >= MAX_STROKES:
            return False
        self.strokes.append([point])
        self.drawing = True
        return True

    def extend(self, x, y) -> tuple[float, float] | None:
        """Pointer move: add a point to the stroke under way; returns the previous point if added."""
        point = self.point(x, y)
        if not self.drawing or point is None:
            return None
        stroke = self.strokes[-1]
        if point == stroke[-1] or len(stroke) >= MAX_POINTS_PER_STROKE:
            return None
        stroke.append(point)
        return stroke[-2]

    def end(self) -> bool:
        """Pointer up: finish the stroke under way; False if there was none."""
        was_drawing, self.drawing = self.drawing, False
        return was_drawing

    def undo(self) -> bool:
        self.end()
        if not self.strokes:
            return False
        self.strokes.pop()
        return True

    def clear(self) -> None:
        self.end()
        self.strokes = []

    def render(self) -> np.ndarray:
        """The drawing as an RGBA canvas image (black ink, transparent background)."""
        return render_strokes(self.strokes, self.width, self.height, self.brush_width)


def answer_of(prediction) -> answers.Answer:
    """The :class:`digitglyph.answers.Answer` a Prediction stands for (what both apps word)."""
    return answers.Answer(
        prediction.status,
        prediction.digit,
        prediction.best_guess,
        tuple(prediction.probabilities),
        prediction.not_a_digit,
    )


def prediction_html(prediction, counter: int) -> str:
    """The large digit (or ``?`` / a cross) with the line under it and the recognition counter."""
    head, detail = answers.wording(answer_of(prediction))
    head_class = "digit" if prediction.status == "ok" else "unsure"
    return (
        f'<span class="{head_class}">{html.escape(head)}</span>'
        f'<div class="detail">{html.escape(detail)} · #{counter}</div>'
    )


def probabilities_html(prediction, counter: int) -> str:
    top = prediction.best_guess
    rows = []
    for digit, probability in enumerate(prediction.probabilities):
        classes = "digitglyph-bar top" if digit == top else "digitglyph-bar"
        rows.append(
            f'<div class="{classes}" data-digit="{digit}" data-probability="{probability:.6f}" '
            f'data-recognition="{counter}">'
            f'<span>{digit}</span><div class="track"><div class="fill" style="width:{probability:.1%}">'
            f"</div></div><span>{probability:6.1%}</span></div>"
        )
    return "".join(rows)


def model_input_png(model_input: np.ndarray | None) -> bytes:
    image = np.zeros((28, 28), np.uint8) if model_input is None else model_input
    return to_png(image.repeat(MODEL_INPUT_ZOOM, axis=0).repeat(MODEL_INPUT_ZOOM, axis=1))


class DrawingApp:
    """The widgets of one page (one kernel) and their handlers."""

    def __init__(self, recognizer, store: CorrectionStore, size: int = CANVAS_SIZE):
        import ipywidgets as widgets
        from ipycanvas import Canvas
        from ipywidgets.widgets.widget_string import HTMLStyle  # not exported by ipywidgets 8.1

        self.recognizer, self.store = recognizer, store
        self.sketch = Sketch(size, size, DEFAULT_BRUSH * size / CANVAS_SIZE)
        self.recognitions = 0
        self.image = self.prediction = None  # set by recognize(): the rendered strokes and what the model made of them
        # Widgets that look alike share one layout and one style (each is a widget of its own that the kernel, the
        # server and the page handle): 39 widgets a page instead of 84, so a page and its kernel start sooner.
        self.plain_layout, self.digit_layout = widgets.Layout(), widgets.Layout(width="40px")
        self.button_style, self.html_style = widgets.ButtonStyle(), HTMLStyle()

        self.canvas = Canvas(
            width=size, height=size, layout=widgets.Layout(width=CANVAS_CSS_SIZE, height=CANVAS_CSS_SIZE)
        )
        self.canvas.add_class("digitglyph-canvas")
        self.brush_range = (BRUSH_RANGE[0] * size // CANVAS_SIZE, BRUSH_RANGE[1] * size // CANVAS_SIZE)
        self.brush = widgets.IntSlider(
            value=round(self.sketch.brush_width),
            min=self.brush_range[0],
            max=self.brush_range[1],
            description="Brush",
            layout=self.plain_layout,
        )
        self.brush.add_class("digitglyph-brush")
        self.undo_button = self._button("Undo", "digitglyph-undo", "Remove the last stroke", self.undo)
        self.clear_button = self._button("Clear", "digitglyph-clear", "Start again", self.clear)
        self.prediction_view = self._html("digitglyph-prediction")
        self.probabilities_view = self._html("digitglyph-probabilities")
        self.model_input_view = widgets.Image(
            format="png", width=28 * MODEL_INPUT_ZOOM, height=28 * MODEL_INPUT_ZOOM, layout=self.plain_layout
        )
        self.model_input_view.add_class("digitglyph-model-input")
        self.correct_buttons = [
            self._button(
                str(digit),
                f"digitglyph-correct-{digit}",
                f"Store this drawing as a {digit}",
                lambda digit=digit: self.save_correction(digit),
                self.digit_layout,
            )
            for digit in range(10)
        ]
        self.not_a_digit_button = self._button(
            "Not a digit",
            "digitglyph-correct-not-a-digit",
            "Store this drawing as not a digit",
            lambda: self.save_correction(NOT_A_DIGIT),
        )
        self.saved_view = self._html("digitglyph-saved")
        self.count_view = self._html("digitglyph-count")

        self._connect_events()
        self.show_count()
        self.recognize()
        self.widget = self._layout()

    # -- building -----------------------------------------------------------------------------

    def _html(self, css_class: str | None = None, value: str = ""):
        import ipywidgets as widgets

        view = widgets.HTML(value, layout=self.plain_layout, style=self.html_style)
        if css_class:
            view.add_class(css_class)
        return view

    def _box(self, box_class, children, layout=None):
        return box_class(children, layout=layout or self.plain_layout)

    def _button(self, text: str, css_class: str, tooltip: str, handler, layout=None):
        import ipywidgets as widgets

        button = widgets.Button(
            description=text, tooltip=tooltip, layout=layout or self.plain_layout, style=self.button_style
        )
        button.add_class(css_class)
        button.on_click(lambda _: handler())
        return button

    def _connect_events(self) -> None:
        canvas = self.canvas
        canvas.on_client_ready(self.redraw)
        canvas.on_mouse_down(self.pointer_down)
        canvas.on_mouse_move(self.pointer_move)
        canvas.on_mouse_up(self.pointer_up)
        canvas.on_mouse_out(self.pointer_up)
        canvas.on_touch_start(lambda touches: touches and self.pointer_down(*touches[0]))
        canvas.on_touch_move(lambda touches: touches and self.pointer_move(*touches[0]))
        canvas.on_touch_end(lambda touches: self.pointer_up())
        canvas.on_touch_cancel(lambda touches: self.pointer_up())
        canvas.on_msg(self._page_message)  # the light page's batched moves (ipycanvas ignores the event)
        self.brush.observe(lambda change: self.check_brush(), names=["value", "min", "max"])

    def _layout(self):
        import ipywidgets as widgets

        pad = self._box(widgets.Box, [self.canvas])
        pad.add_class("digitglyph-pad")
        drawing = self._box(
            widgets.VBox, [pad, self.brush, self._box(widgets.HBox, [self.undo_button, self.clear_button])]
        )
        result = self._box(
            widgets.VBox,
            [
                self.prediction_view,
                self.probabilities_view,
                self._html(value="Model input (28x28):"),
                self.model_input_view,
            ],
            layout=widgets.Layout(margin="0 0 0 32px"),
        )
        corrections = self._box(
            widgets.VBox,
            [
                self._html(value="Wrong? Click the digit you drew (or Not a digit) to store a correction:"),
                self._box(widgets.HBox, self.correct_buttons + [self.not_a_digit_button]),
                self.saved_view,
                self.count_view,
            ],
        )
        return self._box(
            widgets.VBox,
            [
                self._html(value=STYLE + "<h2>DigitGlyph: draw a digit</h2>"),
                self._box(widgets.HBox, [drawing, result]),
                corrections,
            ],
        )

    # -- pointer ------------------------------------------------------------------------------

    def pointer_down(self, x, y) -> None:
        if self.sketch.begin(x, y):
            x, y = self.sketch.strokes[-1][0]
            self.canvas.fill_circle(x, y, self.sketch.brush_width / 2)

    def pointer_move(self, x, y) -> None:
        previous = self.sketch.extend(x, y)
        if previous is not None:
            self.canvas.stroke_line(*previous, *self.sketch.strokes[-1][-1])

    def stroke_points(self, points, end=False) -> int:
        """Points of a stroke from the light page, which has inked them already: kept, not drawn back.  The first
        point when no stroke is under way begins one; ``end`` (True) then ends it and recognises the drawing, so a
        stroke of up to :data:`MAX_POINTS_PER_MESSAGE` points is one message.  Returns how many points were kept: a
        batch that is not a list of at most MAX_POINTS_PER_MESSAGE ``[x, y]`` pairs keeps none (``end`` still ends)."""
        kept = 0
        if isinstance(points, list) and len(points) <= MAX_POINTS_PER_MESSAGE:
            for point in points:
                if not (isinstance(point, (list, tuple)) and len(point) == 2):
                    continue
                if self.sketch.drawing:
                    kept += self.sketch.extend(*point) is not None
                else:
                    kept += self.sketch.begin(*point)
        if end is True:
            self.pointer_up()
        return kept

    def _page_message(self, _widget, content, _buffers) -> None:
        if isinstance(content, dict) and content.get("event") == "stroke_points":
            self.stroke_points(content.get("points"), content.get("end"))

    def pointer_up(self, x=None, y=None) -> None:
        if x is not None:
            self.pointer_move(x, y)
        if self.sketch.end():
            self.recognize()  # first: the prediction is what the user waits for
            self.redraw()

    # -- drawing and recognition -------------------------------------------------------------

    def redraw(self) -> None:
        """Draw the canvas from the strokes (after a stroke, undo, clear, brush change, new view)."""
        from ipycanvas import hold_canvas

        canvas, width = self.canvas, self.sketch.brush_width
        with hold_canvas():
            canvas.clear()
            canvas.fill_style = canvas.stroke_style = "black"
            canvas.line_width, canvas.line_cap, canvas.line_join = width, "round", "round"
            for stroke in self.sketch.strokes:
                if len(stroke) == 1:
                    canvas.fill_circle(*stroke[0], width / 2)
                else:
                    canvas.stroke_lines(stroke)

    def recognize(self):
        """Render the strokes, predict, and show the result; returns the Prediction."""
        self.image = self.sketch.render()
        self.prediction = self.recognizer.predict_canvas(self.image)
        self.recognitions += 1
        self.prediction_view.value = prediction_html(self.prediction, self.recognitions)
        self.probabilities_view.value = probabilities_html(self.prediction, self.recognitions)
        self.model_input_view.value = model_input_png(self.prediction.model_input)
        return self.prediction

    def undo(self) -> None:
        if self.sketch.undo():
            self.redraw()
            self.recognize()

    def clear(self) -> None:
        self.sketch.clear()
        self.redraw()
        self.recognize()

    def check_brush(self) -> None:
        """The slider's state comes from the page: hold its range to ``brush_range`` and its value inside it
        (a negative, huge or reversed range set from the page is put back), then use the value."""
        low, high = self.brush_range
        value = self.brush.value
        value = min(max(int(value), low), high) if isinstance(value, int) else round(self.sketch.brush_width)
        if (self.brush.min, self.brush.max, self.brush.value) != (low, high, value):
            with self.brush.hold_trait_notifications():  # cross-validation once all three are set
                self.brush.min, self.brush.max, self.brush.value = low, high, value
        if value != self.sketch.brush_width:
            self.set_brush(value)

    def set_brush(self, width) -> None:
        self.sketch.brush_width = float(width)
        self.redraw()
        if not self.sketch.is_empty:
            self.recognize()

    # -- corrections ---------------------------------------------------------------------------

    def save_correction(self, label: int) -> int | None:
        """Store the drawing labelled ``label``; confirm only after the commit, then clear.  Returns the id."""
        if self.sketch.end():
            self.redraw()
            self.recognize()
        if self.prediction.model_input is None:
            self.saved_view.value = "? Nothing to save: draw a digit first."
            return None
        try:
            correction_id = self.store.add(
                self.sketch.strokes,
                self.image,
                self.prediction.model_input,
                self.prediction.best_guess,
                label,
                self.recognizer.version,
                brush_width=self.sketch.brush_width,
                confidence=self.prediction.confidence,
            )
        except CorrectionError as error:
            self.saved_view.value = html.escape(f"! Not saved, your drawing is still here: {error}")
            return None
        name = "not a digit" if label == NOT_A_DIGIT else str(label)
        self.saved_view.value = f"Saved as {name} (correction {correction_id}). Draw the next digit."
        self.show_count()
        self.clear()
        return correction_id

    def show_count(self) -> None:
        try:
            self.count_view.value = f"Corrections stored: {self.store.count()}"
        except CorrectionError as error:
            self.count_view.value = html.escape(f"Corrections stored: unknown ({error})")


def warm_up(recognizer) -> None:
    """Trace the model once so that the first stroke is recognised as fast as the others."""
    recognizer.predict_canvas(render_strokes([[(90.0, 60.0), (190.0, 220.0)]], CANVAS_SIZE, CANVAS_SIZE, DEFAULT_BRUSH))


def build(model_path=None, corrections_path=None) -> DrawingApp:
    """The app with the shipped (or given) model and the user's (or given) corrections file."""
    from .recognizer import Recognizer

    recognizer = Recognizer.load(model_path)
    warm_up(recognizer)
    return DrawingApp(recognizer, CorrectionStore(corrections_path))


def main(model_path=None, corrections_path=None):
    """Build and display the app (the notebook's only call); a clear message if it cannot start."""
    import ipywidgets as widgets
    from IPython.display import display

    try:
        app = build(model_path, corrections_path)
    except (FileNotFoundError, ValueError, CorrectionError) as error:
        display(widgets.HTML(f"<h2>DigitGlyph cannot start</h2><pre>{html.escape(str(error))}</pre>"))
        return None
    display(app.widget)
    return app


if __name__ == "__main__":  # ``python -m digitglyph.app`` still serves the app: digitglyph.serve launches it
    from .serve import main as serve_main

    raise SystemExit(serve_main())
