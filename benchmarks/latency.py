"""Single-image inference latency of ``Recognizer`` against Keras' ``model.predict`` in the same process.

    .venv/bin/python benchmarks/latency.py [--calls 300]
"""

import argparse
import time

import numpy as np

from digitglyph import Recognizer
from digitglyph.data import load_mnist
from digitglyph.strokes import drawn_digits


def timings(function, inputs, calls):
    for item in inputs[:20]:  # warm-up
        function(item)
    samples = []
    for i in range(calls):
        started = time.perf_counter()
        function(inputs[i % len(inputs)])
        samples.append((time.perf_counter() - started) * 1000)
    return np.percentile(samples, 50), np.percentile(samples, 95)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    recognizer = Recognizer.load()
    _, (x_test, y_test) = load_mnist()
    images = [x_test[i: i + 1] for i in range(200)]
    canvases = [d.render() for d in drawn_digits(50, seed=5, images=x_test, labels=y_test)]

    baseline = timings(lambda x: recognizer.model.predict(x[..., None] / 255.0, verbose=0), images, args.calls)
    ours = timings(recognizer.predict_mnist, images, args.calls)
    canvas = timings(recognizer.predict_canvas, canvases, args.calls)
    print(f"{args.calls} single-image calls after warm-up, milliseconds (p50 / p95):")
    print(f"  keras model.predict (baseline):     {baseline[0]:7.2f} / {baseline[1]:7.2f}")
    print(f"  Recognizer.predict_mnist:           {ours[0]:7.2f} / {ours[1]:7.2f}")
    print(f"  Recognizer.predict_canvas (280-560 px canvas incl. preprocessing): {canvas[0]:7.2f} / {canvas[1]:7.2f}")
    print(f"  predict_mnist is {baseline[0] / ours[0]:.1f}x faster than model.predict at p50; "
          f"target p50 < 20 ms: {'met' if ours[0] < 20 else 'NOT met'}")


if __name__ == "__main__":
    main()
