"""Pen strokes: render them like a canvas does, and turn MNIST digits into pen paths.

A *stroke* is a list of ``(x, y)`` points in canvas pixels, drawn as a polyline
with round caps and joins (``lineCap = lineJoin = "round"``), as the apps do.
:func:`render_strokes` draws strokes like an HTML/ipycanvas canvas with a
transparent background: black ink whose alpha is the anti-aliased coverage.

:func:`digit_pen_paths` skeletonizes an MNIST digit and traces the skeleton into
pen paths; :func:`drawn_digits` places such paths on canvases of several sizes,
with several brush widths, sizes, positions and slants, and smooths them the way
a mouse or finger path is smooth.  They feed the drawn-digit benchmark and the
browser tests, which replay the same paths as real pointer events.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

Stroke = list  # list[tuple[float, float]]
SUPERSAMPLE = 4


def render_strokes(strokes, width: int, height: int, brush_width: float) -> np.ndarray:
    """Rasterise strokes to an ``(height, width, 4)`` uint8 RGBA canvas (transparent background)."""
    if width < 1 or height < 1 or brush_width <= 0:
        raise ValueError(f"need a positive canvas size and brush width, got {width}x{height}, {brush_width}")
    scale = SUPERSAMPLE
    coverage = Image.new("L", (width * scale, height * scale), 0)
    draw = ImageDraw.Draw(coverage)
    radius = brush_width * scale / 2.0
    for stroke in strokes:
        points = [(float(x) * scale, float(y) * scale) for x, y in stroke]
        if not points:
            continue
        if len(points) > 1:
            draw.line(points, fill=255, width=max(1, int(round(brush_width * scale))), joint="curve")
        for x, y in points:  # round caps and joins
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)
    alpha = np.asarray(coverage.resize((width, height), Image.BOX))
    rgba = np.zeros((height, width, 4), np.uint8)
    rgba[:, :, 3] = alpha
    return rgba


def _skeleton(image: np.ndarray) -> np.ndarray:
    from skimage.morphology import skeletonize

    return skeletonize(image >= 96)


def digit_pen_paths(image: np.ndarray) -> list[list[tuple[float, float]]]:
    """Trace the skeleton of a 28x28 digit into pen paths (pixel-centre coordinates)."""
    skeleton = _skeleton(image)
    pixels = set(zip(*np.nonzero(skeleton), strict=True))

    def neighbours(p):
        r, c = p
        found = []
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                q = (r + dr, c + dc)
                if q == p or q not in pixels:
                    continue
                # skip a diagonal step when an orthogonal path joins the same two pixels
                if dr and dc and ((r + dr, c) in pixels or (r, c + dc) in pixels):
                    continue
                found.append(q)
        return found

    graph = {p: neighbours(p) for p in pixels}
    unused = {frozenset((p, q)) for p in graph for q in graph[p]}
    paths = []
    starts = sorted(p for p in graph if len(graph[p]) == 1) + sorted(graph)
    for start in starts:
        while any(frozenset((start, q)) in unused for q in graph[start]):
            path, here = [start], start
            while True:
                step = next((q for q in graph[here] if frozenset((here, q)) in unused), None)
                if step is None:
                    break
                unused.discard(frozenset((here, step)))
                path.append(step)
                here = step
            paths.append([(c + 0.5, r + 0.5) for r, c in path])
    if not paths and pixels:  # an isolated dot
        r, c = sorted(pixels)[0]
        paths.append([(c + 0.5, r + 0.5)])
    return paths


def _smooth(path: np.ndarray, window: int = 3) -> np.ndarray:
    if len(path) <= 2:
        return path
    padded = np.concatenate([path[:1].repeat(window // 2, 0), path, path[-1:].repeat(window // 2, 0)])
    kernel = np.ones(window) / window
    smoothed = np.stack([np.convolve(padded[:, k], kernel, mode="valid") for k in range(2)], 1)
    smoothed[0], smoothed[-1] = path[0], path[-1]
    return smoothed


@dataclass
class DrawnDigit:
    strokes: list
    width: int
    height: int
    brush_width: float
    label: int
    source_index: int

    def render(self) -> np.ndarray:
        return render_strokes(self.strokes, self.width, self.height, self.brush_width)


def place_paths(
    paths,
    canvas_size: int,
    digit_height: float,
    centre: tuple[float, float],
    slant: float = 0.0,
    jitter: float = 0.0,
    rng=None,
):
    """Map 28-grid pen paths onto a canvas: scale so the ink's height is ``digit_height``."""
    rng = rng or np.random.default_rng(0)
    points = np.concatenate([np.asarray(p, float) for p in paths])
    (x0, y0), (x1, y1) = points.min(0), points.max(0)
    scale = digit_height / max(y1 - y0, (x1 - x0) * 0.8, 1.0)
    mid = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    placed = []
    for path in paths:
        p = (np.asarray(path, float) - mid) * scale
        p[:, 0] += slant * -p[:, 1]
        p = _smooth(p) + np.asarray(centre)
        if jitter:
            p += rng.normal(0, jitter, p.shape)
        placed.append([(float(x), float(y)) for x, y in np.clip(p, 1, canvas_size - 2)])
    return placed


