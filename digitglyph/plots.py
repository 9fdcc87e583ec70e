"""Figures shared by the notebooks and reports: data exploration, one training run, a sweep.

Every plotting function returns a :class:`matplotlib.figure.Figure`.  Pass
``save_as`` to also write it as a PNG: a bare name (``"confusion"``) goes under
``reports/figures/``, a path with a folder goes exactly there.  The measurements they draw come from
the modules that own them (:mod:`digitglyph.features`, :mod:`digitglyph.evaluate`).

Images are MNIST arrays: ``(N, 28, 28)`` uint8 in [0, 255] or float in [0, 1]
(a trailing channel axis is accepted).
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.colors import LogNorm
from matplotlib.ticker import MaxNLocator

from .features import INK_THRESHOLD, pca_2d
from .features import as_float_images as _as_images
from .paths import FIGURES as FIGURES_DIR

DIGITS = list(range(10))
PALETTE = "tab10"

sns.set_theme(style="whitegrid", context="notebook", rc={"figure.dpi": 80})  # smaller executed notebooks


def save(figure, save_as: str | os.PathLike | None):
    """Write ``figure`` as a PNG (see the module docstring) and return it."""
    if save_as is not None:
        path = Path(save_as)
        if path.parent == Path("."):
            path = FIGURES_DIR / path
        path = path.with_suffix(".png")
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=100, bbox_inches="tight")
    return figure


def class_balance(train_labels, test_labels, save_as=None):
    counts = pd.concat(
        [
            pd.DataFrame(
                {
                    "digit": DIGITS,
                    "split": name,
                    "share": np.bincount(np.asarray(labels), minlength=10) / len(labels) * 100,
                    "count": np.bincount(np.asarray(labels), minlength=10),
                }
            )
            for name, labels in (("train", train_labels), ("test", test_labels))
        ]
    )
    figure, axis = plt.subplots(figsize=(9, 3.8))
    sns.barplot(counts, x="digit", y="share", hue="split", ax=axis)
    axis.axhline(10, color="grey", linestyle="--", linewidth=1)
    axis.set(
        ylabel="share of split (%)",
        title=f"Class balance: {len(train_labels):,} training and {len(test_labels):,} test images",
    )
    return save(figure, save_as)


def image_gallery(images, titles, columns: int = 10, cmap="gray_r", title=None, save_as=None):
    """A grid of images with one small title each."""
    images = _as_images(images)
    rows = max(1, int(np.ceil(len(images) / columns)))
    figure, axes = plt.subplots(rows, columns, figsize=(columns * 1.15, rows * 1.35), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for axis, image, text in zip(axes.flat, images, titles, strict=False):  # spare axes stay blank
        axis.imshow(image, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")  # true pixels, small PNGs
        axis.set_title(text, fontsize=8)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return save(figure, save_as)


def sample_grid(images, labels, per_class: int = 10, seed: int = 0, title=None, save_as=None):
    """``per_class`` random examples of every digit, one row per digit."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    chosen = np.concatenate([rng.choice(np.flatnonzero(labels == digit), per_class, replace=False) for digit in DIGITS])
    return image_gallery(
        np.asarray(images)[chosen],
        [str(labels[i]) for i in chosen],
        columns=per_class,
        title=title or f"{per_class} random training images per digit",
        save_as=save_as,
    )


def mean_images(images, labels, save_as=None):
    images, labels = _as_images(images), np.asarray(labels)
    means = np.stack([images[labels == digit].mean(0) for digit in DIGITS])
    figure = image_gallery(
        means / means.max(),
        [f"mean {d}" for d in DIGITS],
        cmap="magma",
        title="Mean image per digit (brighter = ink more often there)",
    )
    return save(figure, save_as)


def intensity_distribution(images, labels, save_as=None):
    images, labels = _as_images(images), np.asarray(labels)
    ink = images[images > 0]
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 3.8))
    left.hist(ink, bins=50, log=True, color="C0")
    left.set(
        xlabel="pixel intensity (non-zero pixels only)",
        ylabel="pixels (log)",
        title=f"{np.mean(images == 0):.0%} of pixels are exactly 0; ink is mostly saturated",
    )
    share = pd.DataFrame({"label": labels, "ink": (images >= INK_THRESHOLD).mean((1, 2)) * 100})
    sns.boxplot(share, x="label", y="ink", ax=right, fliersize=1.5, color="C0")
    right.set(xlabel="digit", ylabel="ink pixels (% of image)", title="How much ink each digit uses")
    figure.tight_layout()
    return save(figure, save_as)


