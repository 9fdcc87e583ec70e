"""Generate the shared canvas-preprocessing test vectors: ``python -m digitglyph.vectors``.

Each case holds an RGBA canvas (zlib-compressed, base64) and the 28x28 output of
``digitglyph.preprocess.canvas_to_mnist`` (or ``null`` for an empty canvas).  The
Python tests and the JavaScript tests (Node and the browser) check every case.
"""

from __future__ import annotations

import base64
import json
import zlib
from pathlib import Path

import numpy as np

from .preprocess import canvas_to_mnist
from .strokes import digit_pen_paths, place_paths, render_strokes

VECTORS = Path(__file__).resolve().parent.parent / "tests" / "vectors" / "preprocess.json"


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

    picks = [int(np.flatnonzero(labels == d)[k]) for d, k in zip(range(10), rng.integers(0, 50, 10))]
    yield "alpha-280-centred", None, drawn(picks[0], 280, 280, 20, 200, (140, 140)), "alpha"
    yield "alpha-280-corner-small", None, drawn(picks[1], 280, 280, 8, 70, (50, 45)), "alpha"
    yield "alpha-560-thick", None, drawn(picks[2], 560, 560, 70, 380, (300, 260), 0.1), "alpha"
    yield "alpha-200x333-wide", None, drawn(picks[3], 333, 200, 14, 150, (120, 100)), "alpha"
    yield "alpha-100-thin", None, drawn(picks[4], 100, 100, 2.5, 70, (48, 52)), "alpha"
    yield "alpha-1000x700-tiny", None, drawn(picks[5], 1000, 700, 9, 60, (800, 600)), "alpha"
    yield "alpha-300-huge-touching", None, drawn(picks[6], 300, 300, 26, 300, (150, 150)), "alpha"
    yield "alpha-64-small-canvas", None, drawn(picks[7], 64, 64, 5, 50, (32, 32)), "alpha"
    yield "black-on-white-opaque", None, drawn(picks[8], 280, 280, 18, 190, (150, 130)), ("opaque", (0, 0, 0), (255, 255, 255))
    yield "white-on-black-opaque", None, drawn(picks[9], 280, 280, 18, 190, (130, 150)), ("opaque", (255, 255, 255), (0, 0, 0))
    yield "blue-on-cream", None, drawn(picks[0], 240, 240, 16, 160, (120, 120), -0.1), ("opaque", (20, 40, 160), (250, 245, 225))
    yield "yellow-on-navy", None, drawn(picks[1], 240, 240, 16, 160, (120, 120)), ("opaque", (250, 220, 40), (10, 20, 70))
    yield "grey-paper-dark-ink", None, drawn(picks[2], 200, 200, 14, 150, (100, 100)), ("opaque", (30, 30, 30), (180, 180, 180))
    for k, d in enumerate(rng.choice(len(images), 8, replace=False)):
        side = int(rng.choice([140, 280, 420]))
        yield f"random-{k}", None, drawn(int(d), side, side, float(rng.uniform(side / 25, side / 9)),
                                         float(rng.uniform(0.4, 0.8) * side), (side / 2 + rng.uniform(-20, 20), side / 2)), "alpha"
    mnist = images[picks[3]]
    yield "mnist-as-canvas", None, mnist, ("opaque", (255, 255, 255), (0, 0, 0))
    yield "horizontal-bar", None, _block((280, 280), np.s_[138:146, 40:240]), "alpha"
    yield "vertical-bar", None, _block((280, 280), np.s_[30:250, 136:150]), "alpha"
    yield "empty-transparent", None, np.zeros((280, 280), np.uint8), "alpha"
    yield "empty-white-opaque", None, np.zeros((280, 280), np.uint8), ("opaque", (0, 0, 0), (255, 255, 255))
    yield "speck-only", None, _block((280, 280), np.s_[100:106, 200:205]), "alpha"
    yield "faint-smudge", None, _block((280, 280), np.s_[60:200, 100:180], value=40), "alpha"
    yield "just-above-speck", None, _block((280, 280), np.s_[100:112, 100:104]), "alpha"
    yield "one-pixel-canvas", None, np.full((1, 1), 255, np.uint8), "alpha"
    yield "tiny-3x5-canvas", None, _block((5, 3), np.s_[1:4, 1], value=200), "alpha"


def build_vectors(images, labels) -> list[dict]:
    cases = []
    for name, _, coverage, style in _cases(images, labels):
        if style == "alpha":
            rgba = np.zeros(coverage.shape + (4,), np.uint8)
            rgba[..., 3] = coverage
        else:
            rgba = _opaque(coverage, style[1], style[2])
        expected = canvas_to_mnist(rgba)
        cases.append({"name": name, "width": int(rgba.shape[1]), "height": int(rgba.shape[0]),
                      "rgba": encode_canvas(rgba),
                      "expected": None if expected is None else expected.ravel().tolist()})
    return cases


def main() -> None:
    from .data import load_mnist

    _, (images, labels) = load_mnist()
    cases = build_vectors(images, labels)
    VECTORS.parent.mkdir(parents=True, exist_ok=True)
    VECTORS.write_text(json.dumps({"spec": "digitglyph/preprocess.py", "tolerance": 1, "cases": cases}))
    empty = sum(case["expected"] is None for case in cases)
    print(f"wrote {len(cases)} cases ({empty} empty) to {VECTORS}")


if __name__ == "__main__":
    main()
