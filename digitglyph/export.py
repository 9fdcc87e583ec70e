"""Export the recognizer to TensorFlow.js and build the static web page (``web/dist``).

    python -m digitglyph.export [--model M] [--out web/dist] [--float32]   # or: digitglyph export
    python -m digitglyph.export --serve [--out web/dist]                 # serve a built site locally

Path: Keras 3 model -> TF SavedModel (``model.export``) -> TF.js *graph* model
(``tensorflowjs.converters.convert_tf_saved_model``), loaded in the page with
``tf.loadGraphModel``.  (TF.js cannot read a Keras 3 layers ``model.json``, and the
tensorflowjs Keras path needs Keras 2.)  Weights are stored as float16 by default:
half the bytes, and lossless, because float16 export takes only a *deployable* model
(:mod:`digitglyph.deploy`: batch norms folded, every weight a float16 value), which is
what ``digitglyph ship`` puts in ``models/``.  TF.js dequantises them to the very
float32 values Keras computes with, so both runtimes agree to float32 rounding.

The build fails loudly (:class:`ExportError`) unless the produced model is a graph
model whose every op TF.js implements, with a (-1, 28, 28, 1) -> (-1, 10) signature
(or (-1, 11): the ten digits and "not a digit", see :mod:`digitglyph.answers`),
weight files of the declared sizes, and unless the pinned TF.js (run by Node from
``web/node_modules``) loads it and reproduces every output of the Keras model within 1e-4.

``build.json`` carries the model's answer rule (:class:`digitglyph.answers.AnswerRule`, as
``Recognizer.load`` reads it from the ``metrics.json`` beside the model, or the defaults), so the
page answers with the thresholds chosen for that model.

The site (relative URLs only, so it works from any static server and from a GitHub
Pages project subpath)::

    index.html  build.json  src/{app.js,sketch.js,answers.js,preprocess.js,style.css,icon.svg}
    vendor/{tf-core,tf-backend-cpu,tf-converter}.es2017.min.js  model/{model.json,*.bin}
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import http.server
import json
import shutil
import subprocess
import sys
import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from . import __version__
from .answers import DIGITS, check_outputs
from .deploy import is_float16_exact
from .paths import WEB
from .preprocess import network_input
from .recognizer import Recognizer

PAGE_FILES = [
    "index.html",
    "src/app.js",
    "src/sketch.js",
    "src/answers.js",
    "src/preprocess.js",
    "src/style.css",
    "src/icon.svg",
]
OUTPUT_WIDTHS = (DIGITS, DIGITS + 1)  # the ten digit probabilities, and optionally "not a digit"
TFJS_PACKAGES = {"tfjs-core": "tf-core", "tfjs-backend-cpu": "tf-backend-cpu", "tfjs-converter": "tf-converter"}
MODEL_RUNNER = WEB / "tools" / "run-model.mjs"
DIST = WEB / "dist"
MANIFEST = "build.json"
# The Keras model and TF.js must agree this closely on the probe images (measured with the
# shipped model, float16 weights, 1,000 MNIST test images: 6e-7).
TOLERANCE = 1e-4
WEIGHT_TYPES = ("float16", "float32")
PROBE_IMAGES = 16


class ExportError(ValueError):
    """The model could not be exported to a TF.js model the page can load."""


def main(args=None) -> int:
    if args is None:
        args = parser().parse_args()
    out = Path(args.out) if args.out else DIST
    if getattr(args, "serve", False):
        with serve(out, port=8000) as url:
            print(f"serving {out} at {url} (Ctrl+C stops)")
            threading.Event().wait()
        return 0
    weights = "float32" if getattr(args, "float32", False) else "float16"
    manifest = build_site(args.model, out, weights=weights)
    print(
        f"built {out}: model {manifest['model_version']}, {weights} weights "
        f"({manifest['weights_bytes']:,} bytes), TF.js {manifest['tfjs_version']}, "
        f"max |TF.js - Keras| = {manifest['check']['max_abs_difference']:.2e}"
    )
    return 0


def parser() -> argparse.ArgumentParser:
    result = argparse.ArgumentParser(prog="python -m digitglyph.export", description=__doc__.split("\n\n")[0])
    result.add_argument("--model", help="a .keras file (default: $DIGITGLYPH_MODEL or models/model.keras)")
    result.add_argument("--out", help=f"the site directory to (re)build (default {DIST})")
    result.add_argument("--float32", action="store_true", help="store float32 weights instead of float16")
    result.add_argument("--serve", action="store_true", help="serve an already built --out on 127.0.0.1:8000")
    return result


def build_site(model=None, out=DIST, weights: str = "float16") -> dict:
    """Convert the model, assemble the page in ``out`` and return the build manifest."""
    if weights not in WEIGHT_TYPES:
        raise ExportError(f"weights must be one of {WEIGHT_TYPES}, got {weights!r}")
    out = Path(out)
    _check_out_dir(out)
    sources = _page_sources()
    recognizer = Recognizer.load(model)
    if weights == "float16" and not is_float16_exact(recognizer.model):
        raise ExportError(
            f"model {recognizer.version} has batch norms or weights that are not float16 values, so "
            "float16 storage would make the page compute with other numbers than Python (up to "
            "~1e-3 apart): ship it first (`digitglyph ship RUN_DIR`, which folds and rounds it) "
            "or export with --float32"
        )
    with tempfile.TemporaryDirectory(prefix="digitglyph-site-") as staging:
        site = Path(staging) / "site"
        convert(recognizer.model, site / "model", weights)
        check = check_graph_model(site / "model", recognizer.model)
        for relative, source in sources.items():
            (site / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, site / relative)
        manifest = {
            "model_version": recognizer.version,
            "answer_rule": recognizer.rule.as_dict(),
            "outputs": check["outputs"],
            "weights": weights,
            "weights_bytes": sum(path.stat().st_size for path in (site / "model").glob("*.bin")),
            "tfjs_version": _tfjs_version(),
            "digitglyph_version": __version__,
            "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "check": check,
            "files": {str(path.relative_to(site)): _sha256(path) for path in sorted(site.rglob("*")) if path.is_file()},
        }
        (site / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        if out.exists():
            shutil.rmtree(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(site, out)
    return manifest


def convert(keras_model, model_dir: Path, weights: str) -> None:
    """Keras 3 model -> SavedModel -> TF.js graph model in ``model_dir``."""
    from tensorflowjs.converters import convert_tf_saved_model

    with tempfile.TemporaryDirectory(prefix="digitglyph-savedmodel-") as saved:
        keras_model.export(saved, format="tf_saved_model", verbose=False)
        quantization = {"float16": "*"} if weights == "float16" else None
        try:
            convert_tf_saved_model(
                saved,
                str(model_dir),
                signature_def="serving_default",
                saved_model_tags="serve",
                quantization_dtype_map=quantization,
            )
        except Exception as error:  # the converter raises ValueError, KeyError, ... for unsupported graphs
            raise ExportError(f"tensorflowjs could not convert the model: {error}") from None


def check_graph_model(model_dir: Path, keras_model) -> dict:
    """Fail loudly unless TF.js can load ``model_dir`` and reproduces every output of the Keras model."""
    verify_model_json(model_dir)
    probes = probe_images()
    expected = np.asarray(keras_model(network_input(probes), training=False), np.float64)
    for row in expected:
        try:
            check_outputs(row)
        except ValueError as error:
            raise ExportError(f"the model's outputs cannot be answered: {error}") from None
    actual = run_in_tfjs(model_dir, probes)
    if actual.shape != expected.shape:
        raise ExportError(f"TF.js gives outputs of shape {actual.shape}, Keras {expected.shape}")
    difference = float(np.abs(actual - expected).max())
    if not difference <= TOLERANCE:
        raise ExportError(
            f"TF.js and Keras disagree on the probe images: max |difference| {difference:.2e} > {TOLERANCE:.0e}"
        )
    return {
        "probe_images": len(probes),
        "outputs": int(expected.shape[1]),
        "max_abs_difference": difference,
        "tolerance": TOLERANCE,
    }


def verify_model_json(model_dir: Path) -> dict:
    """Check format, ops, signature and weight files of a TF.js graph model; return its model.json."""
    path = Path(model_dir) / "model.json"
    try:
        model_json = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ExportError(f"{path} is not a readable JSON file: {error}") from None
    if model_json.get("format") != "graph-model":
        raise ExportError(
            f"{path} has format {model_json.get('format')!r}; the page loads only 'graph-model' "
            "(tf.loadGraphModel), which TF.js reads from any TensorFlow version"
        )
    ops = {node.get("op") for node in model_json.get("modelTopology", {}).get("node", [])}
    for function in model_json.get("modelTopology", {}).get("library", {}).get("function", []):
        ops |= {node.get("op") for node in function.get("nodeDef", [])}
    unsupported = sorted(ops - supported_ops())
    if unsupported:
        raise ExportError(f"{path} uses ops TF.js does not implement: {', '.join(map(str, unsupported))}")
    _verify_signature(model_json, path)
    _verify_weight_files(model_json, Path(model_dir))
    return model_json


@functools.cache
def supported_ops() -> frozenset:
    """The TF op names TF.js's graph executor implements (from the tensorflowjs package)."""
    import tensorflowjs

    op_lists = Path(tensorflowjs.__file__).parent / "op_list"
    return frozenset(op["tfOpName"] for path in op_lists.glob("*.json") for op in json.loads(path.read_text()))


