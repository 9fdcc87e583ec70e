"""``Recognizer``: the only inference entry point, for MNIST-style images and canvases.

It runs the shipped model's light export (``models/model.tflite``, LiteRT: no TensorFlow on this
path) when there is one for exactly the ``.keras`` file asked for, else the Keras model itself
(:mod:`digitglyph.runtime`).  What the outputs mean to a person (ok / unsure / not a digit / empty)
is decided by :mod:`digitglyph.answers`, with the thresholds recorded in the model's ``metrics.json``.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import answers
from .paths import MODELS
from .preprocess import canvas_to_mnist, network_input
from .runtime import LIGHT_SUFFIX, KerasModel, LiteModel, light_file_for, light_path, probe_images, sha256_of

MODEL_ENV = "DIGITGLYPH_MODEL"
DEFAULT_MODEL = MODELS / "model.keras"
CONFIDENCE_THRESHOLD = answers.UNSURE_BELOW  # kept for old imports; the rule lives in answers.AnswerRule
BATCH = 1024  # images per call into the model


@dataclass(frozen=True)
class Prediction:
    """What the model made of one canvas (see :mod:`digitglyph.answers` for the rules).

    ``digit`` is set only when ``status == "ok"``; it is ``None`` for ``"empty"`` (no ink),
    ``"unsure"`` (top digit probability below the rule's threshold) and ``"not_a_digit"``.
    ``probabilities`` are the ten digit outputs as the model gave them; ``not_a_digit`` is the
    11th output of a model that has one (else 0.0).
    """

    digit: int | None
    probabilities: tuple[float, ...]
    model_input: np.ndarray | None = field(repr=False)
    status: str = "ok"  # one of answers.STATUSES
    not_a_digit: float = 0.0

    @property
    def confidence(self) -> float:
        return max(self.probabilities) if self.probabilities else 0.0

    @property
    def best_guess(self) -> int | None:
        return int(np.argmax(self.probabilities)) if self.status != "empty" else None


class Recognizer:
    """A trained model plus the canvas preprocessing spec and the answer rule.

    >>> recognizer = Recognizer.load()            # the shipped model (its light export)
    >>> recognizer.predict_mnist(images)          # (N,28,28) uint8 -> (N,10) float64
    >>> recognizer.predict_canvas(rgba).digit     # any canvas -> Prediction

    ``model`` is a back end from :mod:`digitglyph.runtime` or a Keras model.  ``threshold``, when
    given, replaces the rule's ``unsure_below``.
    """

    def __init__(
        self,
        model,
        version: str = "unknown",
        threshold: float | None = None,
        rule: answers.AnswerRule | None = None,
        keras_path: str | os.PathLike | None = None,
    ):
        self.runtime = model if isinstance(model, (LiteModel, KerasModel)) else KerasModel(model)
        self.version = version
        rule = rule or answers.AnswerRule()
        if threshold is not None:
            rule = answers.AnswerRule(unsure_below=threshold, not_a_digit_at=rule.not_a_digit_at)
        self.rule = rule
        self.keras_path = Path(keras_path) if keras_path else None
        self._keras_model = None

    @property
    def threshold(self) -> float:
        return self.rule.unsure_below

    @property
    def model(self):
        """The Keras model (loaded on first use, importing TensorFlow): for export and checks, not predicting."""
        if isinstance(self.runtime, KerasModel):
            return self.runtime.model
        if self._keras_model is None:
            if self.keras_path is None or not self.keras_path.is_file():
                raise ValueError(f"{self.runtime.path} has no Keras model beside it")
            self._keras_model = KerasModel.load(self.keras_path).model
        return self._keras_model

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, threshold: float | None = None) -> Recognizer:
        """The model at ``path`` (``.keras`` or its ``.tflite``), else ``$DIGITGLYPH_MODEL``, else the shipped one.

        A ``.keras`` file runs through its light export when the ``.tflite`` beside it was exported from
        exactly this file, else through Keras.  The answer rule comes from ``metrics.json`` beside it.
        """
        if path is not None and str(path).strip() == "":
            raise ValueError("the model path is empty: pass a .keras or .tflite file, or None for the shipped model")
        path = Path(path if path is not None else os.environ.get(MODEL_ENV) or DEFAULT_MODEL)
        if not path.is_file():
            raise FileNotFoundError(
                f"no model at {path}: pass a .keras file, set {MODEL_ENV}, or train one with `digitglyph train`"
            )
        if path.suffix == LIGHT_SUFFIX:
            runtime = LiteModel(path)
            keras_path = path.with_suffix(".keras")
            source = runtime.source_sha256 or sha256_of(path)
        else:
            keras_path, source = path, sha256_of(path)
            light = light_file_for(path, source)
            if light is None and light_path(path).is_file():
                warnings.warn(
                    f"{light_path(path)} was not exported from {path} (re-export it with "
                    f"`python -m digitglyph.runtime {path}`); running the Keras model instead",
                    stacklevel=2,
                )
            runtime = LiteModel(light) if light else KerasModel.load(path)
        check_probabilities(runtime, path)
        version = f"{path.stem}-{source[:12]}"  # stored with corrections: the .keras content's hash, either way
        return cls(runtime, version=version, threshold=threshold, rule=answer_rule(path), keras_path=keras_path)

    def predict_mnist(self, images) -> np.ndarray:
        """``(N, 28, 28)`` uint8 MNIST-style images (0 background, 255 ink) -> ``(N, 10)`` digit probabilities."""
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
            raise ValueError(
                f"images must be uint8 0-255 like MNIST, got dtype {images.dtype}; "
                "convert with np.clip(x, 0, 255).astype(np.uint8) if they are 0-255 values"
            )
        outputs = [self.runtime.outputs(network_input(images[i : i + BATCH])) for i in range(0, len(images), BATCH)]
        return answers.digit_probabilities(np.concatenate(outputs))

    def predict_canvas(self, image) -> Prediction:
        """Any canvas image (see :mod:`digitglyph.preprocess`) -> :class:`Prediction`."""
        model_input = canvas_to_mnist(image)
        outputs = None if model_input is None else self.runtime.outputs(network_input(model_input[None]))[0]
        answer = answers.decide(outputs, self.rule)
        return Prediction(answer.digit, answer.probabilities, model_input, answer.status, answer.not_a_digit)


def check_probabilities(runtime, path) -> None:
    """A ValueError naming ``path`` unless the model's outputs are probabilities (e.g. not logits)."""
    for outputs in runtime.outputs(probe_images(8)):
        try:
            answers.check_outputs(outputs)
        except ValueError as error:
            raise ValueError(
                f"{path} is not a probability model: {error}; got {np.round(outputs, 3).tolist()} "
                "for a probe image (does the model end in a softmax?)"
            ) from None


def answer_rule(path: Path) -> answers.AnswerRule:
    """The answer rule recorded in ``metrics.json`` beside the model (``"answer_rule"``), else the defaults."""
    metrics = path.with_name("metrics.json")
    if not metrics.is_file():
        return answers.AnswerRule()
    try:
        recorded = json.loads(metrics.read_text()).get("answer_rule")
        return answers.AnswerRule.from_dict(recorded)
    except (ValueError, AttributeError, TypeError) as error:
        raise ValueError(f"{metrics} has no valid answer_rule: {error}") from None
