"""Where a data source lives: the directory given, else its environment variable, else the per-user cache.

One rule for every source (MNIST's ``$DIGITGLYPH_DATA``, the pen collections' ``$DIGITGLYPH_PEN_DATA``), so
they are configured and found the same way.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def user_cache(name: str) -> Path:
    """``<the user's cache directory>/digitglyph/<name>`` (platformdirs)."""
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("digitglyph")) / name


def resolve(given: str | os.PathLike | None, env_var: str, default: Callable[[], Path]) -> Path:
    """``given`` when set, else ``$env_var`` when set, else ``default()``."""
    if given is not None:
        return Path(given).expanduser()
    if os.environ.get(env_var):
        return Path(os.environ[env_var]).expanduser()
    return default()
