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


def test_paired_differences_give_the_mean_its_t_interval_and_the_runs_that_reach_the_target():
    import pytest

    from digitglyph.evaluate import paired_differences

    summary = paired_differences([0.46, 0.26, 0.28, 0.31], target=0.30)
    assert summary["mean"] == pytest.approx(0.3275) and summary["runs"] == 4
    assert summary["standard_deviation"] == pytest.approx(0.0907, abs=1e-4)
    # t(0.975, 3) = 3.1824: mean -+ 3.1824 * sd / sqrt(4)
    low, high = summary["interval"]
    assert (low, high) == (pytest.approx(0.3275 - 0.1443, abs=1e-3), pytest.approx(0.3275 + 0.1443, abs=1e-3))
    assert summary["reached"] == 2 and summary["smallest"] == 0.26  # 0.46 and 0.31
    assert paired_differences([0.30, 0.30], target=0.30)["reached"] == 2  # exactly on the target counts
    for bad in ([0.3], [0.3, float("nan")], [[0.3, 0.4]]):
        with pytest.raises(ValueError, match="two or more finite differences"):
            paired_differences(bad, target=0.30)
