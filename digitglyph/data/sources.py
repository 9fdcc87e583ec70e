"""The data of a training run, from every source, in one place.

:func:`run_data` gives a :class:`RunData` for a ``TrainConfig``:

* **fit**: what training sees.  MNIST's training images (less the validation split), optionally pen-redrawn
  MNIST digits, the user's corrections, real pen digits of the training writers and "not a digit" examples.
  Pen characters are rendered the way the apps draw (``strokes.render_as_drawn``) in ``pen_variants``
  random styles each (size, brush, mouse / touch / pen); each epoch draws one of an example's variants, so
  the model never learns one rendering.  Not-a-digit examples are letters and symbols of the training
  writers that are not digit-like (:data:`DIGIT_LIKE`), plus generated canvases people really make
  (:func:`generated_non_digits`).  Their label is :data:`NOT_A_DIGIT` (10): the model then has 11 outputs.
* **validation**: MNIST's stratified 5,000 and, with pen data, the validation writers' pen digits and
  non-digits, each rendered once in the apps' default style (brush 20 on the 280 px canvas).
* **test**: MNIST's test set and the test writers' pen digits and non-digits; only ever reported.

Pen writers are split per source (``pen.writer_splits``): a validation or test writer is never a training
writer.  Rendered pen images are cached in the user cache, named by everything that makes them.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from .mnist import default_data_dir, load_mnist, train_validation_split

NOT_A_DIGIT = 10
RENDER_VERSION = 1  # bump when anything that decides the renders changes (pen.WRITER_SPLIT_SEED included;
# DIGIT_LIKE, which decides the non-digits, is part of every render's cache key: _render_cache_file)
EVALUATION_STYLE = {"size": 180.0, "brush": 20.0, "device": "pen"}  # the default brush, a digit of usual size

# Letters and symbols that people write so that they can look exactly like a digit once scaled to 20x20:
# they are neither trained as "not a digit" nor counted as non-digits when measuring rejection.
DIGIT_LIKE = {
    "0": "O o Q D",  # a round O/o is a 0; Q's tail and D's flat side are often barely drawn
    "1": "I l i j J | / \\\\ ! ( ) [ ] { } ' ` , ; . \\@",  # any single near-vertical stroke is a 1 after scaling;
    # UNIPEN's "." and "\@" segments, rendered, are mostly single straight or bent strokes (looked at in 01-explore)
    "2": "Z z",
    "5": "S s",
    "6": "b G",
    "8": "B",
    "9": "g q",
}
DIGIT_LIKE_LABELS = frozenset(label for labels in DIGIT_LIKE.values() for label in labels.split())
# A stroke is straight when no point is further from its chord than this share of the chord (ibm fragments: 0.01-0.09;
# pendigits 4s and 9s written in one narrow stroke: 0.11 and more).
STRAIGHT_STROKE_TOLERANCE = 0.1
GENERATED_KINDS = ("scribble", "zigzag", "crossed_out", "side_by_side", "dot", "tick", "blob")


def is_digit(label: str) -> bool:
    return len(label) == 1 and label in "0123456789"


def is_clear_non_digit(label: str) -> bool:
    """Neither a digit nor a digit-like character (a few UNIPEN "digits" are labelled as letters: by label)."""
    return not is_digit(label) and label not in DIGIT_LIKE_LABELS


def is_stroke_fragment(strokes, label: str) -> bool:
    """A "digit" that no one could read as its label: one straight stroke labelled 0, 2-6, 8 or 9.

    UNIPEN's site ``ibm`` labels each stroke of some two-stroke 4s as a "4" of its own (a vertical line, a
    horizontal line, a diagonal).  Benchmarks report accuracy with and without them; nothing is tuned to them.
    """
    if not is_digit(label) or label in "17" or len(strokes) != 1:
        return False
    points = np.asarray(strokes[0], dtype=float)[:, :2]
    chord = points[-1] - points[0]
    length = float(np.hypot(*chord))
    if length == 0:
        return False
    offsets = np.abs(chord[0] * (points[:, 1] - points[0, 1]) - chord[1] * (points[:, 0] - points[0, 0])) / length
    return bool(offsets.max() < STRAIGHT_STROKE_TOLERANCE * length)


def _digits_and_non_digits(characters, splits, split: str):
    in_split = splits == split
    digits = np.flatnonzero(in_split & np.array([is_digit(label) for label in characters.labels]))
    others = np.flatnonzero(in_split & np.array([is_clear_non_digit(label) for label in characters.labels]))
    return digits, others


@dataclass
class Evaluation:
    """Labelled images of one kind (uint8, MNIST-style), with where each came from."""

    images: np.ndarray
    labels: np.ndarray
    sources: np.ndarray  # "mnist", "pendigits", "unipen/<site>", "generated/<kind>"
    characters: np.ndarray  # the drawn character ("7", "e", "scribble")


@dataclass
class RunData:
    pool: np.ndarray  # uint8 (M, 28, 28): every training image and rendering
    candidates: np.ndarray  # int64 (N, K): example i shows pool[candidates[i, k]] for a k drawn each epoch
    labels: np.ndarray  # (N,) 0-9, or NOT_A_DIGIT
    classes: int
    validation: dict = field(default_factory=dict)  # name -> Evaluation ("mnist", "pen_digits", "non_digits")
    test: dict = field(default_factory=dict)

    @property
    def train_size(self) -> int:
        return len(self.labels)


# -- rendering ---------------------------------------------------------------------------------------


def _render_chunk(job):
    """Worker: render characters (strokes) in the given styles at training scale or at full size."""
    from ..strokes import TRAINING_SCALE, DrawingStyle, render_as_drawn

    strokes_list, styles, full_size, seed = job
    rng = np.random.default_rng(seed)
    images = np.zeros((len(strokes_list), 28, 28), np.uint8)
    for index, (strokes, style) in enumerate(zip(strokes_list, styles, strict=True)):
        style = DrawingStyle(**style)
        image = render_as_drawn(strokes, style, rng, None if full_size else TRAINING_SCALE / style.size)
        if image is not None:
            images[index] = image
    return images


def render_characters(strokes_list, styles, full_size: bool, seed: int, desc: str, workers: int | None = None):
    """``(N, 28, 28)`` uint8 images of ``N`` characters, each in its style, on all cores with a progress bar."""
    from tqdm.auto import tqdm

    chunk = 500
    jobs = [
        (strokes_list[i : i + chunk], styles[i : i + chunk], full_size, seed * 100_003 + i)
        for i in range(0, len(strokes_list), chunk)
    ]
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(jobs) == 1:
        parts = [_render_chunk(job) for job in tqdm(jobs, desc=desc, unit="chunk")]
    else:  # spawned, not forked: the parent may hold TensorFlow's threads
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            parts = list(tqdm(pool.map(_render_chunk, jobs), total=len(jobs), desc=desc, unit="chunk"))
    return np.concatenate(parts) if parts else np.zeros((0, 28, 28), np.uint8)


def _random_styles(count: int, rng) -> list[dict]:
    from ..strokes import DrawingStyle

    return [DrawingStyle.random(rng).__dict__ for _ in range(count)]


# -- generated non-digits ------------------------------------------------------------------------------


def generated_kinds(count: int) -> list[str]:
    """The kinds of ``count`` generated non-digits, in the order :func:`generated_non_digits` makes them."""
    return [GENERATED_KINDS[index % len(GENERATED_KINDS)] for index in range(count)]


def generated_non_digits(count: int, digit_strokes: list, seed: int) -> tuple[list, list]:
    """``count`` canvases that people draw and that are not one digit: scribbles and zigzags, a digit
    crossed out, two or three digits side by side, a dot or a short tick that is big enough to pass the
    empty-canvas rule, a filled blob.  Returns ``(strokes_list, kinds)``.

    A short steep tick is left out: scaled to 20x20 it is exactly a 1 (the canvas spec removes size); a digit
    crossed out gets an X, since a single line through a 0 or a 7 is how many people write those digits.
    """
    rng = np.random.default_rng(seed)
    kinds = generated_kinds(count)
    return [_generated(kind, digit_strokes, rng) for kind in kinds], kinds


def _generated(kind: str, digit_strokes: list, rng) -> list:
    if kind == "scribble":
        steps = rng.normal(0, 1, (rng.integers(12, 40), 2)) * rng.uniform(5, 20)
        return [np.cumsum(steps, axis=0) + rng.normal(0, 2, steps.shape)]
    if kind == "zigzag":
        turns = rng.integers(4, 12)
        x = np.arange(turns + 1) * rng.uniform(8, 20)
        y = np.where(np.arange(turns + 1) % 2, 1, -1) * rng.uniform(15, 60) + rng.normal(0, 3, turns + 1)
        return [_rotate(np.stack([x, y], 1), rng.uniform(0, np.pi))]
    if kind == "crossed_out":  # an X over it: one line through would be a slashed 0 or a crossed 7, both digits
        digit = _digit(digit_strokes, rng)
        low, high = np.concatenate(digit).min(0), np.concatenate(digit).max(0)
        spread = (high - low) * 0.1
        corners = [low - spread * rng.random(2), high + spread * rng.random(2)]
        return digit + [np.array(corners), np.array([[corners[0][0], corners[1][1]], [corners[1][0], corners[0][1]]])]
    if kind == "side_by_side":
        strokes, offset = [], 0.0
        for _ in range(rng.integers(2, 4)):
            digit = _digit(digit_strokes, rng)
            low, high = np.concatenate(digit).min(0), np.concatenate(digit).max(0)
            height = max(high[1] - low[1], 1e-6)
            scaled = [(s - low) * (100 / height) + [offset, rng.normal(0, 5)] for s in digit]
            strokes += scaled
            offset += (high[0] - low[0]) * (100 / height) + rng.uniform(10, 40)
        return strokes
    if kind == "dot":
        return [np.zeros((1, 2)) + rng.normal(0, 0.3, (1, 2))]
    if kind == "tick":  # at least 60 degrees from vertical: a steeper tick is a 1 (or a slanted one)
        angle = rng.uniform(np.radians(60), np.radians(120))
        length = rng.uniform(1, 3)  # in brush widths: short
        return [np.array([[0, 0], [np.sin(angle) * length, np.cos(angle) * length]]) * 20]
    # blob: a filled round or oval patch, scribbled in
    radius = rng.uniform(20, 50)
    turns = np.linspace(0, rng.uniform(4, 8) * np.pi, 120)
    r = radius * np.linspace(1, 0.1, 120)
    return [np.stack([r * np.cos(turns) * rng.uniform(0.6, 1.4), r * np.sin(turns)], 1)]


def _digit(digit_strokes: list, rng) -> list:
    return [np.asarray(s, float) for s in digit_strokes[rng.integers(len(digit_strokes))]]


def _rotate(points: np.ndarray, angle: float) -> np.ndarray:
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return points @ rotation.T


# -- the pen sources of a run ----------------------------------------------------------------------------


def _render_cache_file(kind: str, checksums, *parts) -> Path:
    """Where renders of ``kind`` are cached: named by everything that decides them (the render version, the
    digit-like characters, the sources' checksums, then ``parts``)."""
    key_parts = (kind, RENDER_VERSION, sorted(DIGIT_LIKE_LABELS), checksums, *parts)
    key = hashlib.sha256(" ".join(str(p) for p in key_parts).encode()).hexdigest()[:16]
    return default_data_dir().parent / "pen-cache" / f"rendered-{key}.npz"


def _cached(path: Path, make):
    if path.exists():
        try:
            with np.load(path) as stored:
                return {k: stored[k] for k in stored.files}
        except (OSError, ValueError):
            pass  # unreadable: made again
    arrays = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)
    return arrays


