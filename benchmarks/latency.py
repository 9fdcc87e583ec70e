"""``Recognizer`` on its light runtime (LiteRT) against the Keras fallback: latency in one process, and fresh processes.

    .venv/bin/python benchmarks/latency.py [--model models/model.keras] [--calls 300] [--fresh 3]

Prints, for the same model on both back ends:

* single-image ``predict_mnist`` and ``predict_canvas`` (280-560 px drawn digits, preprocessing included)
  latency p50 / p95 in milliseconds, ``--calls`` calls each after warm-up, in this process;
* a fresh process's ``from digitglyph import Recognizer``, ``Recognizer.load()`` and first ``predict_canvas``
  (median of ``--fresh`` processes; Python's start not included) and its peak RSS;
* the largest difference between the two back ends' ``predict_mnist`` on the 10,000 MNIST test images;

with the ratios and issue 15's targets (fresh load + first prediction <= 2 s, parity <= 1e-5).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from digitglyph import Recognizer
from digitglyph.data import load_mnist
from digitglyph.recognizer import DEFAULT_MODEL, MODEL_ENV
from digitglyph.runtime import PARITY, KerasModel
from digitglyph.strokes import drawn_digits

FRESH_TARGET_S = 2.0
FRESH = """
import time
started = time.perf_counter()
import json, sys
import numpy as np
from digitglyph import Recognizer
recognizer = Recognizer.load()
recognizer.predict_canvas(np.load(sys.argv[1]))
seconds = time.perf_counter() - started
status = dict(line.split(":", 1) for line in open("/proc/self/status"))  # VmHWM: this process's own peak
print(json.dumps({"seconds": seconds, "peak_rss_mb": int(status["VmHWM"].split()[0]) / 1024,
                  "runtime": type(recognizer.runtime).__name__}))
"""


def timings(function, inputs, calls: int) -> tuple[float, float]:
    for item in inputs[:20]:  # warm-up
        function(item)
    samples = []
    for index in range(calls):
        started = time.perf_counter()
        function(inputs[index % len(inputs)])
        samples.append((time.perf_counter() - started) * 1000)
    return float(np.percentile(samples, 50)), float(np.percentile(samples, 95))


def fresh_process(model: Path, canvas_file: Path, repeats: int) -> dict:
    runs = []
    for _ in range(repeats):
        done = subprocess.run(
            [sys.executable, "-c", FRESH, str(canvas_file)],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, MODEL_ENV: str(model), "TF_CPP_MIN_LOG_LEVEL": "3"},
        )
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {
        "seconds": float(np.median([run["seconds"] for run in runs])),
        "peak_rss_mb": float(np.median([run["peak_rss_mb"] for run in runs])),
        "runtime": runs[0]["runtime"],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--fresh", type=int, default=3, help="fresh processes per back end (median)")
    args = parser.parse_args()
    light = Recognizer.load(args.model)
    keras = Recognizer(KerasModel.load(args.model), light.version, rule=light.rule)
    _, (x_test, y_test) = load_mnist()
    images = [x_test[i : i + 1] for i in range(200)]
    canvases = [digit.render() for digit in drawn_digits(50, seed=5, images=x_test, labels=y_test)]
    rows = {}
    with tempfile.TemporaryDirectory(prefix="digitglyph-latency-") as work:
        np.save(Path(work) / "canvas.npy", canvases[0])
        keras_only = Path(work) / "keras-only" / args.model.name  # no light file beside it: the Keras fallback
        keras_only.parent.mkdir()
        shutil.copyfile(args.model, keras_only)
        for name, recognizer, path in (("keras", keras, keras_only), ("light", light, args.model)):
            rows[name] = {
                "mnist": timings(recognizer.predict_mnist, images, args.calls),
                "canvas": timings(recognizer.predict_canvas, canvases, args.calls),
                "fresh": fresh_process(path, Path(work) / "canvas.npy", args.fresh),
            }
    difference = float(np.abs(light.predict_mnist(x_test) - keras.predict_mnist(x_test)).max())

    blas_threads = os.environ.get("OPENBLAS_NUM_THREADS", "unset: one per core")
    print(
        f"{light.version}: {args.calls} single-image calls after warm-up, milliseconds (p50 / p95); "
        f"OPENBLAS_NUM_THREADS {blas_threads} (preprocessing's matrix products: on a busy machine one thread is "
        "several times faster)"
    )
    print(f"{'':26} {'predict_mnist':>17} {'predict_canvas':>17} {'fresh: import+load+1st':>23} {'peak RSS':>9}")
    for name, row in rows.items():
        label = f"{name} ({row['fresh']['runtime']})"
        print(
            f"{label:26} {row['mnist'][0]:7.3f} / {row['mnist'][1]:7.3f} {row['canvas'][0]:7.3f} / "
            f"{row['canvas'][1]:7.3f} {row['fresh']['seconds']:21.2f} s {row['fresh']['peak_rss_mb']:6.0f} MB"
        )
    keras_row, light_row = rows["keras"], rows["light"]
    print(
        f"light against keras: predict_mnist p50 {keras_row['mnist'][0] / light_row['mnist'][0]:.1f}x faster, "
        f"predict_canvas p50 {keras_row['canvas'][0] / light_row['canvas'][0]:.1f}x faster, fresh process "
        f"{keras_row['fresh']['seconds'] / light_row['fresh']['seconds']:.1f}x faster and "
        f"{keras_row['fresh']['peak_rss_mb'] / light_row['fresh']['peak_rss_mb']:.1f}x smaller"
    )
    fresh = light_row["fresh"]["seconds"]
    print(
        f"target: fresh import + load + first prediction <= {FRESH_TARGET_S} s: {fresh:.2f} s, "
        f"{'met' if fresh <= FRESH_TARGET_S else 'NOT met'}"
    )
    print(
        f"target: predict_mnist light vs keras on {len(x_test):,} MNIST test images <= {PARITY:g}: "
        f"{difference:.1e}, {'met' if difference <= PARITY else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
