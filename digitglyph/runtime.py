"""The light serving format, and the two back ends that run a digit model.

The shipped ``models/model.keras`` has a light export beside it, ``models/model.tflite``: the same
network converted by TensorFlow's ``TFLiteConverter`` and run by LiteRT (``ai-edge-litert``), which
loads in a fraction of a second and a few MB instead of importing TensorFlow (about 800 MB per
process).  ``benchmarks/light_runtime.py`` measured it against ONNX Runtime (see the README).

Both back ends have one interface, ``outputs(batch) -> (N, K)`` for a float32 batch ``(N, 28, 28, 1)``
in [0, 1] (``preprocess.network_input``), with K = 10 digit outputs or 11 (the last: not a digit):

* :class:`LiteModel` runs a ``.tflite`` file with LiteRT and imports neither TensorFlow nor Keras;
* :class:`KerasModel` runs a Keras model (the fallback for a model that has no light export).

:func:`export_light` writes the light file of a ``.keras`` file (TensorFlow is imported there only),
records the sha256 of the ``.keras`` file it came from inside the light file, and refuses to write a
file whose outputs differ from Keras by more than :data:`PARITY`.  :func:`light_file_for` tells
whether a ``.keras`` file has a current light export.

    python -m digitglyph.runtime models/model.keras     # writes models/model.tflite
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import os
import threading
from pathlib import Path

import numpy as np

LIGHT_SUFFIX = ".tflite"
SOURCE_KEY = "digitglyph_source_sha256"  # metadata entry of the light file: the .keras file it was exported from
PARITY = 1e-5  # largest difference from Keras an export may have on any output
INPUT_SHAPE = (28, 28, 1)
OUTPUT_COUNTS = (10, 11)
THREADS = 1  # one thread per model: a served machine runs many kernels on few cores


def sha256_of(path: str | os.PathLike) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def light_path(model_path: str | os.PathLike) -> Path:
    """Where the light export of a ``.keras`` file lives: beside it, ``model.keras`` -> ``model.tflite``."""
    return Path(model_path).with_suffix(LIGHT_SUFFIX)


def light_file_for(model_path: str | os.PathLike, model_sha256: str) -> Path | None:
    """The light export beside ``model_path`` if there is one exported from exactly this ``.keras`` content."""
    path = light_path(model_path)
    if not path.is_file():
        return None
    return path if source_of(path.read_bytes()) == model_sha256 else None


def source_of(flatbuffer: bytes) -> str | None:
    """The sha256 of the ``.keras`` file a light file was exported from (``None``: not recorded)."""
    from ai_edge_litert import schema_py_generated as schema

    try:
        model = schema.Model.GetRootAs(flatbuffer, 0)
        for index in range(model.MetadataLength()):
            entry = model.Metadata(index)
            if entry.Name() == SOURCE_KEY.encode():
                return model.Buffers(entry.Buffer()).DataAsNumpy().tobytes().decode()
    except Exception:  # noqa: BLE001 -- any parse failure of a foreign file means "no recorded source"
        return None
    return None


def check_shapes(path, input_shape, output_shape) -> int:
    """The model's output count, or a ValueError naming ``path`` if it is not a digit model's shape."""
    if tuple(input_shape[1:]) != INPUT_SHAPE or len(output_shape) != 2 or output_shape[1] not in OUTPUT_COUNTS:
        raise ValueError(
            f"{path} maps {tuple(input_shape)} to {tuple(output_shape)}; a digit model maps "
            "(None, 28, 28, 1) to (None, 10), or to (None, 11) with 'not a digit' last"
        )
    return int(output_shape[1])


def _batch(batch) -> np.ndarray:
    batch = np.ascontiguousarray(batch, np.float32)
    if batch.ndim != 4 or batch.shape[1:] != INPUT_SHAPE or len(batch) == 0:
        raise ValueError(f"a model batch is float32 (N, 28, 28, 1) with N >= 1, got {batch.shape}")
    return batch


class LiteModel:
    """A ``.tflite`` digit model run by LiteRT, without TensorFlow or Keras."""

    def __init__(self, path: str | os.PathLike, content: bytes | None = None):
        from ai_edge_litert.interpreter import Interpreter

        self.path = Path(path)
        content = self.path.read_bytes() if content is None else content
        self.source_sha256 = source_of(content)
        try:
            self._interpreter = Interpreter(model_content=content, num_threads=THREADS)
        except (ValueError, RuntimeError) as error:
            raise ValueError(f"{self.path} is not a LiteRT model: {error}") from None
        inputs, outputs = self._interpreter.get_input_details(), self._interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ValueError(
                f"{self.path} has {len(inputs)} inputs and {len(outputs)} outputs; a digit model has one of each"
            )
        self.output_count = check_shapes(self.path, inputs[0]["shape_signature"], outputs[0]["shape_signature"])
        self._input, self._output = inputs[0]["index"], outputs[0]["index"]
        self._batch_size = None
        self._lock = threading.Lock()  # one interpreter: one call at a time

    def outputs(self, batch) -> np.ndarray:
        batch = _batch(batch)
        with self._lock:
            if len(batch) != self._batch_size:
                self._interpreter.resize_tensor_input(self._input, batch.shape)
                self._interpreter.allocate_tensors()
                self._batch_size = len(batch)
            self._interpreter.set_tensor(self._input, batch)
            self._interpreter.invoke()
            return self._interpreter.get_tensor(self._output)


class KerasModel:
    """A Keras digit model (imports TensorFlow): the fallback for a model without a light export."""

    def __init__(self, model, path: str | os.PathLike = "<in memory>"):
        import tensorflow as tf

        self.model, self.path = model, Path(path)
        self.output_count = check_shapes(self.path, model.input_shape, model.output_shape)
        self._forward = tf.function(
            lambda x: model(x, training=False),
            reduce_retracing=True,
            input_signature=[tf.TensorSpec([None, *INPUT_SHAPE], tf.float32)],
        )

    @classmethod
    def load(cls, path: str | os.PathLike) -> KerasModel:
        import keras

        try:
            model = keras.models.load_model(path, compile=False)
        except Exception as error:  # noqa: BLE001 -- keras raises many types for a bad file
            raise ValueError(f"{path} is not a loadable Keras model: {error}") from None
        return cls(model, path)

    def outputs(self, batch) -> np.ndarray:
        return self._forward(_batch(batch)).numpy()


def probe_images(count: int = 64, seed: int = 0) -> np.ndarray:
    """Network inputs that exercise a model without any data set: blank, full, noise and random bars."""
    generator = np.random.default_rng(seed)
    images = generator.uniform(0, 1, (count, *INPUT_SHAPE)).astype(np.float32)
    images[0], images[1] = 0, 1
    for image in images[2 : count // 2]:  # sparse bright strokes on black, more like digits
        image[...] = 0
        top, left = generator.integers(2, 20, 2)
        image[top : top + 8, left : left + 3] = 1
        image[top + 6 : top + 9, left : left + 8] = generator.uniform(0.5, 1)
    return images


def export_light(model_path: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Write the light export of the ``.keras`` file ``model_path`` (default: beside it) and return its path.

    The file records the sha256 of ``model_path``'s content and is checked against Keras on
    :func:`probe_images` (at most :data:`PARITY` apart) before it takes its final name.
    """
    import keras
    import tensorflow as tf
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    model_path = Path(model_path)
    out = light_path(model_path) if out is None else Path(out)
    reference = KerasModel(keras.models.load_model(model_path, compile=False), model_path)
    with contextlib.redirect_stdout(io.StringIO()):  # the converter prints every captured variable
        flatbuffer = tf.lite.TFLiteConverter.from_keras_model(reference.model).convert()
    converted = flatbuffer_utils.read_model_from_bytearray(flatbuffer)
    converted.buffers.append(schema.BufferT())
    converted.buffers[-1].data = np.frombuffer(sha256_of(model_path).encode(), np.uint8)
    converted.metadata = [*(converted.metadata or []), schema.MetadataT()]
    converted.metadata[-1].name, converted.metadata[-1].buffer = SOURCE_KEY, len(converted.buffers) - 1
    content = bytes(flatbuffer_utils.convert_object_to_bytearray(converted))

    probes = probe_images()
    difference = np.abs(LiteModel(out, content).outputs(probes) - reference.outputs(probes)).max()
    if not difference <= PARITY:
        raise ValueError(
            f"the LiteRT export of {model_path} differs from Keras by {difference:.2g} "
            f"(allowed {PARITY:g}); not written"
        )
    staging = out.with_name(f".{out.name}.partial")
    with open(staging, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(staging, out)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description="Write the light (LiteRT) export of a .keras digit model.")
    parser.add_argument("model", help="the .keras file; the .tflite is written beside it")
    args = parser.parse_args(argv)
    print(export_light(args.model))


if __name__ == "__main__":
    main()
