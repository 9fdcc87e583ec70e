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
            rows.append({"low": float(edges[b]), "high": float(edges[b + 1]), "count": int(members.sum()),
                         "accuracy": float(correct[members].mean()), "confidence": float(confidence[members].mean())})
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
        "misclassified": [{"index": int(i), "label": int(labels[i]), "predicted": [int(t) for t in top],
                           "probabilities": [float(probabilities[i, t]) for t in top]}
                          for i, top in zip(wrong, top2)],
        "calibration": calibration(probabilities, labels),
    }


def probabilities(model, images: np.ndarray, chunk: int = 1000) -> np.ndarray:
    """``model``'s outputs for float ``images`` (N,28,28,1), a chunk at a time.

    ``predict_on_batch`` rather than ``predict``: no tf.data iterator is made, so none has to be torn
    down, which can stall for up to a minute (see ``train._dataset``)."""
    return np.concatenate([np.asarray(model.predict_on_batch(images[start:start + chunk]))
                           for start in range(0, len(images), chunk)])


def evaluate_model(model, images: np.ndarray, labels: np.ndarray) -> dict:
    """``images`` float (N,28,28,1) in [0,1]; returns :func:`summarize`'s dict."""
    return summarize(probabilities(model, images), np.asarray(labels))


def measure(model, validation, test) -> dict:
    """What a run or a shipped model records: :func:`summarize` on ``test`` plus the validation accuracy
    (both ``(images, labels)``, images float (N,28,28,1) in [0,1])."""
    x_val, y_val = validation
    metrics = evaluate_model(model, *test)
    metrics["validation_accuracy"] = float(np.mean(probabilities(model, x_val).argmax(1) == np.asarray(y_val)))
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
    return {"runs": len(values), "mean": mean, "standard_deviation": deviation, "confidence": confidence,
            "interval": (mean - half, mean + half), "smallest": float(values.min()),
            "reached": int((values >= target - 1e-9).sum()), "target": target}