_PEN_SOURCES = {}  # checksums -> (characters, splits): a run asks for them three times (training, validation, test)


def pen_sources(pen_dir=None):
    """The pen characters and each one's writer split (train / validation / test, the same for every run),
    read once per process for each content of the sources."""
    from .pen import load_pen_characters, resolve_pen_dir, source_checksums, writer_splits

    checksums = source_checksums(resolve_pen_dir(pen_dir))
    key = tuple(sorted(checksums.items()))
    if key not in _PEN_SOURCES:
        characters = load_pen_characters(pen_dir)
        _PEN_SOURCES.clear()  # keep one collection in memory
        _PEN_SOURCES[key] = (characters, writer_splits(characters))
    return (*_PEN_SOURCES[key], checksums)


def evaluation_sets(split: str, pen_dir=None, generated: int = 1400) -> dict:
    """The pen digits and clear non-digits of ``split``'s writers (plus generated non-digits), each rendered
    once in the default style at the app's full size: ``{"pen_digits": Evaluation, "non_digits": Evaluation}``.
    The same for every run and benchmark (fixed like the writer split), so their figures compare."""
    from ..strokes import DrawingStyle
    from .pen import WRITER_SPLIT_SEED as seed

    characters, splits, checksums = pen_sources(pen_dir)
    digits, others = _digits_and_non_digits(characters, splits, split)
    train_digits, _ = _digits_and_non_digits(characters, splits, "train")
    style = DrawingStyle(**EVALUATION_STYLE).__dict__

    def make():
        generated_strokes, kinds = generated_non_digits(
            generated, [characters.strokes(i) for i in train_digits], seed=seed + (7 if split == "test" else 5)
        )
        strokes = [characters.strokes(i) for i in np.r_[digits, others]] + generated_strokes
        images = render_characters(strokes, [style] * len(strokes), True, seed, f"rendering {split} writers")
        return {"images": images, "kinds": np.asarray(kinds, str)}

    arrays = _cached(
        _render_cache_file("evaluation", checksums, split, seed, generated, sorted(EVALUATION_STYLE.items())), make
    )
    images, kinds = arrays["images"], arrays["kinds"]
    pen_digits = Evaluation(
        images[: len(digits)],
        characters.labels[digits].astype(np.int64),
        characters.sources[digits],
        characters.labels[digits],
    )
    non_digit_sources = np.r_[characters.sources[others], np.char.add("generated/", kinds)]
    non_digit_characters = np.r_[characters.labels[others], kinds]
    non_digits = Evaluation(
        images[len(digits) :],
        np.full(len(images) - len(digits), NOT_A_DIGIT),
        non_digit_sources.astype(str),
        non_digit_characters.astype(str),
    )
    return {"pen_digits": pen_digits, "non_digits": non_digits}


