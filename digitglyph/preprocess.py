"""The canvas-to-MNIST specification (Python side).

This docstring is the spec.  ``web/src/preprocess.js`` implements the same steps on
``ImageData``; ``tests/vectors/preprocess.json`` (made by
``python -m digitglyph.vectors``) holds canvases with their expected output, and
both runtimes must reproduce every case within 1 grey level per pixel.

MNIST was made by scaling each NIST digit so that its bounding box fits a 20x20
box (keeping the aspect ratio, anti-aliased), then placing it in a 28x28 field so
that its centre of mass sits at the centre.  ``canvas_to_mnist`` does the same to
a canvas image of any size:

1. **Ink.**  The input is a uint8 greyscale ``(H, W)`` / ``(H, W, 1)``, RGB
   ``(H, W, 3)`` or RGBA ``(H, W, 4)`` array (JS: ``ImageData``, always RGBA).
   Every pixel gets an ink value in ``[0, 255]`` (float).  The *background*
   decides how: it is read from the one-pixel frame of the image (its first and
   last rows and columns; every pixel when the image has at most 2 rows or
   columns), and a *median* below is element ``floor((n - 1) / 2)`` of the ``n``
   values sorted ascending.  Greyscale and RGB images have alpha 255 everywhere.

   * **Transparent background** (the default for HTML and ipycanvas canvases):
     the median alpha of the frame, ``a_b``, is below 128.  The ink is the
     opacity above the background's: ``ink = max(0, alpha - a_b) * 255 / (255 - a_b)``
     (``ink = alpha`` on a fully transparent canvas).  Colour is ignored.
   * **Opaque background** (``a_b >= 128``): the luminance
     ``L = 0.299 R + 0.587 G + 0.114 B`` (greyscale: the value itself) is
     compared with the background level ``b``: the median luminance of the
     frame pixels whose alpha is at least 128.  If ``b >= 128`` the ink is dark
     on light: ``c = max(0, b - L) * 255 / b``; otherwise light on dark:
     ``c = max(0, L - b) * 255 / (255 - b)`` (when ``b`` is 0: ``c = L``).  A
     pixel's ink is that contrast times its opacity: ``ink = c * (alpha / 255)``,
     so a (partly) transparent pixel counts as (partly) background.

   So black-on-white, white-on-black, coloured ink and grey paper all work, and a
   few pixels that are not fully opaque (one transparent pixel, the rounded
   transparent corners of a screenshot, an alpha of 254 somewhere) cannot turn an
   opaque canvas into a filled square: the frame, not any single pixel, decides.

2. **Empty canvas.**  The canvas is *empty* (result ``None``) when no pixel has
   ink of at least ``STRONG_INK`` (64), or when the bounding box of the pixels
   with ink of at least ``INK_THRESHOLD`` (8) has its longer side below
   ``SPECK_FRACTION`` (4 %) of the canvas's longer side, or below ``MIN_SPECK``
   (3) pixels: faint smudges and specks are not digits.

3. **Crop** to that bounding box (rows ``y0..y1``, columns ``x0..x1``, inclusive).

4. **Scale** the box so that its longer side becomes ``BOX`` (20) pixels and the
   shorter one ``max(1, floor(short * 20 / long + 0.5))``, by area averaging: an
   output pixel is the mean of the input over its footprint, counting input
   pixels that straddle the footprint's edge by the fraction inside.  Rows and
   columns are resampled separately with the same weights (:func:`area_weights`).
   This is anti-aliasing the way MNIST's 20x20 normalisation was.

5. **Contrast.**  Divide by the largest value and multiply by 255, so the
   darkest ink is full-strength, like MNIST (faint, thin strokes stay visible).

6. **Centre.**  Put the scaled box in a 28x28 zero field with its top-left corner
   at ``((28 - h) // 2, (28 - w) // 2)``, compute the centre of mass ``(cy, cx)``
   in pixel-index coordinates, and shift by the whole pixels
   ``floor(14 - cy + 0.5)``, ``floor(14 - cx + 0.5)`` (MNIST's mean centre of
   mass is (14.0, 14.0) in these coordinates), each limited so that the box
   stays inside the field.

7. **Quantise** to uint8: ``floor(v + 0.5)`` clipped to ``[0, 255]``.  0 is
   background, 255 is ink, as in the MNIST files; the model divides by 255.

**Stroke width.**  A brush of width ``w`` canvas pixels on a digit whose box's
longer side is ``S`` pixels becomes a stroke of ``w * 20 / S`` MNIST pixels.
MNIST strokes are about 2 to 3 pixels wide, so a digit drawn across most of a
canvas of side ``C`` matches MNIST with a brush of about ``C / 14`` (20 px on a
280 px canvas): the apps' default.  Other widths (from ``C / 28`` to ``C / 8``)
are handled by training with stroke-width augmentation (``augment.py``), not
by the preprocessing.
"""

from __future__ import annotations

import numpy as np

BOX = 20
FIELD = 28
CENTRE = 14.0
INK_THRESHOLD = 8
STRONG_INK = 64
SPECK_FRACTION = 0.04
MIN_SPECK = 3
OPAQUE = 128  # a frame (or a pixel of it) with alpha from here up counts as an opaque background


class CanvasError(ValueError):
    """The array given is not a canvas image this spec accepts."""


