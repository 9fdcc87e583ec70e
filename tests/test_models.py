"""The architecture registry."""

import numpy as np
import pytest

from digitglyph.models import ARCHITECTURES, build


def test_glyph17_reproduces_the_original_exactly():
    model = build("glyph17")
    assert model.count_params() == 194_762
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds.count("Conv2D") == 6 and kinds.count("BatchNormalization") == 5
    assert kinds.count("Dropout") == 3 and kinds[-1] == "Dense"


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_every_architecture_maps_images_to_probabilities(name):
    model = build(name)
    assert model.count_params() <= 300_000
    output = np.asarray(model(np.zeros((2, 28, 28, 1), np.float32), training=False))
    assert output.shape == (2, 10)
    assert np.allclose(output.sum(1), 1.0, atol=1e-5)


def test_unknown_architecture_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown architecture 'nope'.*glyph17"):
        build("nope")


def test_multiply_adds_counts_every_conv_and_dense_layer():
    from digitglyph.models import multiply_adds

    # glyph17 by hand: 26*26*9*32 + 11*11*9*32*32 + 6*6*25*32*32 + 4*4*9*32*64 + 2*2*9*64*64 + 25*64*64 + 64*10
    assert multiply_adds(build("glyph17")) == 2_776_832


def test_glyphnet_lite_is_glyphnet_without_its_costliest_layer():
    from digitglyph.models import multiply_adds

    lite, full = build("glyphnet-lite"), build("glyphnet")
    assert multiply_adds(lite) < 0.65 * multiply_adds(full)
    assert lite.count_params() < full.count_params() <= 300_000


def test_glyphnet_fast_reaches_13x13_in_one_strided_conv():
    fast, lite = build("glyphnet-fast"), build("glyphnet-lite")
    spatial = [layer.output.shape[1] for layer in fast.layers if len(layer.output.shape) == 4]
    assert spatial[:2] == [28, 13]  # the input, then the stem: nothing is computed at 26x26
    assert [type(layer).__name__ for layer in fast.layers].count("MaxPooling2D") == 0
    assert abs(fast.count_params() - lite.count_params()) < 1_000  # the same body
