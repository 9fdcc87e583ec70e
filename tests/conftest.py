"""Shared fixtures: MNIST location, the shipped recognizer, and a real headless Chromium."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
MNIST_DIR = Path(os.environ.get("DIGITGLYPH_DATA") or ROOT.parent / "shared" / "mnist")


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    if not (MNIST_DIR / "t10k-images-idx3-ubyte.gz").exists():
        pytest.fail(f"MNIST is not at {MNIST_DIR}; set DIGITGLYPH_DATA")
    return MNIST_DIR


@pytest.fixture(scope="session")
def mnist(mnist_dir):
    from digitglyph.data import load_mnist

    return load_mnist(mnist_dir)


@pytest.fixture(scope="session")
def recognizer():
    from digitglyph import Recognizer

    return Recognizer.load()


@pytest.fixture(scope="session")
def browser():
    """A real Debian Chromium driven by Playwright (no downloaded browsers here)."""
    from digitglyph.browser import CHROMIUM, chromium

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make setup` installs Debian's chromium")
    with chromium() as browser:
        yield browser


def run(coroutine):
    """Run ``coroutine`` to its end in a thread of its own (Playwright's sync API holds this thread's loop);
    tests import it (``from conftest import run``)."""
    with concurrent.futures.ThreadPoolExecutor(1) as executor:
        return executor.submit(asyncio.run, coroutine).result()


def pytest_collection_modifyitems(config, items):
    if shutil.which("node") is None:
        for item in items:
            if "node" in item.keywords:
                item.add_marker(pytest.mark.skip(reason="node is not installed"))
