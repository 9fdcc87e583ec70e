"""Generate the shared test vectors of the two-runtime specs: ``python -m digitglyph.vectors``.

``tests/vectors/preprocess.json``: each case holds an RGBA canvas (zlib-compressed, base64)
and the 28x28 output of :func:`digitglyph.preprocess.canvas_to_mnist` (or ``null`` for an
empty canvas).  ``tests/vectors/answers.json``: each case holds model outputs (10 or 11, or
``null`` for an empty canvas) and an answer rule, with the answer of
:func:`digitglyph.answers.decide` and its wording (or the error for outputs that are not
probabilities).  The Python tests and the JavaScript tests (Node and the browser) check every case.
"""

from __future__ import annotations

import base64
import json
import zlib

import numpy as np

from .answers import AnswerRule, decide, wording
from .paths import VECTORS as VECTORS_DIR
from .preprocess import canvas_to_mnist
from .strokes import digit_pen_paths, place_paths, render_strokes

VECTORS = VECTORS_DIR / "preprocess.json"
ANSWER_VECTORS = VECTORS_DIR / "answers.json"


def encode_canvas(rgba: np.ndarray) -> str:
    return base64.b64encode(zlib.compress(np.ascontiguousarray(rgba, np.uint8).tobytes(), 9)).decode()


def decode_canvas(case: dict) -> np.ndarray:
    raw = zlib.decompress(base64.b64decode(case["rgba"]))
    return np.frombuffer(raw, np.uint8).reshape(case["height"], case["width"], 4)


def _opaque(coverage: np.ndarray, ink_rgb, paper_rgb) -> np.ndarray:
    """Composite an alpha coverage map as ink over an opaque paper colour."""
    a = coverage.astype(np.float64)[..., None] / 255.0
    rgb = np.asarray(paper_rgb, float) * (1 - a) + np.asarray(ink_rgb, float) * a
    out = np.empty(coverage.shape + (4,), np.uint8)
    out[..., :3] = np.floor(rgb + 0.5)
    out[..., 3] = 255
    return out


def _block(shape, region, value=255) -> np.ndarray:
    """A coverage map with one rectangle of ink."""
    coverage = np.zeros(shape, np.uint8)
    coverage[region] = value
    return coverage


def _cases(images, labels):
    rng = np.random.default_rng(2024)

    def drawn(index, width, height, brush, digit_height, centre, slant=0.0):
        strokes = place_paths(digit_pen_paths(images[index]), max(width, height), digit_height, centre, slant)
        strokes = [[(min(x, width - 2), min(y, height - 2)) for x, y in s] for s in strokes]
        return render_strokes(strokes, width, height, brush)[:, :, 3]

    picks = [int(np.flatnonzero(labels == d)[k]) for d, k in zip(range(10), rng.integers(0, 50, 10), strict=True)]
    yield "alpha-280-centred", drawn(picks[0], 280, 280, 20, 200, (140, 140)), "alpha"
    yield "alpha-280-corner-small", drawn(picks[1], 280, 280, 8, 70, (50, 45)), "alpha"
    yield "alpha-560-thick", drawn(picks[2], 560, 560, 70, 380, (300, 260), 0.1), "alpha"
    yield "alpha-200x333-wide", drawn(picks[3], 333, 200, 14, 150, (120, 100)), "alpha"
    yield "alpha-100-thin", drawn(picks[4], 100, 100, 2.5, 70, (48, 52)), "alpha"
    yield "alpha-1000x700-tiny", drawn(picks[5], 1000, 700, 9, 60, (800, 600)), "alpha"
    yield "alpha-300-huge-touching", drawn(picks[6], 300, 300, 26, 300, (150, 150)), "alpha"
    yield "alpha-64-small-canvas", drawn(picks[7], 64, 64, 5, 50, (32, 32)), "alpha"
    black_on_white, white_on_black = ("opaque", (0, 0, 0), (255, 255, 255)), ("opaque", (255, 255, 255), (0, 0, 0))
    yield "black-on-white-opaque", drawn(picks[8], 280, 280, 18, 190, (150, 130)), black_on_white
    yield "white-on-black-opaque", drawn(picks[9], 280, 280, 18, 190, (130, 150)), white_on_black
    yield (
        "blue-on-cream",
        drawn(picks[0], 240, 240, 16, 160, (120, 120), -0.1),
        ("opaque", (20, 40, 160), (250, 245, 225)),
    )
    yield "yellow-on-navy", drawn(picks[1], 240, 240, 16, 160, (120, 120)), ("opaque", (250, 220, 40), (10, 20, 70))
    yield (
        "grey-paper-dark-ink",
        drawn(picks[2], 200, 200, 14, 150, (100, 100)),
        ("opaque", (30, 30, 30), (180, 180, 180)),
    )
    for k, d in enumerate(rng.choice(len(images), 8, replace=False)):
        side = int(rng.choice([140, 280, 420]))
        brush, height = float(rng.uniform(side / 25, side / 9)), float(rng.uniform(0.4, 0.8) * side)
        centre = (side / 2 + rng.uniform(-20, 20), side / 2)
        yield f"random-{k}", drawn(int(d), side, side, brush, height, centre), "alpha"
    mnist = images[picks[3]]
    yield "mnist-as-canvas", mnist, ("opaque", (255, 255, 255), (0, 0, 0))
    yield "horizontal-bar", _block((280, 280), np.s_[138:146, 40:240]), "alpha"
    yield "vertical-bar", _block((280, 280), np.s_[30:250, 136:150]), "alpha"
    yield "empty-transparent", np.zeros((280, 280), np.uint8), "alpha"
    yield "empty-white-opaque", np.zeros((280, 280), np.uint8), ("opaque", (0, 0, 0), (255, 255, 255))
    yield "speck-only", _block((280, 280), np.s_[100:106, 200:205]), "alpha"
    yield "faint-smudge", _block((280, 280), np.s_[60:200, 100:180], value=40), "alpha"
    yield "just-above-speck", _block((280, 280), np.s_[100:112, 100:104]), "alpha"
    yield "one-pixel-canvas", np.full((1, 1), 255, np.uint8), "alpha"
    yield "tiny-3x5-canvas", _block((5, 3), np.s_[1:4, 1], value=200), "alpha"
    yield from _robust_ink_cases(drawn(picks[4], 280, 280, 20, 200, (140, 140)))


