"""plots: the time-to-accuracy figure draws every run and the target line from the data it is given."""

import numpy as np
import pandas as pd
import pytest

from digitglyph import plots


def test_time_to_accuracy_draws_each_run_and_the_target_above_each_baseline_end(tmp_path):
    rows = []
    for seed, (base_end, our_end) in enumerate([(0.9925, 0.9965), (0.9940, 0.9966)]):
        for epoch in range(1, 6):
            rows.append(
                dict(
                    recipe="glyph17 original recipe",
                    seed=seed,
                    seconds=22.0 * epoch,
                    test_accuracy=base_end - 0.001 * (5 - epoch),
                )
            )
            rows.append(
                dict(recipe="ours", seed=seed, seconds=33.0 * epoch, test_accuracy=our_end - 0.002 * (5 - epoch))
            )
    figure = plots.time_to_accuracy(pd.DataFrame(rows), target_gap=0.30, save_as=tmp_path / "tta")
    assert (tmp_path / "tta.png").stat().st_size > 10_000
    axis = figure.axes[0]
    runs = [line for line in axis.get_lines() if len(line.get_xdata()) == 5]
    assert len(runs) == 4  # two recipes x two seeds
    assert max(float(np.max(line.get_ydata())) for line in runs) == pytest.approx(99.66)
    targets = sorted(
        round(float(line.get_ydata()[0]), 4)
        for line in axis.get_lines()
        if line.get_linestyle() == ":" and len(line.get_ydata()) == 2
    )
    assert targets == [99.55, 99.70]  # each seed's baseline end + 0.30 points


def test_paired_ends_marks_each_seeds_two_ends_and_the_target_above_the_baseline(tmp_path):
    from digitglyph.evaluate import paired_differences

    ends = pd.DataFrame(dict(seed=[7, 0, 1], glyph17=[0.9884, 0.9922, 0.9939], ours=[0.9969, 0.9968, 0.9965]))
    verdict = paired_differences(100 * (ends.ours - ends.glyph17), target=0.30)
    figure = plots.paired_ends(ends, verdict, save_as=tmp_path / "ends")
    assert (tmp_path / "ends.png").stat().st_size > 10_000
    axis = figure.axes[0]
    baseline, ours, target = (np.asarray(collection.get_offsets()) for collection in axis.collections[1:4])
    # sorted by seed (0, 1, 7), one point per seed and recipe, the target 0.30 points above each baseline end
    assert [label.get_text() for label in axis.get_xticklabels()] == ["0", "1", "7"]
    np.testing.assert_allclose(baseline[:, 1], [99.22, 99.39, 98.84])
    np.testing.assert_allclose(ours[:, 1], [99.68, 99.65, 99.69])
    np.testing.assert_allclose(target[:, 1], [99.52, 99.69, 99.14])
    assert "2 of 3 single runs at least +0.30" in axis.get_title()


def test_accuracy_by_source_draws_each_site_with_enough_digits(tmp_path):
    report = {
        "accuracy": 0.985,
        "count": 700,
        "by_source": {
            "pendigits": {"count": 500, "accuracy": 0.99, "rejected": 0.0},
            "unipen/apb": {"count": 150, "accuracy": 0.96, "rejected": 0.01},
            "unipen/cea": {"count": 3, "accuracy": 0.0, "rejected": 0.0},
        },
    }
    figure = plots.accuracy_by_source(report, minimum=50, target=0.97, save_as=tmp_path / "sites")
    axis = figure.axes[0]
    assert [label.get_text() for label in axis.get_yticklabels()] == ["unipen/apb", "pendigits"]  # lowest first
    assert sorted(round(bar.get_width(), 2) for bar in axis.patches) == [96.0, 99.0]
    assert (tmp_path / "sites.png").is_file()


def test_rejection_by_character_sorts_characters_by_their_rejected_share():
    report = {
        "rejected": 0.9,
        "count": 60,
        "by_character": {
            "e": {"count": 20, "rejected": 0.8},
            "+": {"count": 20, "rejected": 1.0},
            "x": {"count": 20, "rejected": 0.9},
            "rare": {"count": 2, "rejected": 0.0},
        },
    }
    axis = plots.rejection_by_character(report, minimum=10, target=0.95).axes[0]
    assert [label.get_text() for label in axis.get_xticklabels()] == ["e", "x", "+"]
    assert [round(bar.get_height()) for bar in axis.patches] == [80, 90, 100]


def test_slant_leans_right_for_a_right_leaning_stroke():
    from digitglyph.features import slant

    upright, right, left = (np.zeros((28, 28), np.uint8) for _ in range(3))
    for row in range(4, 24):
        upright[row, 13:15] = 255
        right[row, 20 - row // 3 : 22 - row // 3] = 255  # the top further right
        left[row, 6 + row // 3 : 8 + row // 3] = 255
    values = slant(np.stack([upright, right, left]))
    assert abs(values[0]) < 0.01 and values[1] > 0.2 and values[2] < -0.2