def training_pen_images(pen_dir, seed: int, variants: int, non_digit_slots: int):
    """Training renders: ``(digit_images (n_digits, K, 28, 28), digit_labels, non_digit_images (M, 28, 28),
    non_digit_characters (M,))``: each non-digit's character (a letter or symbol, or a generated kind)."""
    characters, splits, checksums = pen_sources(pen_dir)
    digits, others = _digits_and_non_digits(characters, splits, "train")
    generated_count = non_digit_slots * variants // 4 if non_digit_slots else 0

    def make():
        rng = np.random.default_rng(seed)
        digit_strokes = [characters.strokes(i) for i in digits]
        strokes = [s for s in digit_strokes for _ in range(variants)]
        digit_images = render_characters(
            strokes, _random_styles(len(strokes), rng), False, seed, "rendering training pen digits"
        )
        generated, _ = generated_non_digits(generated_count, digit_strokes, seed)
        other_strokes = [characters.strokes(i) for i in others] + generated if non_digit_slots else []
        other_images = render_characters(
            other_strokes, _random_styles(len(other_strokes), rng), False, seed + 1, "rendering training non-digits"
        )
        return {"digits": digit_images.reshape(len(digits), variants, 28, 28), "others": other_images}

    arrays = _cached(_render_cache_file("training", checksums, seed, variants, non_digit_slots), make)
    other_characters = (
        np.r_[characters.labels[others].astype(str), generated_kinds(generated_count)]
        if non_digit_slots
        else np.zeros(0, str)
    )
    assert len(other_characters) == len(arrays["others"])  # the order make() rendered them in
    return arrays["digits"], characters.labels[digits].astype(np.int64), arrays["others"], other_characters.astype(str)