def _verify_signature(model_json: dict, path: Path) -> None:
    def shapes(kind):
        tensors = model_json.get("signature", {}).get(kind, {})
        return [
            [int(dim.get("size", -1)) for dim in tensor.get("tensorShape", {}).get("dim", [])]
            for tensor in tensors.values()
        ]

    if shapes("inputs") != [[-1, 28, 28, 1]] or shapes("outputs") not in ([[-1, width]] for width in OUTPUT_WIDTHS):
        raise ExportError(
            f"{path} maps {shapes('inputs')} to {shapes('outputs')}; the page needs one "
            "(-1, 28, 28, 1) input and one (-1, 10) output (or (-1, 11): digits and not-a-digit)"
        )


def _verify_weight_files(model_json: dict, model_dir: Path) -> None:
    bytes_per_value = {"float32": 4, "int32": 4, "float16": 2, "uint8": 1, "uint16": 2, "bool": 1}
    for group in model_json.get("weightsManifest", []):
        expected = 0
        for weight in group["weights"]:
            dtype = weight.get("quantization", {}).get("dtype", weight["dtype"])
            expected += int(np.prod(weight["shape"], dtype=np.int64)) * bytes_per_value[dtype]
        files = [model_dir / name for name in group["paths"]]
        missing = [str(file) for file in files if not file.is_file()]
        if missing:
            raise ExportError(f"weight files missing: {', '.join(missing)}")
        actual = sum(file.stat().st_size for file in files)
        if actual != expected:
            raise ExportError(f"weight files {group['paths']} hold {actual} bytes, model.json declares {expected}")


