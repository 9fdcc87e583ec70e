"""Named training recipes: ``recipes/<name>.yaml``, each a set of ``TrainConfig`` values.

One home for the runs the project talks about: ``ship`` (the shipped model), ``glyph17-original`` and
``fast`` (the time-to-accuracy pair), ``report`` (the run ``reports/02-train.ipynb`` shows).  The CLI
(``digitglyph train RUN --recipe ship``), the benchmarks, ``digitglyph reports`` and the ``02-train``
notebook read them from here; a value given on top of a recipe overrides it.
"""

from __future__ import annotations

from dataclasses import fields

import yaml

from .paths import ROOT

RECIPES = ROOT / "recipes"


def names() -> list[str]:
    return sorted(path.stem for path in RECIPES.glob("*.yaml"))


def load(name: str) -> dict:
    """The recipe's ``TrainConfig`` values (its ``description`` left out), checked."""
    from .train import TrainConfig

    path = RECIPES / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"unknown recipe {name!r}; the recipes are {', '.join(names())} (in {RECIPES})")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ValueError(f"{path} is not valid YAML: {error}") from None
    if not isinstance(values, dict):
        raise ValueError(f"{path} must hold a mapping of TrainConfig fields")
    values.pop("description", None)
    TrainConfig.from_dict(values)  # a clear error now rather than at training time
    return values


def config(name: str | None = None, **overrides):
    """A ``TrainConfig``: the recipe's values (or the defaults) with ``overrides`` on top."""
    from .train import TrainConfig

    return TrainConfig.from_dict({**(load(name) if name else {}), **overrides})


def notebook_config(recipe: str | None, namespace: dict):
    """What ``02-train`` trains: ``recipe`` with every ``TrainConfig`` field that papermill set (a name in
    ``namespace`` whose value is not None) on top, so any field is a notebook parameter."""
    from .train import TrainConfig

    names = {field.name for field in fields(TrainConfig)}
    return config(recipe, **{name: value for name, value in namespace.items() if name in names and value is not None})