# -- hard non-digits ------------------------------------------------------------------------------------------


def acceptance(model_path, images: np.ndarray) -> np.ndarray:
    """How much the 11-output model at ``model_path`` takes each uint8 image for a digit: ``1 - `` its
    not-a-digit output (the soft version of "accepted": the answer rule rejects above a threshold of it)."""
    import keras

    from ..evaluate import probabilities
    from ..preprocess import network_input

    model = keras.models.load_model(model_path, compile=False)
    outputs = probabilities(model, network_input(images))
    if outputs.shape[1] <= NOT_A_DIGIT:
        raise ValueError(
            f"{model_path} has {outputs.shape[1]} outputs: finding hard non-digits needs a not-a-digit output"
        )
    return 1.0 - outputs[:, NOT_A_DIGIT]


def hard_negative_probabilities(accepted: np.ndarray, characters: np.ndarray, emphasis: float) -> np.ndarray:
    """How often each non-digit is drawn: a share ``1 - emphasis`` of the draws uniform, the rest in proportion to
    how much a model accepts it, half for the image itself and half for its character on average (so a letter
    the model confuses with a digit is seen more in every rendering, not only the renderings it happened to miss).
    """
    accepted = np.clip(np.asarray(accepted, dtype=float), 0.0, 1.0)
    count = len(accepted)
    uniform = np.full(count, 1.0 / count)
    _, inverse = np.unique(np.asarray(characters), return_inverse=True)
    by_character = np.bincount(inverse, accepted) / np.bincount(inverse)
    score = 0.5 * (accepted + by_character[inverse])
    if not emphasis or score.sum() <= 0:
        return uniform
    return (1.0 - emphasis) * uniform + emphasis * score / score.sum()