def _validate(image) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise CanvasError(f"canvas must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise CanvasError(f"canvas must be uint8 (0-255), got dtype {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise CanvasError(f"canvas must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got shape {image.shape}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise CanvasError(f"canvas is empty (shape {image.shape})")
    return image


def _frame(values: np.ndarray) -> np.ndarray:
    height, width = values.shape
    if height <= 2 or width <= 2:
        return values.ravel()
    return np.concatenate([values[0], values[-1], values[1:-1, 0], values[1:-1, -1]])


def ink(image: np.ndarray) -> np.ndarray:
    """Step 1: the float64 ink map ``(H, W)`` in [0, 255]."""
    image = _validate(image)
    if image.ndim == 3 and image.shape[2] == 4:
        alpha = image[:, :, 3].astype(np.float64)
    else:
        alpha = np.full(image.shape[:2], 255.0)
    frame_alpha = _frame(alpha)
    background_alpha = _median(frame_alpha)
    if background_alpha < OPAQUE:
        return np.maximum(0.0, alpha - background_alpha) * 255.0 / (255.0 - background_alpha)
    if image.ndim == 3:
        rgb = image[:, :, :3].astype(np.float64)
        luminance = 0.299 * rgb[:, :, 0] + 0.587 * rgb[:, :, 1] + 0.114 * rgb[:, :, 2]
    else:
        luminance = image.astype(np.float64)
    background = _median(_frame(luminance)[frame_alpha >= OPAQUE])
    if background >= 128:
        contrast = np.maximum(0.0, background - luminance) * 255.0 / background
    elif background == 0:
        contrast = luminance
    else:
        contrast = np.maximum(0.0, luminance - background) * 255.0 / (255.0 - background)
    return contrast * (alpha / 255.0)


def _median(values: np.ndarray) -> float:
    """The spec's median: element ``floor((n - 1) / 2)`` of the values sorted ascending."""
    ordered = np.sort(values)
    return float(ordered[(len(ordered) - 1) // 2])


def ink_box(ink_map: np.ndarray):
    """Step 2: ``(y0, y1, x0, x1)`` inclusive, or ``None`` for an empty or speck-only canvas."""
    if ink_map.max(initial=0) < STRONG_INK:
        return None
    rows = np.flatnonzero((ink_map >= INK_THRESHOLD).any(axis=1))
    cols = np.flatnonzero((ink_map >= INK_THRESHOLD).any(axis=0))
    y0, y1, x0, x1 = rows[0], rows[-1], cols[0], cols[-1]
    longer = max(y1 - y0 + 1, x1 - x0 + 1)
    if longer < max(MIN_SPECK, SPECK_FRACTION * max(ink_map.shape)):
        return None
    return int(y0), int(y1), int(x0), int(x1)


def area_weights(n_in: int, n_out: int) -> np.ndarray:
    """``(n_out, n_in)`` matrix: row i averages input cells over output cell i's footprint."""
    scale = n_in / n_out
    weights = np.zeros((n_out, n_in))
    for i in range(n_out):
        start, end = i * scale, (i + 1) * scale
        for j in range(int(np.floor(start)), min(int(np.ceil(end)), n_in)):
            weights[i, j] = (min(end, j + 1) - max(start, j)) / scale
    return weights


def scaled_size(height: int, width: int) -> tuple[int, int]:
    """Step 4's output size ``(h, w)``: the longer side ``BOX``, the aspect ratio kept."""
    longer = max(height, width)

    def short(side: int) -> int:
        return max(1, int(np.floor(side * BOX / longer + 0.5)))

    return (BOX, short(width)) if height >= width else (short(height), BOX)


def centre(box: np.ndarray) -> np.ndarray:
    """Step 6: place a float box (at most 20x20) in the 28x28 field by its centre of mass."""
    height, width = box.shape
    top, left = (FIELD - height) // 2, (FIELD - width) // 2
    mass = box.sum()
    cy = (box.sum(axis=1) @ np.arange(height)) / mass + top
    cx = (box.sum(axis=0) @ np.arange(width)) / mass + left
    dy = int(np.floor(CENTRE - cy + 0.5))
    dx = int(np.floor(CENTRE - cx + 0.5))
    dy = min(max(dy, -top), FIELD - height - top)
    dx = min(max(dx, -left), FIELD - width - left)
    field = np.zeros((FIELD, FIELD))
    field[top + dy : top + dy + height, left + dx : left + dx + width] = box
    return field


def canvas_to_mnist(image: np.ndarray) -> np.ndarray | None:
    """A canvas image of any size to a ``(28, 28)`` uint8 MNIST-style image, or ``None`` if empty.

    See the module docstring for the exact specification.
    """
    ink_map = ink(image)
    box = ink_box(ink_map)
    if box is None:
        return None
    y0, y1, x0, x1 = box
    crop = ink_map[y0 : y1 + 1, x0 : x1 + 1]
    out_h, out_w = scaled_size(*crop.shape)
    scaled = area_weights(crop.shape[0], out_h) @ crop @ area_weights(crop.shape[1], out_w).T
    scaled = scaled * (255.0 / scaled.max())
    field = centre(scaled)
    return np.clip(np.floor(field + 0.5), 0, 255).astype(np.uint8)


def network_input(images: np.ndarray) -> np.ndarray:
    """The one conversion of uint8 MNIST-style images ``(N, 28, 28)`` to what the network takes:
    float32 ``(N, 28, 28, 1)`` in [0, 1] (JS: ``networkInput`` in ``web/src/preprocess.js``)."""
    return (np.asarray(images, np.float32) / 255.0)[..., None]