def drawn_digits(
    count: int,
    seed: int = 0,
    canvas_size: int | None = None,
    images=None,
    labels=None,
    brush_range=(1 / 22, 1 / 10),
    size_range=(0.35, 0.85),
) -> list[DrawnDigit]:
    """Pen-drawn versions of ``count`` MNIST test digits on canvases.

    Canvas side (280-560 px unless given), brush width (``brush_range`` x canvas),
    digit height (``size_range`` x canvas), position and slant vary per digit.
    """
    if images is None:
        from .data import load_mnist

        _, (images, labels) = load_mnist()
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(images), size=count, replace=False)
    digits = []
    for index in chosen:
        side = int(canvas_size or rng.choice([280, 320, 400, 480, 560]))
        height = rng.uniform(*size_range) * side
        brush = rng.uniform(*brush_range) * side
        margin = height / 2 + brush
        centre = (
            rng.uniform(margin, side - margin) if side - 2 * margin > 0 else side / 2,
            rng.uniform(margin, side - margin) if side - 2 * margin > 0 else side / 2,
        )
        strokes = place_paths(
            digit_pen_paths(images[index]),
            side,
            height,
            centre,
            slant=rng.uniform(-0.15, 0.15),
            jitter=rng.uniform(0, side / 400),
            rng=rng,
        )
        digits.append(DrawnDigit(strokes, side, side, float(brush), int(labels[index]), int(index)))
    return digits


def redrawn_mnist(images, labels, count: int, seed: int = 0, canvas_size: int = 140):
    """``count`` training digits redrawn as canvas strokes and put through the canvas spec.

    Returns ``(x, y)``: uint8 ``(N, 28, 28)`` MNIST-style images and their labels.  Training on
    them teaches the model what pen strokes look like after preprocessing (uniform width, round
    ends, smooth paths), which MNIST's scanned pen strokes do not show.
    """
    from .preprocess import canvas_to_mnist

    digits = drawn_digits(
        count,
        seed=seed,
        canvas_size=canvas_size,
        images=images,
        labels=labels,
        brush_range=(1 / 24, 1 / 9),
        size_range=(0.4, 0.9),
    )
    redrawn, kept = [], []
    for digit in digits:
        image = canvas_to_mnist(digit.render())
        if image is not None:
            redrawn.append(image)
            kept.append(digit.label)
    return np.stack(redrawn), np.asarray(kept, np.uint8)


# -- real pen trajectories as the apps would draw them ------------------------------------------------

DEVICES = ("pen", "mouse", "touch")
TRAINING_SCALE = 64  # training renders put a character's longer side at 64 px (see render_as_drawn)


