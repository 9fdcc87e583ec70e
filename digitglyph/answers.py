"""The answer rules: what the model's outputs mean to a person (Python side of a two-runtime spec).

``web/src/answers.js`` implements the same rules; ``tests/vectors/answers.json`` holds outputs with
their expected answers and wording, and both runtimes must reproduce every case.

A model maps a 28x28 image to either 10 outputs (the probability of each digit) or 11 (the same
plus, last, the probability that the drawing is *not a digit*).  From those outputs and an
:class:`AnswerRule` the answer is decided in this order:

1. **empty**: there were no outputs (the canvas held no ink, see ``preprocess.py``).
2. **not_a_digit**: an 11th output of at least ``not_a_digit_at``.
3. **unsure**: the largest digit output below ``unsure_below``.
4. **ok**: the digit with the largest output (the lowest digit on a tie).

``probabilities`` are the ten digit outputs as the model gave them: with an 11th output they sum to
``1 - not_a_digit``, so a bar of 55 % always means "55 % that it is this digit".  ``digit`` is set only
for ``ok``; ``best_guess`` is the largest digit output whenever something was drawn.

Both apps word each status the same way (:func:`wording`): a large *head* and a line of *detail*.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DIGITS = 10
STATUSES = ("ok", "unsure", "not_a_digit", "empty")
UNSURE_BELOW = 0.6  # top digit probability under this: "not sure"
NEVER = 1.01  # a not-a-digit threshold that no probability reaches (10-output models)


@dataclass(frozen=True)
class AnswerRule:
    """The two thresholds that turn outputs into an answer (the shipped ones are in models/metrics.json)."""

    unsure_below: float = UNSURE_BELOW
    not_a_digit_at: float = NEVER

    def __post_init__(self):
        for name in ("unsure_below", "not_a_digit_at"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= NEVER:
                raise ValueError(f"{name}={value!r} must be a number in (0, {NEVER}]")

    @classmethod
    def from_dict(cls, values: dict | None) -> AnswerRule:
        values = dict(values or {})
        unknown = set(values) - {"unsure_below", "not_a_digit_at"}
        if unknown:
            raise ValueError(f"unknown answer rule field(s) {sorted(unknown)}")
        return cls(**values)

    def as_dict(self) -> dict:
        return {"unsure_below": self.unsure_below, "not_a_digit_at": self.not_a_digit_at}


@dataclass(frozen=True)
class Answer:
    status: str
    digit: int | None
    best_guess: int | None
    probabilities: tuple[float, ...]  # the ten digit outputs
    not_a_digit: float  # the 11th output (0.0 for a 10-output model or an empty canvas)

    @property
    def confidence(self) -> float:
        return max(self.probabilities)


def check_outputs(outputs) -> list[float]:
    """The outputs as floats, or a ValueError saying why they are not 10 or 11 probabilities."""
    values = [float(v) for v in outputs]
    if len(values) not in (DIGITS, DIGITS + 1):
        raise ValueError(f"a model gives 10 or 11 outputs, got {len(values)}")
    if not all(math.isfinite(v) and -1e-6 <= v <= 1 + 1e-6 for v in values) or abs(sum(values) - 1) > 1e-3:
        raise ValueError("model outputs are not probabilities (each in [0, 1], summing to 1)")
    return values


def decide(outputs, rule: AnswerRule = AnswerRule()) -> Answer:
    """Outputs of one image (or ``None`` for an empty canvas) -> :class:`Answer`."""
    if outputs is None:
        return Answer("empty", None, None, (0.0,) * DIGITS, 0.0)
    values = check_outputs(outputs)
    digits = tuple(values[:DIGITS])
    not_a_digit = values[DIGITS] if len(values) > DIGITS else 0.0
    best = max(range(DIGITS), key=lambda digit: (digits[digit], -digit))
    if not_a_digit >= rule.not_a_digit_at:
        status = "not_a_digit"
    elif digits[best] < rule.unsure_below:
        status = "unsure"
    else:
        status = "ok"
    return Answer(status, best if status == "ok" else None, best, digits, not_a_digit)


def digit_probabilities(outputs):
    """A batch of model outputs ``(N, 10 or 11)`` -> ``(N, 10)`` digit probabilities summing to 1.

    What a 10-way digit classifier answers (``Recognizer.predict_mnist``): with an 11th output, the ten
    digit outputs renormalised, i.e. the probabilities given that the image is a digit.
    """
    import numpy as np

    outputs = np.asarray(outputs, np.float64)
    digits = outputs[:, :DIGITS]
    return digits / np.maximum(digits.sum(axis=1, keepdims=True), 1e-12)


def wording(answer: Answer) -> tuple[str, str]:
    """``(head, detail)``: the large sign and the line under it, the same in both apps."""
    if answer.status == "empty":
        return "?", "draw a digit"
    if answer.status == "not_a_digit":
        return "\u2717", "not a digit"
    percent = math.floor(100 * answer.confidence + 0.5)  # JS: Math.floor(100 * c + 0.5), not banker's round
    if answer.status == "unsure":
        return "?", f"not sure (maybe {answer.best_guess}, {percent}%)"
    return str(answer.digit), f"{percent}% sure"
