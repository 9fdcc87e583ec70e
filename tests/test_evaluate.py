"""evaluate: probabilities in chunks, and the summary a run records."""

import numpy as np
import pytest

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
    assert summary["misclassified"] == [{"index": 3, "label": 2, "predicted": [7, 0], "probabilities": [0.91, 0.01]}]


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


def random_outputs(count: int, seed: int = 0, classes: int = 11) -> np.ndarray:
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, (count, classes))
    outputs = np.exp(logits)
    return outputs / outputs.sum(1, keepdims=True)


def test_vectorised_statuses_agree_with_the_answer_rule():
    from digitglyph.answers import AnswerRule, decide
    from digitglyph.evaluate import statuses

    for classes in (10, 11):
        outputs = random_outputs(500, classes=classes)
        rule = AnswerRule(0.6, 0.3)
        assert list(statuses(outputs, rule)) == [decide(row, rule).status for row in outputs]


def test_the_not_a_digit_threshold_is_the_lowest_within_each_false_rejection_budget():
    from digitglyph.evaluate import choose_not_a_digit_threshold

    pen = random_outputs(1000, seed=1)
    mnist = random_outputs(2000, seed=2)
    threshold = choose_not_a_digit_threshold({"pen_digits": pen, "mnist": mnist}, {"pen_digits": 0.01, "mnist": 0.002})
    assert np.sum(pen[:, 10] >= threshold) <= 10 and np.sum(mnist[:, 10] >= threshold) <= 4
    # and it is the lowest such: a little lower breaks one of the budgets
    lower = threshold - 1e-6
    assert np.sum(pen[:, 10] >= lower) > 10 or np.sum(mnist[:, 10] >= lower) > 4
    assert choose_not_a_digit_threshold({"mnist": mnist[:, :10]}) == 1.01  # a 10-output model never rejects


def test_reports_count_rejections_per_source_and_character():
    from digitglyph.answers import AnswerRule
    from digitglyph.data.sources import Evaluation
    from digitglyph.evaluate import digit_set_report, non_digit_report

    outputs = np.array([[0.9] + [0.0] * 9 + [0.1], [0.1] + [0.0] * 9 + [0.9], [0.0, 0.95] + [0.0] * 8 + [0.05]])
    rule = AnswerRule(0.6, 0.5)
    digits = Evaluation(
        np.zeros((3, 28, 28), np.uint8), np.array([0, 0, 2]), np.array(["a", "a", "b"]), np.array(["0", "0", "2"])
    )
    report = digit_set_report(outputs, digits, rule)
    assert report["accuracy"] == pytest.approx(2 / 3) and report["rejected"] == pytest.approx(1 / 3)
    assert report["accuracy_rejection_as_error"] == pytest.approx(1 / 3)
    assert report["by_source"]["a"] == {"count": 2, "accuracy": 1.0, "rejected": 0.5}
    others = Evaluation(digits.images, np.full(3, 10), np.array(["x", "y", "y"]), np.array(["e", "+", "+"]))
    report = non_digit_report(outputs, others, rule)
    assert report["by_character"]["e"]["rejected"] == 0.0 and report["by_character"]["+"]["rejected"] == 0.5
