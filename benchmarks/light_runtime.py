"""Which light runtime serves the model: LiteRT against ONNX Runtime, with Keras as the baseline, in one run.

    .venv/bin/python benchmarks/light_runtime.py [--model models/model.keras] [--calls 500] [--fresh 3]

Exports the model both ways (LiteRT: ``runtime.export_light``, TensorFlow's ``TFLiteConverter``; ONNX:
``tf2onnx``), then prints for Keras, LiteRT and ONNX Runtime:

* a fresh process's import + load + first prediction time (median of ``--fresh`` processes; the whole
  process's wall time, Python start included, beside it) and its peak RSS;
* single-image latency p50 / p95 (``--calls`` calls after warm-up) and batch throughput (batches of
  1,024, as ``Recognizer.predict_mnist`` sends them), all three in this process;
* the largest absolute difference from Keras on every output for the 10,000 MNIST test images;
* the export's file size.

Both light runtimes run with one thread (as served: many kernels share few cores); Keras with its default.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from digitglyph.data import load_mnist
from digitglyph.preprocess import network_input
from digitglyph.recognizer import BATCH, DEFAULT_MODEL
from digitglyph.runtime import THREADS, KerasModel, LiteModel, export_light

ONNX_OPSET = 17

# Run in a fresh process: import the runtime, load the file, predict one image; print seconds and peak RSS
# (VmHWM: getrusage's ru_maxrss would carry over this parent's peak through fork and exec).
FRESH = f"""
import time
started = time.perf_counter()
import sys, json
import numpy as np
kind, path = sys.argv[1], sys.argv[2]
batch = np.zeros((1, 28, 28, 1), np.float32)
if kind == "keras":
    from digitglyph.runtime import KerasModel
    KerasModel.load(path).outputs(batch)
elif kind == "litert":
    from digitglyph.runtime import LiteModel
    LiteModel(path).outputs(batch)
else:
    import onnxruntime
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = {THREADS}
    session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    session.run(None, {{session.get_inputs()[0].name: batch}})
seconds = time.perf_counter() - started
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
print(json.dumps({{"seconds": seconds, "peak_rss_mb": int(status["VmHWM"].split()[0]) / 1024}}))
"""


class OnnxModel:
    """ONNX Runtime with the same ``outputs`` interface as the back ends in ``digitglyph.runtime``."""

    def __init__(self, path):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = THREADS
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def outputs(self, batch):
        return self.session.run(None, {self.input_name: np.ascontiguousarray(batch, np.float32)})[0]


def export_onnx(model_path: Path, out: Path) -> Path:
    import keras
    import tensorflow as tf
    import tf2onnx

    model = keras.models.load_model(model_path, compile=False)
    signature = (tf.TensorSpec((None, 28, 28, 1), tf.float32, name="image"),)
    tf2onnx.convert.from_keras(model, input_signature=signature, opset=ONNX_OPSET, output_path=str(out))
    return out


def fresh_process(kind: str, path: Path, repeats: int) -> dict:
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", FRESH, kind, str(path)],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        )
        runs.append({**json.loads(done.stdout.strip().splitlines()[-1]), "wall": time.perf_counter() - started})
    return {key: float(np.median([run[key] for run in runs])) for key in runs[0]}


def latency(model, images, calls: int) -> tuple[float, float]:
    for image in images[:20]:  # warm-up
        model.outputs(image)
    samples = []
    for index in range(calls):
        started = time.perf_counter()
        model.outputs(images[index % len(images)])
        samples.append((time.perf_counter() - started) * 1000)
    return float(np.percentile(samples, 50)), float(np.percentile(samples, 95))


def batch_outputs(model, inputs) -> tuple[np.ndarray, float]:
    """Outputs for every input in batches of BATCH, and the best images/s over two passes."""
    rates = []
    for _ in range(2):
        started = time.perf_counter()
        outputs = np.concatenate([model.outputs(inputs[i : i + BATCH]) for i in range(0, len(inputs), BATCH)])
        rates.append(len(inputs) / (time.perf_counter() - started))
    return outputs, max(rates)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--fresh", type=int, default=3, help="fresh processes per runtime (median)")
    args = parser.parse_args()
    _, (x_test, _) = load_mnist()
    inputs = network_input(x_test)
    singles = [inputs[i : i + 1] for i in range(200)]

    with tempfile.TemporaryDirectory(prefix="digitglyph-light-") as work:
        files = {
            "keras": args.model,
            "litert": export_light(args.model, Path(work) / "model.tflite"),
            "onnxruntime": export_onnx(args.model, Path(work) / "model.onnx"),
        }
        models = {
            "keras": KerasModel.load(args.model),
            "litert": LiteModel(files["litert"]),
            "onnxruntime": OnnxModel(files["onnxruntime"]),
        }
        rows = {}
        for kind, model in models.items():
            outputs, rate = batch_outputs(model, inputs)
            rows[kind] = {
                "fresh": fresh_process(kind, files[kind], args.fresh),
                "rate": rate,
                "outputs": outputs,
                "latency": latency(model, singles, args.calls),
                "size": files[kind].stat().st_size,
            }

    keras = rows["keras"]
    print(f"{args.model}; {len(inputs):,} MNIST test images; light runtimes with {THREADS} thread(s)")
    print(
        f"{'':12} {'fresh: load+1st (wall)':>24} {'peak RSS':>10} {'1-image p50 / p95':>19} "
        f"{'images/s':>9} {'max |diff|':>10} {'file':>9}"
    )
    for kind, row in rows.items():
        difference = np.abs(row["outputs"] - keras["outputs"]).max()
        print(
            f"{kind:12} {row['fresh']['seconds']:10.2f} s ({row['fresh']['wall']:5.2f} s) "
            f"{row['fresh']['peak_rss_mb']:7.0f} MB {row['latency'][0]:7.3f} / {row['latency'][1]:6.3f} ms "
            f"{row['rate']:9.0f} {difference:10.1e} {row['size'] / 1e3:6.0f} kB"
        )
    print("ratios against keras (higher is better):")
    for kind, row in rows.items():
        if kind != "keras":
            print(
                f"  {kind:12} load+1st {keras['fresh']['seconds'] / row['fresh']['seconds']:5.1f}x faster, "
                f"peak RSS {keras['fresh']['peak_rss_mb'] / row['fresh']['peak_rss_mb']:5.1f}x smaller, "
                f"1-image p50 {keras['latency'][0] / row['latency'][0]:5.1f}x faster, "
                f"throughput {row['rate'] / keras['rate']:4.2f}x"
            )


if __name__ == "__main__":
    main()
