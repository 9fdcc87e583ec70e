"""The canvas-to-MNIST spec: shared vectors, invariances, empty canvases and bad input."""

import json
from pathlib import Path

import numpy as np
import pytest

from digitglyph.preprocess import CanvasError, canvas_to_mnist
from digitglyph.strokes import digit_pen_paths, place_paths, render_strokes
from digitglyph.vectors import VECTORS, build_vectors, decode_canvas

CASES = json.loads(Path(VECTORS).read_text())["cases"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_python_reproduces_every_shared_vector(case):
    output = canvas_to_mnist(decode_canvas(case))
    if case["expected"] is None:
        assert output is None
    else:
        assert output is not None and output.shape == (28, 28) and output.dtype == np.uint8
        assert np.abs(output.astype(int).ravel() - case["expected"]).max() <= 1


def test_vector_file_is_up_to_date(mnist):
    """The committed vectors are what the current spec and generator produce."""
    _, (images, labels) = mnist
    regenerated = build_vectors(images, labels)
    assert [c["name"] for c in regenerated] == [c["name"] for c in CASES]
    for new, old in zip(regenerated, CASES, strict=True):
        assert new["expected"] == old["expected"], new["name"]


def _digit_canvas(mnist, index=0, side=280, brush=20, height=200, centre=(140, 140)):
    _, (images, _) = mnist
    strokes = place_paths(digit_pen_paths(images[index]), side, height, centre)
    return render_strokes(strokes, side, side, brush)


def test_output_looks_like_mnist(mnist):
    output = canvas_to_mnist(_digit_canvas(mnist))
    rows, cols = np.flatnonzero(output.any(1)), np.flatnonzero(output.any(0))
    assert max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1) == 20
    assert output.max() == 255
    mass = output.astype(float)
    cy = (mass.sum(1) @ np.arange(28)) / mass.sum()
    cx = (mass.sum(0) @ np.arange(28)) / mass.sum()
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5


def test_position_and_canvas_size_do_not_matter(mnist):
    a = canvas_to_mnist(_digit_canvas(mnist, centre=(140, 140)))
    b = canvas_to_mnist(_digit_canvas(mnist, centre=(100, 170)))
    c = canvas_to_mnist(_digit_canvas(mnist, side=560, brush=40, height=400, centre=(280, 280)))
    # sub-pixel placement changes the anti-aliasing, not the digit: the images stay highly correlated
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.8
    assert np.corrcoef(a.ravel(), c.ravel())[0, 1] > 0.85


def test_colours_and_polarity_give_the_same_digit(mnist):
    alpha = _digit_canvas(mnist)[:, :, 3]
    transparent = np.zeros(alpha.shape + (4,), np.uint8)
    transparent[..., 3] = alpha
    black_on_white = np.repeat((255 - alpha)[..., None], 3, 2)
    white_on_black_grey = alpha.copy()
    reference = canvas_to_mnist(transparent).astype(int)
    for variant in (black_on_white, white_on_black_grey, white_on_black_grey[..., None]):
        assert np.abs(canvas_to_mnist(variant).astype(int) - reference).max() <= 1


def test_mnist_digits_pass_through_nearly_unchanged(mnist):
    _, (images, _) = mnist
    for image in images[:50]:
        output = canvas_to_mnist(image)
        assert np.abs(output.astype(int) - image).mean() < 8


@pytest.mark.parametrize(
    "canvas",
    [
        np.zeros((280, 280, 4), np.uint8),
        np.full((280, 280, 3), 255, np.uint8),
        np.zeros((280, 280), np.uint8),
    ],
)
def test_empty_canvas_is_none(canvas):
    assert canvas_to_mnist(canvas) is None


