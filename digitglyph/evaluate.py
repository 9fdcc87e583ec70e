"""Metrics of a model on labelled images: accuracy, per class, confusion, calibration, mistakes."""

from __future__ import annotations

import numpy as np


def confusion_matrix(labels, predicted, classes: int = 10) -> np.ndarray:
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(labels), np.asarray(predicted)), 1)
    return matrix


def calibration(probabilities, labels, bins: int = 15) -> dict:
    """Reliability-diagram bins and expected calibration error of the top-1 confidence."""
    confidence = probabilities.max(1)
    correct = probabilities.argmax(1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        members = index == b
        if members.any():
            gap = abs(correct[members].mean() - confidence[members].mean())
            ece += members.mean() * gap
            rows.append(
                {
                    "low": float(edges[b]),
                    "high": float(edges[b + 1]),
                    "count": int(members.sum()),
                    "accuracy": float(correct[members].mean()),
                    "confidence": float(confidence[members].mean()),
                }
            )
    return {"expected_calibration_error": float(ece), "bins": rows}


def summarize(probabilities: np.ndarray, labels: np.ndarray) -> dict:
    predicted = probabilities.argmax(1)
    matrix = confusion_matrix(labels, predicted)
    per_class = (np.diag(matrix) / np.maximum(matrix.sum(1), 1)).tolist()
    wrong = np.flatnonzero(predicted != labels)
    top2 = np.argsort(-probabilities[wrong], axis=1)[:, :2]
    return {
        "test_accuracy": float(np.mean(predicted == labels)),
        "test_errors": int(len(wrong)),
        "per_class_accuracy": {str(d): float(a) for d, a in enumerate(per_class)},
        "confusion_matrix": matrix.tolist(),
        "misclassified": [
            {
                "index": int(i),
                "label": int(labels[i]),
                "predicted": [int(t) for t in top],
                "probabilities": [float(probabilities[i, t]) for t in top],
            }
            for i, top in zip(wrong, top2, strict=True)
        ],
        "calibration": calibration(probabilities, labels),
    }


def probabilities(model, images: np.ndarray, chunk: int = 1000) -> np.ndarray:
    """``model``'s outputs for float ``images`` (N,28,28,1), a chunk at a time.

    ``predict_on_batch`` rather than ``predict``: no tf.data iterator is made, so none has to be torn
    down, which can stall for up to a minute (see ``train._dataset``)."""
    return np.concatenate(
        [np.asarray(model.predict_on_batch(images[start : start + chunk])) for start in range(0, len(images), chunk)]
    )


def evaluate_model(model, images: np.ndarray, labels: np.ndarray) -> dict:
    """``images`` float (N,28,28,1) in [0,1]; returns :func:`summarize`'s dict."""
    return summarize(probabilities(model, images), np.asarray(labels))


# The not-a-digit threshold is the lowest that rejects at most these shares of validation digits.
FALSE_REJECTION_BUDGET = {"pen_digits": 0.0025, "mnist": 0.001}


def statuses(outputs: np.ndarray, rule) -> np.ndarray:
    """``answers.decide``'s status for each row of ``outputs`` (N, 10 or 11): the one rule, row by row."""
    from .answers import decide

    return np.array([decide(row, rule).status for row in np.asarray(outputs)], dtype=str)


def choose_not_a_digit_threshold(validation_outputs: dict, budget: dict = FALSE_REJECTION_BUDGET) -> float:
    """The lowest not-a-digit threshold under which no validation digit set loses more than its budget:
    the (1 - budget) quantile of each set's not-a-digit output, the largest of them, nudged above it."""
    from .answers import NEVER

    thresholds = []
    for name, share in budget.items():
        if name in validation_outputs and validation_outputs[name].shape[1] > 10:
            scores = np.sort(validation_outputs[name][:, 10])
            allowed = int(np.floor(share * len(scores)))  # this many may reach the threshold
            thresholds.append(float(np.nextafter(scores[len(scores) - allowed - 1], 2.0)))
    return min(max(thresholds), NEVER) if thresholds else NEVER


def digit_set_report(outputs: np.ndarray, evaluation, rule) -> dict:
    """Accuracy on labelled digits (argmax of the digit outputs), the share rejected as not a digit, and
    accuracy counting a rejection as an error; per source (site) too."""
    predicted = outputs[:, :10].argmax(1)
    correct = predicted == evaluation.labels
    rejected = statuses(outputs, rule) == "not_a_digit"
    report = {
        "count": int(len(correct)),
        "accuracy": float(correct.mean()),
        "rejected": float(rejected.mean()),
        "accuracy_rejection_as_error": float((correct & ~rejected).mean()),
        "by_source": {},
    }
    for source in np.unique(evaluation.sources):
        members = evaluation.sources == source
        report["by_source"][str(source)] = {
            "count": int(members.sum()),
            "accuracy": float(correct[members].mean()),
            "rejected": float(rejected[members].mean()),
        }
    return report


def non_digit_report(outputs: np.ndarray, evaluation, rule) -> dict:
    """The share of non-digits answered "not a digit", overall, per character and per source."""
    rejected = statuses(outputs, rule) == "not_a_digit"
    report = {"count": int(len(rejected)), "rejected": float(rejected.mean()), "by_character": {}, "by_source": {}}
    for key, values in (("by_character", evaluation.characters), ("by_source", evaluation.sources)):
        for value in np.unique(values):
            members = values == value
            report[key][str(value)] = {"count": int(members.sum()), "rejected": float(rejected[members].mean())}
    return report


def measure(model, validation: dict, test: dict) -> dict:
    """What a run or a shipped model records.  ``validation`` and ``test`` map names to
    ``data.sources.Evaluation`` (uint8 images): "mnist" always, "pen_digits" and "non_digits" with pen data.

    MNIST test gets :func:`summarize` (the model as a 10-way digit classifier) at the top level; the
    not-a-digit threshold is chosen on validation only (:func:`choose_not_a_digit_threshold`); every set is
    then reported in ``sources`` (``validation/<name>``, ``test/<name>``) under that answer rule.
    """
    from .answers import UNSURE_BELOW, AnswerRule, digit_probabilities
    from .preprocess import network_input

    outputs = {
        split: {name: probabilities(model, network_input(evaluation.images)) for name, evaluation in sets.items()}
        for split, sets in (("validation", validation), ("test", test))
    }
    rule = AnswerRule(UNSURE_BELOW, choose_not_a_digit_threshold(outputs["validation"]))
    metrics = summarize(digit_probabilities(outputs["test"]["mnist"]), test["mnist"].labels)
    metrics["validation_accuracy"] = float(
        np.mean(outputs["validation"]["mnist"][:, :10].argmax(1) == validation["mnist"].labels)
    )
    metrics["answer_rule"] = rule.as_dict()
    metrics["outputs"] = int(outputs["test"]["mnist"].shape[1])
    metrics["sources"] = {}
    for split, sets in (("validation", validation), ("test", test)):
        for name, evaluation in sets.items():
            report = non_digit_report if name == "non_digits" else digit_set_report
            metrics["sources"][f"{split}/{name}"] = report(outputs[split][name], evaluation, rule)
    return metrics


def paired_differences(differences, target: float, confidence: float = 0.95) -> dict:
    """What several paired runs (one difference per seed, e.g. ours minus the baseline in points) say about
    a target difference: their mean, standard deviation, a Student-t confidence interval of the mean, and
    how many runs reached the target on their own.

    One run's difference is a noisy draw (here the baseline's end alone moves by up to 0.6 points from one
    epoch to the next), so a target on the expected difference is judged by the interval, not by one run.
    """
    from scipy import stats

    values = np.asarray(differences, dtype=float)
    if values.ndim != 1 or len(values) < 2 or not np.isfinite(values).all():
        raise ValueError(f"need two or more finite differences, got {differences!r}")
    mean, deviation = float(values.mean()), float(values.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, len(values) - 1) * deviation / np.sqrt(len(values)))
    return {
        "runs": len(values),
        "mean": mean,
        "standard_deviation": deviation,
        "confidence": confidence,
        "interval": (mean - half, mean + half),
        "smallest": float(values.min()),
        "reached": int((values >= target - 1e-9).sum()),
        "target": target,
    }
