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
