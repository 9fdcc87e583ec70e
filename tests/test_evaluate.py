"""evaluate: probabilities in chunks, and the summary a run records."""

import numpy as np

from digitglyph.evaluate import probabilities, summarize
from digitglyph.models import build


def test_probabilities_in_chunks_match_the_whole_batch():
    model = build("lenet5")
    images = np.random.default_rng(0).random((2_345, 28, 28, 1), dtype=np.float32)
    chunked = probabilities(model, images, chunk=1000)  # 1000 + 1000 + 345
    assert chunked.shape == (2_345, 10)
    np.testing.assert_allclose(chunked, np.asarray(model(images, training=False)), atol=1e-6)


def test_summary_counts_errors_per_class_and_lists_the_mistakes():
    labels = np.array([0, 1, 2, 2])
    probs = np.full((4, 10), 0.01)
    probs[[0, 1, 2, 3], [0, 1, 2, 7]] = 0.91  # the last image (a 2) is read as 7
    summary = summarize(probs, labels)
    assert summary["test_accuracy"] == 0.75 and summary["test_errors"] == 1
    assert summary["per_class_accuracy"]["2"] == 0.5 and summary["per_class_accuracy"]["0"] == 1.0
    assert np.array(summary["confusion_matrix"])[2, 7] == 1
    assert summary["misclassified"] == [{"index": 3, "label": 2, "predicted": [7, 0],
                                         "probabilities": [0.91, 0.01]}]
