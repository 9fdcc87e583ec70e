"""``Recognizer``: the only inference entry point, for MNIST-style images and canvases."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .preprocess import canvas_to_mnist

MODEL_ENV = "DIGITGLYPH_MODEL"
DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "models" / "model.keras"
# Below this top-1 probability the answer is "not sure" (digit=None).  With the shipped
# model 0.08 % of MNIST test images fall below it, and accuracy on the rest is 99.72 %
# (benchmarks/accuracy.py); scribbles and non-digits mostly fall below it.
CONFIDENCE_THRESHOLD = 0.6


@dataclass(frozen=True)
class Prediction:
    """What the model made of one canvas.

    ``digit`` is ``None`` when the canvas is empty (``status == "empty"``) or the
    model is unsure (``status == "unsure"``: top probability below the threshold).
    """

    digit: int | None
    probabilities: tuple[float, ...]
    model_input: np.ndarray | None = field(repr=False)
    status: str = "ok"  # "ok", "unsure" or "empty"

    @property
    def confidence(self) -> float:
        return max(self.probabilities) if self.probabilities else 0.0

    @property
    def best_guess(self) -> int | None:
        return int(np.argmax(self.probabilities)) if self.status != "empty" else None


class Recognizer:
    """A trained model plus the canvas preprocessing spec.

    >>> recognizer = Recognizer.load()            # the shipped model
    >>> recognizer.predict_mnist(images)          # (N,28,28) uint8 -> (N,10) float
    >>> recognizer.predict_canvas(rgba).digit     # any canvas -> Prediction
    """

    def __init__(self, model, version: str = "unknown", threshold: float = CONFIDENCE_THRESHOLD):
        import tensorflow as tf

        self.model = model
        self.version = version
        self.threshold = threshold
        self._forward = tf.function(lambda x: model(x, training=False), reduce_retracing=True,
                                    input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32)])

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, threshold: float = CONFIDENCE_THRESHOLD) -> "Recognizer":
        path = Path(path or os.environ.get(MODEL_ENV) or DEFAULT_MODEL)
        if not path.is_file():
            raise FileNotFoundError(f"no model at {path}: pass a .keras file, set {MODEL_ENV}, "
                                    "or train one with `digitglyph train`")
        import keras

        try:
            model = keras.models.load_model(path, compile=False)
        except Exception as error:  # keras raises many types for a bad file
            raise ValueError(f"{path} is not a loadable Keras model: {error}") from None
        if tuple(model.input_shape[1:]) != (28, 28, 1) or tuple(model.output_shape[1:]) != (10,):
            raise ValueError(f"{path} maps {model.input_shape} to {model.output_shape}; "
                             "a digit model maps (None, 28, 28, 1) to (None, 10)")
        version = f"{path.stem}-{hashlib.sha256(path.read_bytes()).hexdigest()[:12]}"
        return cls(model, version=version, threshold=threshold)

    def predict_mnist(self, images) -> np.ndarray:
        """``(N, 28, 28)`` uint8 MNIST-style images (0 background, 255 ink) -> ``(N, 10)`` probabilities."""
        images = np.asarray(images)
        if images.ndim == 2 and images.shape == (28, 28):
            raise ValueError("predict_mnist takes a batch (N, 28, 28); wrap a single image as images[None]")
        if images.ndim == 4 and images.shape[-1] == 1:
            images = images[..., 0]
        if images.ndim != 3 or images.shape[1:] != (28, 28):
            raise ValueError(f"images must have shape (N, 28, 28), got {images.shape}")
        if len(images) == 0:
            raise ValueError("images is an empty batch (N = 0)")
        if images.dtype != np.uint8:
            if not np.issubdtype(images.dtype, np.number) or np.isnan(images).any():
                raise ValueError(f"images must be uint8 0-255 without NaN, got dtype {images.dtype}")
            raise ValueError(f"images must be uint8 0-255 like MNIST, got dtype {images.dtype}; "
                             "convert with np.clip(x, 0, 255).astype(np.uint8) if they are 0-255 values")
        x = images.astype(np.float32)[..., None] / 255.0
        outputs = [self._forward(x[i: i + 1024]).numpy() for i in range(0, len(x), 1024)]
        return np.concatenate(outputs).astype(np.float64)

    def predict_canvas(self, image) -> Prediction:
        """Any canvas image (see :mod:`digitglyph.preprocess`) -> :class:`Prediction`."""
        model_input = canvas_to_mnist(image)
        if model_input is None:
            return Prediction(None, (0.0,) * 10, None, "empty")
        probabilities = self.predict_mnist(model_input[None])[0]
        top = int(np.argmax(probabilities))
        confident = probabilities[top] >= self.threshold
        return Prediction(top if confident else None, tuple(float(p) for p in probabilities), model_input,
                          "ok" if confident else "unsure")