def probe_images(count: int = PROBE_IMAGES) -> np.ndarray:
    """Deterministic uint8 28x28 images with sparse ink (and one blank) to compare runtimes on."""
    rng = np.random.default_rng(0)
    images = (255 * rng.random((count, 28, 28)) ** 6).astype(np.uint8)
    images[0] = 0
    return images


def run_in_tfjs(model_dir: Path, images: np.ndarray) -> np.ndarray:
    """The outputs ``(N, 10 or 11)`` of the pinned TF.js (CPU backend, in Node) for uint8 ``(N, 28, 28)`` images."""
    _require_node_modules()
    node = shutil.which("node")
    if node is None:
        raise ExportError("node is not installed; the export checks the model with the page's TF.js in Node")
    with tempfile.TemporaryDirectory(prefix="digitglyph-tfjs-") as work:
        inputs, outputs = Path(work) / "inputs.f32", Path(work) / "outputs.f32"
        network_input(images).tofile(inputs)
        result = subprocess.run(
            [node, str(MODEL_RUNNER), str(Path(model_dir).resolve()), str(inputs), str(outputs)],
            cwd=WEB,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if result.returncode != 0:
            raise ExportError(f"TF.js could not load or run {model_dir}:\n{result.stderr.strip()[-2000:]}")
        try:
            width = int(json.loads(result.stdout.strip().splitlines()[-1])["outputs"])
        except (IndexError, KeyError, TypeError, ValueError):
            raise ExportError(f"the TF.js runner gave no summary: {result.stdout[-500:]!r}") from None
        return np.fromfile(outputs, dtype=np.float32).reshape(len(images), width).astype(np.float64)


@contextlib.contextmanager
def serve(site: Path, subpath: str = "", port: int = 0):
    """Serve ``site`` on 127.0.0.1 (under ``/subpath/`` if given, like a GitHub Pages project); yield its URL."""
    site = Path(site).resolve()
    if not (site / "index.html").is_file():
        raise FileNotFoundError(f"no built site at {site}: run `make web` (python -m digitglyph.export) first")
    subpath = subpath.strip("/")
    with tempfile.TemporaryDirectory(prefix="digitglyph-serve-") as root:
        if subpath:
            (Path(root) / subpath).parent.mkdir(parents=True, exist_ok=True)
            (Path(root) / subpath).symlink_to(site, target_is_directory=True)
        handler = functools.partial(_QuietHandler, directory=root if subpath else str(site))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield f"http://127.0.0.1:{server.server_port}/" + (f"{subpath}/" if subpath else "")
        finally:
            server.shutdown()
            server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


def _page_sources() -> dict[str, Path]:
    _require_node_modules()
    sources = {relative: WEB / relative for relative in PAGE_FILES}
    for package, bundle in TFJS_PACKAGES.items():
        bundle_file = WEB / "node_modules" / "@tensorflow" / package / "dist" / f"{bundle}.es2017.min.js"
        sources[f"vendor/{bundle}.es2017.min.js"] = bundle_file
    missing = [str(path) for path in sources.values() if not path.is_file()]
    if missing:
        raise ExportError(f"page files missing: {', '.join(missing)}")
    return sources


def _require_node_modules() -> None:
    if not (WEB / "node_modules" / "@tensorflow" / "tfjs-core").is_dir():
        raise ExportError(f"{WEB / 'node_modules'} lacks TF.js: run `cd web && npm ci` (or `make web`)")


def _tfjs_version() -> str:
    return json.loads((WEB / "node_modules" / "@tensorflow" / "tfjs-core" / "package.json").read_text())["version"]


def _check_out_dir(out: Path) -> None:
    """Refuse to replace a directory that is not a site this module built (or empty)."""
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST).is_file())):
        raise ExportError(
            f"{out} exists and is not a DigitGlyph site (no {MANIFEST}); choose another --out or remove it"
        )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ValueError, FileNotFoundError) as error:
        sys.exit(f"digitglyph export: {error}")