def ink_geometry(measurements: pd.DataFrame, save_as=None):
    """Bounding-box size per digit and the spread of centres of mass."""
    figure, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    sizes = measurements.melt(
        id_vars="label", value_vars=["box_height", "box_width"], var_name="side", value_name="pixels"
    )
    sns.boxplot(sizes, x="label", y="pixels", hue="side", ax=axes[0], fliersize=1.5)
    axes[0].set(xlabel="digit", title="Ink bounding box (MNIST boxes are 20 px tall)")
    sns.scatterplot(
        measurements,
        x="centre_column",
        y="centre_row",
        hue="label",
        palette=PALETTE,
        s=8,
        alpha=0.5,
        ax=axes[1],
        legend=False,
    )
    axes[1].set(
        xlim=(12.5, 15.5), ylim=(15.5, 12.5), aspect="equal", title="Centre of mass: within half a pixel of the middle"
    )
    spread = (
        measurements.groupby("label")[["centre_row", "centre_column"]]
        .std()
        .reset_index()
        .melt(id_vars="label", var_name="axis", value_name="std")
    )
    sns.barplot(spread, x="label", y="std", hue="axis", ax=axes[2])
    axes[2].set(xlabel="digit", ylabel="standard deviation (pixels)", title="Centre-of-mass spread")
    figure.tight_layout()
    return save(figure, save_as)


def stroke_thickness(measurements: pd.DataFrame, save_as=None):
    figure, axis = plt.subplots(figsize=(9, 3.8))
    sns.violinplot(measurements, x="label", y="stroke_thickness", ax=axis, color="C2", cut=0, inner="quartile")
    axis.set(
        xlabel="digit",
        ylabel="pixels",
        title=f"Stroke thickness (ink area / skeleton length), median {measurements.stroke_thickness.median():.1f} px",
    )
    return save(figure, save_as)


def pca_embedding(images, labels, save_as=None):
    coordinates, explained = pca_2d(images)
    figure, axis = plt.subplots(figsize=(7.5, 6.5))
    sns.scatterplot(
        x=coordinates[:, 0],
        y=coordinates[:, 1],
        hue=np.asarray(labels),
        palette=PALETTE,
        s=9,
        alpha=0.6,
        linewidth=0,
        ax=axis,
    )
    axis.set(
        xlabel=f"PC 1 ({explained[0]:.0%} of variance)",
        ylabel=f"PC 2 ({explained[1]:.0%})",
        title=f"2-D PCA of {len(images):,} images: digits overlap in a linear view",
    )
    axis.legend(title="digit", markerscale=2, bbox_to_anchor=(1.01, 1), loc="upper left")
    return save(figure, save_as)


def hardest_digits(images, hardness: pd.DataFrame, count: int = 30, save_as=None):
    """The images of :func:`centroid_hardness` that most resemble another digit's mean."""
    top = hardness.head(count)
    return image_gallery(
        np.asarray(images)[top["index"]],
        [f"{row.label} looks {row.looks_like}" for row in top.itertuples()],
        title="Hardest-looking test digits (closer to another digit's mean image)",
        save_as=save_as,
    )


# ----------------------------------------------------------------------------- one training run


def learning_curves(history, save_as=None):
    """``history``: rows of :func:`digitglyph.train.read_history` (or its DataFrame)."""
    frame = pd.DataFrame(history)
    frame["epoch"] = frame["epoch"] + 1
    panels = [
        ("loss", ["loss", "val_loss"]),
        ("accuracy", ["accuracy", "val_accuracy"]),
        ("learning rate", ["learning_rate"]),
    ]
    figure, axes = plt.subplots(1, 3, figsize=(15, 3.8))
    for axis, (name, columns) in zip(axes, panels, strict=True):
        for column in [c for c in columns if c in frame]:
            axis.plot(
                frame["epoch"],
                frame[column],
                marker="o",
                label="validation" if column.startswith("val_") else "training",
            )
        axis.set(xlabel="epoch", title=name)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        if len(columns) > 1:
            axis.legend()
    if "val_accuracy" in frame:
        best = frame.loc[frame["val_accuracy"].idxmax()]
        axes[1].set_title(f"accuracy (best validation {best['val_accuracy']:.2%} at epoch {int(best['epoch'])})")
    figure.tight_layout()
    return save(figure, save_as)