def _robust_ink_cases(coverage: np.ndarray):
    """Canvases where a few pixels that are not fully opaque must not decide the ink (issue 17)."""
    bar = np.full((280, 280, 4), 255, np.uint8)
    bar[40:240, 130:150, :3] = 0
    one_transparent = bar.copy()
    one_transparent[0, 0, 3] = 0
    yield "opaque-white-bar-one-transparent-pixel", one_transparent, "rgba"
    ink_254 = bar.copy()
    ink_254[40:240, 130:150, 3] = 254
    yield "opaque-white-bar-ink-alpha-254", ink_254, "rgba"
    paper_254 = _opaque(coverage, (0, 0, 0), (255, 255, 255))
    paper_254[200:260, 10:90, 3] = 254
    paper_254[0, 100:140, 3] = 254
    yield "opaque-digit-paper-alpha-254-patches", paper_254, "rgba"
    screenshot = _opaque(coverage, (0, 0, 0), (255, 255, 255))
    screenshot[_outside_rounded_corners(280, 280, 24)] = 0  # transparent black, as screenshots store them
    yield "screenshot-rounded-transparent-corners", screenshot, "rgba"
    dark_screenshot = _opaque(coverage, (240, 240, 240), (30, 30, 30))
    dark_screenshot[_outside_rounded_corners(280, 280, 24)] = 0
    yield "dark-screenshot-rounded-transparent-corners", dark_screenshot, "rgba"
    for paper_alpha in (64, 128, 200):
        semi = _opaque(coverage, (0, 0, 0), (255, 255, 255))
        semi[..., 3] = np.maximum(paper_alpha, coverage)
        yield f"semi-transparent-white-paper-alpha-{paper_alpha}", semi, "rgba"


def _outside_rounded_corners(height: int, width: int, radius: int) -> np.ndarray:
    """Mask of the pixels outside a rectangle with rounded corners of ``radius`` pixels."""
    y, x = np.mgrid[:height, :width] + 0.5
    dy = np.maximum(0, np.maximum(radius - y, y - (height - radius)))
    dx = np.maximum(0, np.maximum(radius - x, x - (width - radius)))
    return dx**2 + dy**2 > radius**2


def build_vectors(images, labels) -> list[dict]:
    cases = []
    for name, coverage, style in _cases(images, labels):
        if style == "rgba":
            rgba = coverage
        elif style == "alpha":
            rgba = np.zeros(coverage.shape + (4,), np.uint8)
            rgba[..., 3] = coverage
        else:
            rgba = _opaque(coverage, style[1], style[2])
        expected = canvas_to_mnist(rgba)
        cases.append(
            {
                "name": name,
                "width": int(rgba.shape[1]),
                "height": int(rgba.shape[0]),
                "rgba": encode_canvas(rgba),
                "expected": None if expected is None else expected.ravel().tolist(),
            }
        )
    return cases


def _one_hot_ish(digit: int, top: float, outputs: int = 10, not_a_digit: float = 0.0) -> list[float]:
    """Outputs with ``top`` on ``digit``, ``not_a_digit`` last (11 outputs), the rest shared evenly."""
    rest = (1.0 - top - not_a_digit) / 9
    values = [rest] * 10
    values[digit] = top
    return values + ([not_a_digit] if outputs == 11 else [])