@dataclass(frozen=True)
class DrawingStyle:
    """How one character is drawn: its size and brush on the app's 280 px canvas, and the input device.

    ``pen`` keeps every recorded point; ``mouse`` keeps one point every ``spacing`` canvas pixels along
    the path (pointer events are sparse when the hand is fast, so strokes become polygons); ``touch``
    does the same, then smooths the path (a 3-point moving average, as touch screens filter) and adds
    a little tremor (``jitter`` pixels).
    """

    size: float = 180.0  # the character's longer side, canvas pixels
    brush: float = 20.0  # the apps' default brush
    device: str = "pen"
    spacing: float = 0.0
    jitter: float = 0.0

    @classmethod
    def random(cls, rng: np.random.Generator, canvas: int = 280) -> DrawingStyle:
        """A style drawn from what people do in the apps: sizes from 30 % to 85 % of the canvas, brushes
        across the apps' range (10 to 35 px, mostly near the default 20), mouse, touch or pen."""
        brush = float(np.clip(rng.normal(20, 3), 10, 35)) if rng.random() < 0.6 else float(rng.uniform(10, 35))
        device = DEVICES[rng.choice(3, p=[0.35, 0.4, 0.25])]
        spacing = float(rng.uniform(3, 14)) if device != "pen" else 0.0
        jitter = float(rng.uniform(0.3, 1.5)) if device == "touch" else 0.0
        return cls(float(rng.uniform(0.3, 0.85) * canvas), brush, device, spacing, jitter)


def _resample(points: np.ndarray, spacing: float) -> np.ndarray:
    """One point every ``spacing`` pixels along a polyline, keeping both ends."""
    if len(points) < 2 or spacing <= 0:
        return points
    lengths = np.r_[0.0, np.cumsum(np.hypot(*np.diff(points, axis=0).T))]
    if lengths[-1] <= spacing:
        return points[[0, -1]]
    targets = np.r_[np.arange(0.0, lengths[-1], spacing), lengths[-1]]
    return np.stack([np.interp(targets, lengths, points[:, k]) for k in range(2)], axis=1)


def as_drawn(strokes, style: DrawingStyle, rng: np.random.Generator | None = None, scale: float = 1.0):
    """Pen strokes (any units) placed as ``style`` draws them: the character's longer side becomes
    ``style.size * scale`` pixels, with the device's point spacing and smoothing.  Returns the strokes
    (lists of points, a 2-brush margin around them), the canvas width and height, and the brush width."""
    rng = rng or np.random.default_rng(0)
    points = np.concatenate([np.asarray(s, float) for s in strokes])
    low, high = points.min(axis=0), points.max(axis=0)
    factor = style.size * scale / max(float((high - low).max()), 1e-6)
    brush = style.brush * scale
    margin = 2 * brush + 2
    placed = []
    for stroke in strokes:
        path = (np.asarray(stroke, float) - low) * factor
        if style.device != "pen":
            path = _resample(path, style.spacing * scale)
        if style.device == "touch":
            path = _smooth(path)
            path = path + rng.normal(0, style.jitter * scale, path.shape)
        placed.append([(float(x) + margin, float(y) + margin) for x, y in path])
    width, height = ((high - low) * factor + 2 * margin + 1).astype(int)
    return placed, int(width), int(height), brush


def render_as_drawn(strokes, style: DrawingStyle, rng=None, scale: float | None = None) -> np.ndarray | None:
    """A pen character drawn in ``style`` and read like a canvas: ``render_strokes`` then ``canvas_to_mnist``.

    ``scale=None`` renders at the app's own size (the 280 px canvas); training renders pass
    ``TRAINING_SCALE / style.size`` (the character's longer side at 64 px, the brush scaled alike): four
    times faster, and the same image up to a one-pixel shift of the centring (measured on 150 real pen digits:
    correlation after the best 1-px shift median 0.99, lowest 0.89), which the training augmentation's +-2 px
    shifts cover.  Evaluation and the apps always render at full size.
    """
    from .preprocess import canvas_to_mnist

    placed, width, height, brush = as_drawn(strokes, style, rng, 1.0 if scale is None else scale)
    return canvas_to_mnist(render_strokes(placed, width, height, brush))


def on_app_canvas(strokes, style: DrawingStyle, rng=None, canvas: int = 280) -> np.ndarray:
    """A pen character drawn in ``style``, centred on the app's ``canvas`` x ``canvas`` RGBA canvas: exactly
    what the apps hand to ``predict_canvas`` when a person draws it there."""
    placed, width, height, brush = as_drawn(strokes, style, rng)
    offset = np.array([(canvas - width) / 2, (canvas - height) / 2])
    moved = [[tuple(np.clip(np.add(point, offset), 0, canvas)) for point in stroke] for stroke in placed]
    return render_strokes(moved, canvas, canvas, brush)