def confusion_heatmap(matrix, save_as=None):
    """Counts on a log colour scale so that single mistakes stand out next to the ~1000 correct ones."""
    matrix = np.asarray(matrix)
    figure, axis = plt.subplots(figsize=(8, 6.8))
    sns.heatmap(
        matrix,
        annot=True,
        fmt="d",
        mask=matrix == 0,
        norm=LogNorm(vmin=1, vmax=max(matrix.max(), 2)),
        cmap="rocket_r",
        cbar_kws={"label": "images (log scale)"},
        ax=axis,
        annot_kws={"fontsize": 8},
    )
    axis.grid(False)
    errors = matrix.sum() - np.trace(matrix)
    axis.set(
        xlabel="predicted digit",
        ylabel="true digit",
        title=f"Confusion matrix: {errors} errors in {matrix.sum():,} test images",
    )
    return save(figure, save_as)


def per_class_accuracy(per_class: dict, save_as=None):
    frame = pd.DataFrame({"digit": [int(d) for d in per_class], "accuracy": [v * 100 for v in per_class.values()]})
    figure, axis = plt.subplots(figsize=(9, 3.8))
    sns.barplot(frame, x="digit", y="accuracy", ax=axis, color="C0")
    low = frame["accuracy"].min()
    axis.set(
        ylim=(max(0, np.floor(low) - 1), 100),
        ylabel="test accuracy (%)",
        title=f"Per-class accuracy (worst: digit {frame.loc[frame.accuracy.idxmin(), 'digit']}, {low:.2f}%)",
    )
    for patch, value in zip(axis.patches, frame["accuracy"], strict=False):  # legend patches come after
        axis.annotate(
            f"{value:.1f}",
            (patch.get_x() + patch.get_width() / 2, patch.get_height()),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    return save(figure, save_as)


def misclassified_gallery(images, misclassified: list[dict], count: int = 30, save_as=None):
    """``misclassified``: entries of :func:`digitglyph.evaluate.summarize` (index, label, top-2 predictions),
    most confident mistakes first."""
    worst = sorted(misclassified, key=lambda entry: -entry["probabilities"][0])[:count]
    titles = [
        f"true {e['label']}\n{e['predicted'][0]}: {e['probabilities'][0]:.0%} "
        f"{e['predicted'][1]}: {e['probabilities'][1]:.0%}"
        for e in worst
    ]
    return image_gallery(
        np.asarray(images)[[e["index"] for e in worst]],
        titles,
        title=f"Most confident mistakes ({len(worst)} of {len(misclassified)}), with the top-2 predicted probabilities",
        save_as=save_as,
    )


def reliability_diagram(calibration: dict, save_as=None):
    """``calibration``: :func:`digitglyph.evaluate.calibration`'s dict."""
    bins = pd.DataFrame(calibration["bins"])
    centres, widths = (bins["low"] + bins["high"]) / 2, bins["high"] - bins["low"]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(6.5, 7), sharex=True, height_ratios=[3, 1])
    top.bar(centres, bins["accuracy"], width=widths, edgecolor="black", label="accuracy")
    top.bar(
        centres,
        bins["confidence"] - bins["accuracy"],
        bottom=bins["accuracy"],
        width=widths,
        color="C3",
        alpha=0.35,
        label="gap to confidence",
    )
    top.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
    top.set(
        ylabel="accuracy",
        ylim=(0, 1),
        title=f"Reliability diagram (expected calibration error {calibration['expected_calibration_error']:.4f})",
    )
    top.legend(loc="upper left")
    bottom.bar(centres, bins["count"], width=widths, color="grey")
    bottom.set(yscale="log", xlabel="top-1 confidence", ylabel="images", xlim=(0, 1))
    figure.tight_layout()
    return save(figure, save_as)