def answer_cases():
    """``(name, outputs, rule)``: every status, 10 and 11 outputs, ties, both thresholds' edges, bad outputs."""
    default, shipped_like = AnswerRule(), AnswerRule(unsure_below=0.6, not_a_digit_at=0.5)
    yield "empty", None, default
    yield "confident-7", _one_hot_ish(7, 0.97), default
    yield (
        "confident-0-float32",
        [0.9612345, 0.0012, 0.0031, 0.0042, 0.0051, 0.0061, 0.0072, 0.0043, 0.0036, 0.0040655],
        default,
    )
    yield "unsure-3", _one_hot_ish(3, 0.55), default
    yield "at-unsure-threshold-is-ok", [0.6, 0.4] + [0.0] * 8, default
    yield "just-below-unsure-threshold", [0.5999999, 0.4000001] + [0.0] * 8, default
    yield "tie-picks-the-lower-digit", [0.0, 0.0, 0.5, 0.0, 0.0, 0.5, 0.0, 0.0, 0.0, 0.0], AnswerRule(0.5)
    yield "three-way-tie-unsure", [0.0, 0.0, 0.0, 0.0, 0.3, 0.0, 0.0, 0.3, 0.0, 0.4], default
    yield "uniform-unsure-0", [0.1] * 10, default
    yield "percent-rounds-half-up-63", _one_hot_ish(4, 0.625), default
    yield "percent-rounds-half-up-100", _one_hot_ish(1, 0.995), default
    yield "percent-99", _one_hot_ish(1, 0.994), default
    yield "eleven-ok", _one_hot_ish(2, 0.9, 11, 0.05), shipped_like
    yield "eleven-not-a-digit", _one_hot_ish(8, 0.2, 11, 0.7), shipped_like
    yield "eleven-at-not-a-digit-threshold", _one_hot_ish(8, 0.45, 11, 0.5), shipped_like
    yield "eleven-just-below-not-a-digit-threshold", _one_hot_ish(9, 0.5, 11, 0.4999), shipped_like
    yield (
        "eleven-not-a-digit-beats-a-confident-digit",
        _one_hot_ish(6, 0.45, 11, 0.55),
        AnswerRule(unsure_below=0.4, not_a_digit_at=0.5),
    )
    yield "eleven-unsure", _one_hot_ish(5, 0.4, 11, 0.3), shipped_like
    yield "eleven-with-the-default-rule-never-rejects", _one_hot_ish(3, 0.05, 11, 0.95), default
    yield "eleven-digit-bars-not-renormalised", _one_hot_ish(0, 0.62, 11, 0.3), shipped_like
    yield "ten-low-unsure-threshold", _one_hot_ish(9, 0.35), AnswerRule(unsure_below=0.3)
    yield "error-nine-outputs", [1 / 9] * 9, default
    yield "error-twelve-outputs", [1 / 12] * 12, default
    yield "error-logits", [2.0, -1.0, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -0.5], default
    yield "error-sum-not-one", [0.5] * 10, default
    yield "error-negative", [-0.1, 1.1] + [0.0] * 8, default


def build_answer_vectors() -> list[dict]:
    cases = []
    for name, outputs, rule in answer_cases():
        case = {"name": name, "outputs": outputs, "rule": rule.as_dict()}
        try:
            answer = decide(outputs, rule)
        except ValueError as error:
            case["error"] = str(error)
        else:
            head, detail = wording(answer)
            case["expected"] = {
                "status": answer.status,
                "digit": answer.digit,
                "best_guess": answer.best_guess,
                "probabilities": list(answer.probabilities),
                "not_a_digit": answer.not_a_digit,
                "head": head,
                "detail": detail,
            }
        cases.append(case)
    return cases


def write_answer_vectors() -> list[dict]:
    cases = build_answer_vectors()
    ANSWER_VECTORS.write_text(json.dumps({"spec": "digitglyph/answers.py", "cases": cases}, indent=1) + "\n")
    print(f"wrote {len(cases)} cases to {ANSWER_VECTORS}")
    return cases


def main() -> None:
    from .data import load_mnist

    _, (images, labels) = load_mnist()
    cases = build_vectors(images, labels)
    VECTORS.parent.mkdir(parents=True, exist_ok=True)
    VECTORS.write_text(json.dumps({"spec": "digitglyph/preprocess.py", "tolerance": 1, "cases": cases}))
    empty = sum(case["expected"] is None for case in cases)
    print(f"wrote {len(cases)} cases ({empty} empty) to {VECTORS}")
    write_answer_vectors()


if __name__ == "__main__":
    main()