def test_near_empty_canvases_are_none():
    speck = np.zeros((280, 280), np.uint8)
    speck[10:14, 10:14] = 255
    assert canvas_to_mnist(speck) is None
    faint = np.zeros((280, 280), np.uint8)
    faint[50:200, 50:200] = 60
    assert canvas_to_mnist(faint) is None
    noise = (np.random.default_rng(0).random((280, 280)) * 40).astype(np.uint8)
    assert canvas_to_mnist(noise) is None


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((28, 28), np.float32), "uint8"),
        (np.zeros((28, 28, 2), np.uint8), "shape"),
        (np.zeros((0, 28), np.uint8), "empty"),
        ([[0, 1], [2, 3]], "numpy array"),
        (np.zeros((2, 28, 28, 1), np.uint8), "shape"),
    ],
)
def test_bad_input_gets_a_clear_error(bad, message):
    with pytest.raises(CanvasError, match=message):
        canvas_to_mnist(bad)


# ---- issue 17: a few pixels that are not fully opaque must not decide the ink ----


def _white_canvas_with_a_bar():
    canvas = np.full((280, 280, 4), 255, np.uint8)
    canvas[40:240, 130:150, :3] = 0
    return canvas


def _clean_digit(mnist, ink=(0, 0, 0), paper=(255, 255, 255)):
    """A drawn digit composited on opaque paper, and the transparent canvas it came from."""
    transparent = _digit_canvas(mnist, index=3)
    coverage = transparent[..., 3:].astype(float) / 255
    opaque = np.empty_like(transparent)
    opaque[..., :3] = np.floor(np.array(paper) * (1 - coverage) + np.array(ink) * coverage + 0.5)
    opaque[..., 3] = 255
    return opaque, transparent


def test_one_transparent_pixel_does_not_fill_an_opaque_canvas():
    reference = canvas_to_mnist(_white_canvas_with_a_bar())
    canvas = _white_canvas_with_a_bar()
    canvas[0, 0, 3] = 0
    output = canvas_to_mnist(canvas)
    assert np.array_equal(output, reference)
    assert (output > 0).sum() < 100, "a bar, not a filled square"


def test_alpha_254_on_ink_or_paper_changes_nothing(mnist):
    canvas = _white_canvas_with_a_bar()
    canvas[40:240, 130:150, 3] = 254
    assert np.array_equal(canvas_to_mnist(canvas), canvas_to_mnist(_white_canvas_with_a_bar()))
    opaque, _ = _clean_digit(mnist)
    patched = opaque.copy()
    patched[200:260, 10:90, 3] = 254
    patched[0, :, 3] = 254
    assert np.abs(canvas_to_mnist(patched).astype(int) - canvas_to_mnist(opaque)).max() <= 1


@pytest.mark.parametrize("ink, paper", [((0, 0, 0), (255, 255, 255)), ((240, 240, 240), (30, 30, 30))])
def test_a_screenshot_with_rounded_transparent_corners_reads_as_its_digit(mnist, ink, paper):
    opaque, transparent = _clean_digit(mnist, ink, paper)
    screenshot = opaque.copy()
    y, x = np.mgrid[:280, :280] + 0.5
    outside = np.maximum(0, np.maximum(24 - x, x - 256)) ** 2 + np.maximum(0, np.maximum(24 - y, y - 256)) ** 2 > 24**2
    screenshot[outside] = 0  # transparent black
    reference = canvas_to_mnist(transparent).astype(int)
    assert np.abs(canvas_to_mnist(screenshot).astype(int) - reference).max() <= 1
    assert np.array_equal(canvas_to_mnist(screenshot), canvas_to_mnist(opaque))


@pytest.mark.parametrize("paper_alpha", [64, 128, 200])
def test_semi_transparent_paper_is_background(mnist, paper_alpha):
    opaque, transparent = _clean_digit(mnist)
    semi = opaque.copy()
    semi[..., 3] = np.maximum(paper_alpha, transparent[..., 3])
    output, reference = canvas_to_mnist(semi), canvas_to_mnist(transparent)
    assert output is not None and (output > 0).sum() < 1.5 * (reference > 0).sum()
    assert np.corrcoef(output.ravel(), reference.ravel())[0, 1] > 0.95