# ----------------------------------------------------------------------------- a sweep


def _percent(results: pd.DataFrame) -> pd.DataFrame:
    done = results[results["status"] == "done"].copy()
    done["test accuracy (%)"] = done["test_accuracy"] * 100
    return done


def accuracy_by_architecture(results: pd.DataFrame, save_as=None):
    """Every seed as a point, the mean as a bar: the sweep's headline."""
    done = _percent(results)
    order = done.groupby("architecture")["test accuracy (%)"].mean().sort_values().index
    figure, axis = plt.subplots(figsize=(8, 4.2))
    sns.barplot(
        done, x="architecture", y="test accuracy (%)", order=order, ax=axis, color="C0", alpha=0.35, errorbar=None
    )
    sns.stripplot(
        done,
        x="architecture",
        y="test accuracy (%)",
        order=order,
        hue="seed",
        ax=axis,
        palette="dark",
        size=7,
        jitter=0.15,
    )
    low, high = done["test accuracy (%)"].min(), done["test accuracy (%)"].max()
    axis.set(
        ylim=(max(0, low - max(0.3, (high - low) * 0.5)), min(100, high + max(0.1, (high - low) * 0.2))),
        title="MNIST test accuracy per architecture (bar: mean over seeds)",
    )
    for position, name in enumerate(order):
        mean = done.loc[done.architecture == name, "test accuracy (%)"].mean()
        axis.annotate(
            f"mean {mean:.2f}",
            (position, axis.get_ylim()[0]),
            ha="center",
            va="bottom",
            fontsize=9,
            xytext=(0, 6),
            textcoords="offset points",
        )
    return save(figure, save_as)


def validation_curves(histories: pd.DataFrame, save_as=None):
    """``histories``: one row per run and epoch with ``run_id``, ``architecture``, ``epoch``, ``val_accuracy``."""
    frame = histories.assign(
        epoch=histories["epoch"] + 1, **{"validation accuracy (%)": histories["val_accuracy"] * 100}
    )
    figure, axis = plt.subplots(figsize=(8, 4.5))
    sns.lineplot(
        frame,
        x="epoch",
        y="validation accuracy (%)",
        hue="architecture",
        units="run_id",
        estimator=None,
        marker="o",
        ax=axis,
    )
    axis.set(
        ylim=(max(0, frame["validation accuracy (%)"].min() - 2), 100), title="Validation accuracy per epoch, every run"
    )
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.legend(bbox_to_anchor=(1.01, 1), loc="upper left")
    return save(figure, save_as)


def accuracy_vs_time(results: pd.DataFrame, save_as=None):
    done = _percent(results)
    figure, axis = plt.subplots(figsize=(8, 4.5))
    sns.scatterplot(
        done, x="wall_time_s", y="test accuracy (%)", hue="architecture", style="architecture", s=80, ax=axis
    )
    axis.set(xlabel="training time (s, one run)", title="Test accuracy vs training time")
    axis.legend(bbox_to_anchor=(1.01, 1), loc="upper left")
    return save(figure, save_as)


def accuracy_vs_parameter(results: pd.DataFrame, parameter: str, save_as=None):
    """Accuracy against one numeric parameter (a swept hyperparameter, or ``parameter_count``)."""
    done = _percent(results)
    figure, axis = plt.subplots(figsize=(8, 4.5))
    sns.lineplot(
        done,
        x=parameter,
        y="test accuracy (%)",
        hue="architecture",
        style="architecture",
        markers=True,
        dashes=False,
        errorbar=("pi", 100),
        err_style="bars",
        ax=axis,
        markersize=9,
    )
    values = done[parameter].astype(float)
    if values.min() > 0 and values.max() / values.min() > 10:
        axis.set_xscale("log")
    axis.set(
        xlabel=parameter.replace("_", " "),
        title=f"Test accuracy vs {parameter.replace('_', ' ')} (bars: range over seeds)",
    )
    axis.legend(bbox_to_anchor=(1.01, 1), loc="upper left")
    return save(figure, save_as)


# ----------------------------------------------------------------------------- time to accuracy