# -- a run's data ---------------------------------------------------------------------------------------------


def mnist_validation_and_test(data_dir, validation_size: int, seed: int):
    """MNIST's validation split (carved from the training images) and its test set, as Evaluations."""
    (x_train, y_train), (x_test, y_test) = load_mnist(data_dir)
    _, (x_val, y_val) = train_validation_split(x_train, y_train, validation_size, seed)
    return (
        Evaluation(x_val, y_val.astype(np.int64), np.full(len(y_val), "mnist"), y_val.astype(str)),
        Evaluation(x_test, y_test.astype(np.int64), np.full(len(y_test), "mnist"), y_test.astype(str)),
    )


def evaluation_data(parameters: dict, data_dir=None, pen_dir=None) -> tuple[dict, dict]:
    """``(validation, test)``: name -> :class:`Evaluation`, for a run's parameters (a ``TrainConfig`` as a
    dict: what ``train`` and ``ship`` measure).  ``data_dir``/``pen_dir`` default to the parameters' own."""
    data_dir = data_dir or parameters.get("data_dir")
    pen_dir = pen_dir or parameters.get("pen_dir")
    seed = parameters["seed"]
    validation, test = mnist_validation_and_test(data_dir, parameters["validation_size"], seed)
    validation, test = {"mnist": validation}, {"mnist": test}
    if parameters.get("pen_digits") or parameters.get("not_a_digit"):
        for name, sets in (("validation", validation), ("test", test)):
            pen = evaluation_sets(name, pen_dir)
            sets["pen_digits"] = pen["pen_digits"]
            if parameters.get("not_a_digit"):
                sets["non_digits"] = pen["non_digits"]
    return validation, test


