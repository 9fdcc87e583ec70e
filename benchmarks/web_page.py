"""The web page in headless Chromium: latency, load time, bytes, and agreement with Python.

    .venv/bin/python benchmarks/web_page.py [--strokes 36] [--images 1000] [--model M]

Builds the site into a temporary directory (as ``make web`` does), serves it on
127.0.0.1 under a project subpath, and prints:

* median latency from pointer release to the displayed prediction (the page's own
  measurement: pointerup's event.timeStamp to the animation frame after the DOM update),
* model load time (build.json + model.json + weights + warm-up run, and since navigation),
* total bytes the page transfers (sum of response body sizes, cold cache) and weights size,
* max |browser - Python| probability difference and both accuracies on MNIST test images.

Targets: latency median < 50 ms, weights <= 500 KB, page <= 3 MB, agreement within 1e-4.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from digitglyph.browser import chromium, mouse_stroke, points_along

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# Digits as strokes in fractions of the pad; 1, 4, 7 and 0 give one to three strokes each.
DIGITS = [
    [[(0.50, 0.15), (0.50, 0.85)]],
    [[(0.60, 0.15), (0.25, 0.60), (0.78, 0.60)], [(0.60, 0.30), (0.60, 0.88)]],
    [[(0.25, 0.20), (0.75, 0.20), (0.45, 0.85)], [(0.35, 0.52), (0.68, 0.52)]],
    [[(0.50, 0.15), (0.28, 0.35), (0.28, 0.65), (0.50, 0.85), (0.72, 0.65), (0.72, 0.35), (0.50, 0.15)]],
]


def main() -> int:
    options = parse_args()
    from digitglyph.data import load_mnist
    from digitglyph.export import build_site, serve
    from digitglyph.recognizer import Recognizer

    recognizer = Recognizer.load(options.model)
    _, (x_test, y_test) = load_mnist()
    images, labels = x_test[: options.images], y_test[: options.images]
    with tempfile.TemporaryDirectory(prefix="digitglyph-bench-") as work:
        manifest = build_site(options.model, Path(work) / "dist")
        with serve(Path(work) / "dist", subpath="digitglyph") as url, chromium() as browser:
            context = browser.new_context(viewport={"width": 1000, "height": 800})
            page = context.new_page()
            bodies = []
            page.on("response", lambda response: bodies.append(len(response.body())))
            page.goto(url)
            page.evaluate("window.digitglyph.ready")
            page.wait_for_load_state("networkidle")
            timings = page.evaluate("window.digitglyph.timings")
            transferred = sum(bodies)
            latencies = stroke_latencies(page, options.strokes)
            if options.screenshot:
                screenshot(page, options.screenshot)
            browser_probabilities = np.array(
                page.evaluate("images => window.digitglyph.predictMnist(images)", images.reshape(-1).tolist())
            )
    python_probabilities = recognizer.predict_mnist(images)
    results = {
        "model_version": manifest["model_version"],
        "weights": manifest["weights"],
        "strokes": len(latencies),
        "latency_median_ms": round(float(np.median(latencies)), 1),
        "latency_p90_ms": round(float(np.percentile(latencies, 90)), 1),
        "model_load_ms": round(timings["modelLoadMs"]),
        "model_ready_since_navigation_ms": round(timings["modelReadyMs"]),
        "page_bytes": transferred,
        "weights_bytes": manifest["weights_bytes"],
        "images": len(images),
        "max_abs_difference": float(np.abs(browser_probabilities - python_probabilities).max()),
        "argmax_disagreements": int((browser_probabilities.argmax(1) != python_probabilities.argmax(1)).sum()),
        "browser_accuracy": float((browser_probabilities.argmax(1) == labels).mean()),
        "python_accuracy": float((python_probabilities.argmax(1) == labels).mean()),
    }
    print(json.dumps(results, indent=2))
    targets = {
        "latency median < 50 ms": results["latency_median_ms"] < 50,
        "weights <= 500 KB": results["weights_bytes"] <= 500_000,
        "page <= 3 MB": results["page_bytes"] <= 3_000_000,
        "browser and Python within 1e-4": results["max_abs_difference"] <= 1e-4,
    }
    for target, met in targets.items():
        print(f"{'met ' if met else 'MISSED'}  {target}")
    return 0


def stroke_latencies(page, strokes: int) -> list[float]:
    """Draw digits (clearing between them) until ``strokes`` strokes; the page's latency for each."""
    latencies = []
    while len(latencies) < strokes:
        for stroke in DIGITS[len(latencies) % len(DIGITS)]:
            before = page.evaluate("window.digitglyph.latencies.length")
            draw_stroke(page, stroke)
            page.wait_for_function("n => window.digitglyph.latencies.length > n", arg=before)
            latencies.append(page.evaluate("window.digitglyph.latencies.at(-1)"))
        page.keyboard.press("Escape")
        page.evaluate("window.digitglyph.idle()")
    return latencies


def draw_stroke(page, stroke) -> None:
    """One mouse stroke through points given as fractions of the pad."""
    mouse_stroke(page, points_along(page.get_by_test_id("canvas").bounding_box(), stroke, per_segment=8))


def screenshot(page, path: Path) -> None:
    """The page with a drawn seven and its prediction (the README's picture)."""
    for stroke in DIGITS[2]:
        draw_stroke(page, stroke)
    page.evaluate("window.digitglyph.idle()")
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=path, full_page=True)
    print(f"screenshot: {path}")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--strokes", type=int, default=36, help="strokes to time (at least 30)")
    parser.add_argument("--images", type=int, default=1000, help="MNIST test images to compare on")
    parser.add_argument("--model", help="a .keras file (default: the shipped model)")
    parser.add_argument(
        "--screenshot",
        type=Path,
        help="also save the page with a drawn digit here (reports/figures/web-page.png for the README)",
    )
    options = parser.parse_args()
    if options.strokes < 30 or not 1 <= options.images <= 10_000:
        parser.error("--strokes must be at least 30 and --images between 1 and 10000")
    return options


if __name__ == "__main__":
    sys.exit(main())