def time_to_accuracy(curves: pd.DataFrame, target_gap: float | None = None, save_as=None):
    """Test accuracy against training seconds, one line per recipe and seed.

    ``curves``: one row per recipe, seed and epoch with ``recipe``, ``seed``, ``seconds``, ``test_accuracy``
    (a fraction).  Each run's last point is its model at the end of the budget; with ``target_gap`` (points)
    a dotted line marks, per seed, the baseline's end plus the gap (the first recipe is the baseline).
    """
    frame = curves.assign(**{"test accuracy (%)": curves["test_accuracy"] * 100, "seed": curves["seed"].astype(str)})
    figure, axis = plt.subplots(figsize=(8.5, 4.8))
    sns.lineplot(
        frame,
        x="seconds",
        y="test accuracy (%)",
        hue="recipe",
        style="seed",
        markers=True,
        dashes=False,
        ax=axis,
        markersize=5,
        alpha=0.85,
    )
    accuracy = frame["test accuracy (%)"]
    axis.set(
        ylim=(max(0, accuracy.quantile(0.15) - 0.3), 100 - (100 - accuracy.max()) / 2),
        xlabel="training seconds (2-core CPU)",
        title="MNIST test accuracy after each epoch, the same wall-clock budget per recipe",
    )
    if target_gap is not None:
        baseline = frame[frame["recipe"] == frame["recipe"].iloc[0]]
        for _, run in baseline.groupby("seed"):
            end = run.sort_values("seconds")["test accuracy (%)"].iloc[-1]
            axis.axhline(end + target_gap, color="grey", linestyle=":", linewidth=1)
        axis.plot([], [], color="grey", linestyle=":", label=f"baseline's end + {target_gap:.2f} (per seed)")
    axis.legend(bbox_to_anchor=(1.01, 1), loc="upper left")
    return save(figure, save_as)


def paired_ends(ends: pd.DataFrame, verdict: dict, save_as=None):
    """Each seed's end of budget for the baseline and ours, the target above the baseline's, and the
    verdict over all seeds (:func:`digitglyph.evaluate.paired_differences`) in the title.

    ``ends``: one row per seed with ``seed``, ``glyph17`` and ``ours`` (fractions)."""
    ends = ends.sort_values("seed").reset_index(drop=True)
    gap = verdict["target"]
    figure, axis = plt.subplots(figsize=(8.5, 4.2))
    positions = np.arange(len(ends))
    baseline, ours = ends["glyph17"] * 100, ends["ours"] * 100
    axis.vlines(positions, baseline, ours, color="lightgrey", linewidth=3, zorder=1)
    colours = sns.color_palette(PALETTE)
    axis.scatter(positions, baseline, color=colours[0], label="glyph17, original recipe", zorder=3)
    axis.scatter(positions, ours, color=colours[1], label="ours", zorder=3)
    axis.scatter(
        positions,
        baseline + gap,
        marker="_",
        s=400,
        color="black",
        linewidth=1.5,
        label=f"glyph17's end + {gap:.2f} (target)",
        zorder=2,
    )
    axis.set_xticks(positions, [str(seed) for seed in ends["seed"]])
    low, high = verdict["interval"]
    axis.set(
        xlabel="seed",
        ylabel="test accuracy at the end of the budget (%)",
        title=f"difference over {verdict['runs']} seeds: mean {verdict['mean']:+.2f} points, "
        f"95 % interval {low:+.2f} to {high:+.2f}; {verdict['reached']} of {verdict['runs']} "
        f"single runs at least +{gap:.2f}",
    )
    axis.title.set_fontsize(10)
    axis.legend(bbox_to_anchor=(1.01, 1), loc="upper left")
    return save(figure, save_as)


# ----------------------------------------------------------------------------- pen data and "not a digit"


def characters_per_source(table: pd.DataFrame, save_as=None):
    """``table``: one row per pen character with ``source`` and ``category``: counts per source."""
    counts = table.groupby(["source", "category"]).size().rename("characters").reset_index()
    order = table.source.value_counts().index
    figure, axis = plt.subplots(figsize=(12, 4))
    sns.barplot(counts, x="source", y="characters", hue="category", order=order, ax=axis)
    axis.set_yscale("log")
    axis.tick_params(axis="x", rotation=60)
    axis.set(
        xlabel="",
        title=f"{len(table):,} pen characters from {table.source.nunique()} sources (pendigits and the UNIPEN sites)",
    )
    return save(figure, save_as)


