"""Recipes: every named recipe is a valid training configuration, read the same by the CLI, the benchmarks and
02-train; 02-train takes every TrainConfig field as a papermill parameter; notebook cells stay short."""

import json
from dataclasses import fields

import pytest

from digitglyph import recipes
from digitglyph.paths import NOTEBOOKS
from digitglyph.train import TrainConfig


def test_every_recipe_is_a_valid_training_configuration():
    assert {"ship", "fast", "glyph17-original", "report"} <= set(recipes.names())
    for name in recipes.names():
        config = recipes.config(name)
        assert isinstance(config, TrainConfig)
        assert "description" not in recipes.load(name)


def test_the_shipped_model_was_trained_with_the_ship_recipe():
    from digitglyph.paths import MODELS

    parameters = json.loads((MODELS / "metrics.json").read_text())["parameters"]
    for name, value in recipes.load("ship").items():
        assert parameters[name] == value, name


def test_overrides_win_and_unknown_recipes_or_fields_are_refused():
    assert recipes.config("fast", epochs=3).epochs == 3
    assert recipes.config("fast", epochs=3).architecture == "glyphnet-fast"
    with pytest.raises(ValueError, match="unknown recipe 'nope'; the recipes are fast, glyph17-original"):
        recipes.load("nope")
    with pytest.raises(ValueError, match=r"unknown name\(s\) \['epoch'\]"):
        recipes.config("fast", epoch=3)


def test_the_train_notebook_takes_every_train_config_field():
    """recipes.notebook_config reads every TrainConfig field papermill injected, None meaning 'the recipe's'."""
    namespace = {field.name: None for field in fields(TrainConfig)}
    namespace.update(learning_rate=0.002, corrections_weight=2, label_smoothing=0.05, pen_digits=1, unrelated=5)
    config = recipes.notebook_config("fast", namespace)
    assert (config.learning_rate, config.corrections_weight, config.label_smoothing, config.pen_digits) == (
        0.002,
        2,
        0.05,
        1,
    )
    assert config.architecture == "glyphnet-fast"  # None: the recipe's value
    assert recipes.notebook_config(None, {"epochs": 2}).architecture == TrainConfig().architecture


def notebook_code_cells():
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "code":
                yield path.name, "".join(cell["source"])


def test_notebook_code_cells_are_short_and_the_train_notebook_calls_notebook_config():
    for name, source in notebook_code_cells():
        assert len(source.splitlines()) <= 15, f"{name}: a code cell of {len(source.splitlines())} lines"
    train_cells = [source for name, source in notebook_code_cells() if name == "02-train.ipynb"]
    assert any("recipes.notebook_config(recipe, globals())" in source for source in train_cells)