def run_data(config) -> RunData:
    """Everything a training run sees and measures (see the module docstring)."""
    (x_train, y_train), _ = load_mnist(config.data_dir)
    (x_fit, y_fit), _ = train_validation_split(x_train, y_train, config.validation_size, config.seed)
    if config.train_subset is not None and config.train_subset < len(x_fit):
        order = np.random.default_rng(config.seed).permutation(len(x_fit))[: config.train_subset]
        x_fit, y_fit = x_fit[order], y_fit[order]
    images, labels = [x_fit], [y_fit.astype(np.int64)]
    if config.redrawn_digits:
        x_redrawn, y_redrawn = redrawn(x_fit, y_fit, config.redrawn_digits, config.seed)
        images.append(x_redrawn)
        labels.append(y_redrawn.astype(np.int64))
    if config.corrections_db:
        from ..corrections import CorrectionStore

        x_extra, y_extra = CorrectionStore(config.corrections_db).export_arrays()
        if len(x_extra):
            images += [x_extra] * config.corrections_weight
            labels += [y_extra.astype(np.int64)] * config.corrections_weight
    pool = np.concatenate(images)
    labels = np.concatenate(labels)
    candidates = np.arange(len(pool))[:, None]
    variants = config.pen_variants
    candidates = np.repeat(candidates, variants, axis=1)
    if config.pen_digits or config.not_a_digit:
        digit_images, digit_labels, others, other_characters = training_pen_images(
            config.pen_dir, config.seed, variants, config.not_a_digit
        )
        rng = np.random.default_rng(config.seed + 1)
        pieces, piece_candidates, piece_labels = [pool], [candidates], [labels]
        offset = len(pool)
        if config.pen_digits:
            flat = digit_images.reshape(-1, 28, 28)
            digit_candidates = offset + np.arange(len(flat)).reshape(len(digit_images), variants)
            pieces.append(flat)
            piece_candidates += [digit_candidates] * config.pen_digits
            piece_labels += [digit_labels] * config.pen_digits
            offset += len(flat)
        if config.not_a_digit:  # each slot shows a different random non-digit every epoch
            pieces.append(others)
            shape = (config.not_a_digit, variants)
            if config.not_a_digit_emphasis:  # the non-digits a model takes for digits, more often
                scorer = config.hard_negative_model or config.initial_model
                weights = hard_negative_probabilities(
                    acceptance(scorer, others), other_characters, config.not_a_digit_emphasis
                )
                piece_candidates.append(offset + rng.choice(len(others), shape, p=weights))
            else:
                piece_candidates.append(offset + rng.integers(0, len(others), shape))
            piece_labels.append(np.full(config.not_a_digit, NOT_A_DIGIT))
        pool = np.concatenate(pieces)
        candidates = np.concatenate(piece_candidates)
        labels = np.concatenate(piece_labels)
    validation, test = evaluation_data(vars(config))
    return RunData(
        pool, candidates.astype(np.int64), labels.astype(np.int64), 11 if config.not_a_digit else 10, validation, test
    )


def redrawn(images, labels, count: int, seed: int):
    """Pen-redrawn MNIST training digits (slow to make: cached per count, seed and source images)."""
    from ..strokes import redrawn_mnist

    key = hashlib.sha256(images[:: max(1, len(images) // 500)].tobytes()).hexdigest()[:12]
    cache = default_data_dir().parent / f"redrawn-{count}-{seed}-{key}.npz"
    arrays = _cached(cache, lambda: dict(zip(("x", "y"), redrawn_mnist(images, labels, count, seed=seed), strict=True)))
    return arrays["x"], arrays["y"]


def character_images(characters, labels, per_label: int = 4, seed: int = 0):
    """``per_label`` random characters of each label in ``labels``, drawn in the default style and read through
    the canvas spec: ``(images (N, 28, 28), titles)``, for looking at what a label looks like to the model."""
    from ..strokes import DrawingStyle, render_as_drawn

    rng = np.random.default_rng(seed)
    style = DrawingStyle(**EVALUATION_STYLE)
    images, titles = [], []
    for label in labels:
        members = np.flatnonzero(characters.labels == label)
        for index in rng.choice(members, min(per_label, len(members)), replace=False):
            image = render_as_drawn(characters.strokes(index), style)
            if image is not None:
                images.append(image)
                titles.append(label)
    return np.stack(images), titles


def pen_digit_sample(characters, split: str, count: int, seed: int = 0):
    """``count`` random pen digits of ``split``'s writers drawn in the default style and read through the canvas
    spec (at the app's full size): ``(images (N, 28, 28), labels)``."""
    from .pen import writer_splits

    digits, _ = _digits_and_non_digits(characters, writer_splits(characters), split)
    chosen = np.random.default_rng(seed).choice(digits, min(count, len(digits)), replace=False)
    style = [dict(EVALUATION_STYLE)] * len(chosen)
    images = render_characters(
        [characters.strokes(i) for i in chosen], style, True, seed, f"{split} pen digits", workers=1
    )
    return images, characters.labels[chosen].astype(np.int64)
