"""Measurements of MNIST-style images that the notebooks plot: ink box, centre of mass, stroke thickness,
slant, a 2-D embedding, and how much each image looks like another digit.

Images are ``(N, 28, 28)`` uint8 in [0, 255] or float in [0, 1] (a trailing channel axis is accepted).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

DIGITS = list(range(10))
INK_THRESHOLD = 0.3  # of full intensity: what counts as ink for boxes and stroke thickness


def as_float_images(images) -> np.ndarray:
    """Float ``(N, 28, 28)`` in [0, 1]."""
    images = np.asarray(images)
    if images.ndim == 4:
        images = images[..., 0]
    return images.astype(np.float32) / 255.0 if images.dtype == np.uint8 else images.astype(np.float32)


def slant(images) -> np.ndarray:
    """Each image's slant: the shear of its ink (second moments, as in deskewing), positive leaning right."""
    images = as_float_images(images)
    rows, cols = np.arange(28)[:, None], np.arange(28)[None, :]
    mass = np.maximum(images.sum((1, 2)), 1e-6)
    mean_row = (images * rows).sum((1, 2)) / mass
    mean_col = (images * cols).sum((1, 2)) / mass
    dr, dc = rows[None] - mean_row[:, None, None], cols[None] - mean_col[:, None, None]
    covariance = (images * dr * dc).sum((1, 2)) / mass
    variance = np.maximum((images * dr * dr).sum((1, 2)) / mass, 1e-6)
    return -covariance / variance  # rows grow downwards: a right lean has negative row-column covariance


def ink_measurements(images, labels) -> pd.DataFrame:
    """One row per image: ink bounding box, centre of mass, ink pixels and stroke thickness.

    Stroke thickness is the ink area divided by the length of its one-pixel skeleton:
    the average width of the pen line in pixels.
    """
    from skimage.morphology import skeletonize

    images = as_float_images(images)
    ink = images >= INK_THRESHOLD
    rows, cols = ink.any(2), ink.any(1)
    top, bottom = rows.argmax(1), 27 - rows[:, ::-1].argmax(1)
    left, right = cols.argmax(1), 27 - cols[:, ::-1].argmax(1)
    mass = images.sum((1, 2))
    skeleton_length = np.array([skeletonize(mask).sum() for mask in ink])
    return pd.DataFrame(
        {
            "label": np.asarray(labels),
            "box_height": bottom - top + 1,
            "box_width": right - left + 1,
            "centre_row": (images.sum(2) * np.arange(28)).sum(1) / mass,
            "centre_column": (images.sum(1) * np.arange(28)).sum(1) / mass,
            "ink_pixels": ink.sum((1, 2)),
            "stroke_thickness": ink.sum((1, 2)) / np.maximum(skeleton_length, 1),
            "slant": slant(images),
        }
    )


def pca_2d(images) -> tuple[np.ndarray, np.ndarray]:
    """The first two principal components of the flattened images, and their explained variance ratios."""
    flat = as_float_images(images).reshape(len(images), -1)
    centred = flat - flat.mean(0)
    _, singular, components = np.linalg.svd(centred, full_matrices=False)
    variance = singular**2
    return centred @ components[:2].T, variance[:2] / variance.sum()


def centroid_hardness(train_images, train_labels, images, labels) -> pd.DataFrame:
    """How much each image looks like another digit: distance to its own class's mean training image
    minus the distance to the nearest other class's mean (positive = closer to a wrong digit).
    Sorted hardest first."""
    train = as_float_images(train_images).reshape(len(train_images), -1)
    means = np.stack([train[np.asarray(train_labels) == digit].mean(0) for digit in DIGITS])
    flat = as_float_images(images).reshape(len(images), -1)
    squared = (flat**2).sum(1)[:, None] - 2 * flat @ means.T + (means**2).sum(1)[None]
    distances = np.sqrt(np.maximum(squared, 0))
    labels = np.asarray(labels)
    own = distances[np.arange(len(labels)), labels]
    others = distances.copy()
    others[np.arange(len(labels)), labels] = np.inf
    table = pd.DataFrame(
        {
            "index": np.arange(len(labels)),
            "label": labels,
            "looks_like": others.argmin(1),
            "hardness": own - others.min(1),
        }
    )
    return table.sort_values("hardness", ascending=False, ignore_index=True)