def strokes_per_character(table: pd.DataFrame, save_as=None):
    """``table``: ``source``, ``category``, ``strokes``: how many pen strokes digits and others take."""
    figure, axis = plt.subplots(figsize=(12, 4))
    digits = table[table.category == "digit"]
    sns.countplot(
        digits.assign(strokes=digits.strokes.clip(upper=5)), x="label", hue="strokes", ax=axis, palette="crest"
    )
    axis.set(
        xlabel="digit",
        ylabel="pen digits",
        title="Strokes per pen digit (5 = five or more): 4, 5 and 7 are often drawn in two strokes, 0 and 8 in one",
    )
    return save(figure, save_as)


def shape_against_mnist(measurements: pd.DataFrame, save_as=None):
    """``measurements``: :func:`digitglyph.features.ink_measurements` rows with a ``collection`` column."""
    figure, axes = plt.subplots(1, 3, figsize=(15, 4))
    for axis, column, title in zip(
        axes,
        ("box_width", "stroke_thickness", "slant"),
        ("ink box width (pixels)", "stroke thickness (pixels)", "slant (shear)"),
        strict=True,
    ):
        sns.boxplot(measurements, x="label", y=column, hue="collection", ax=axis, showfliers=False)
        axis.set(xlabel="digit", ylabel="", title=title)
    figure.suptitle(
        "Pen digits (rendered as the apps draw, default brush) against MNIST, after the canvas spec "
        "(outliers not drawn)"
    )
    figure.tight_layout()
    return save(figure, save_as)


def _breakdown(part: dict, key: str, value: str, minimum: int) -> pd.DataFrame:
    """A report's per-source or per-character breakdown as a table in percent, its rows with at least ``minimum``
    images, sorted by ``value``."""
    rows = [
        {key: name, value: 100 * values[value], "count": values["count"]}
        for name, values in part.items()
        if values["count"] >= minimum
    ]
    return pd.DataFrame(rows).sort_values(value)


def accuracy_by_source(report: dict, minimum: int = 50, target: float | None = None, save_as=None):
    """A digit set's report (``evaluate.digit_set_report``): accuracy of each source with ``minimum`` digits."""
    table = _breakdown(report["by_source"], "source", "accuracy", minimum)
    figure, axis = plt.subplots(figsize=(10, 0.35 * len(table) + 1.5))
    sns.barplot(table, y="source", x="accuracy", color="C0", ax=axis)
    for index, row in enumerate(table.itertuples()):
        axis.text(row.accuracy, index, f" {row.accuracy:.1f}% of {row.count}", va="center", fontsize=9)
    if target is not None:
        axis.axvline(100 * target, color="C3", linestyle="--", linewidth=1)
    axis.set(
        xlim=(min(90, table.accuracy.min() - 1), 101),
        xlabel="accuracy (%)",
        ylabel="",
        title=f"Held-out writers' pen digits: {100 * report['accuracy']:.2f}% of {report['count']:,}",
    )
    return save(figure, save_as)


def rejection_by_character(report: dict, minimum: int = 10, target: float | None = None, save_as=None):
    """A non-digit report (``evaluate.non_digit_report``): the share answered "not a digit", per character."""
    table = _breakdown(report["by_character"], "character", "rejected", minimum)
    figure, axis = plt.subplots(figsize=(max(8, 0.22 * len(table)), 4.5))
    sns.barplot(table, x="character", y="rejected", color="C2", ax=axis)
    axis.tick_params(axis="x", rotation=90, labelsize=9)
    if target is not None:
        axis.axhline(100 * target, color="C3", linestyle="--", linewidth=1)
    axis.set(
        ylim=(0, 101),
        xlabel="",
        ylabel='answered "not a digit" (%)',
        title=f'Letters, symbols and generated scribbles answered "not a digit": {100 * report["rejected"]:.1f}% '
        f"of {report['count']:,}",
    )
    return save(figure, save_as)
