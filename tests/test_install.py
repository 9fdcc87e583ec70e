"""The light install: the package alone, without extras, predicts in a fresh venv with no TensorFlow installed."""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from digitglyph.paths import ROOT
from digitglyph.recognizer import DEFAULT_MODEL, MODEL_ENV
from digitglyph.strokes import drawn_digits

pytestmark = pytest.mark.slow

PREDICT = textwrap.dedent("""
    import importlib.util, json, sys
    import numpy as np
    import digitglyph
    from digitglyph import Recognizer
    prediction = Recognizer.load().predict_canvas(np.load(sys.argv[1]))
    print(json.dumps({
        "package": digitglyph.__file__,
        "installed": {name: importlib.util.find_spec(name) is not None for name in ("tensorflow", "keras")},
        "status": prediction.status, "digit": prediction.digit, "probabilities": prediction.probabilities,
    }))
""")


def test_the_core_install_alone_predicts_a_canvas_as_the_full_install_does(tmp_path, recognizer, mnist):
    source = tmp_path / "source"  # a copy, so building leaves nothing in the working tree
    shutil.copytree(ROOT / "digitglyph", source / "digitglyph", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copyfile(ROOT / name, source / name)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    install = ["install", "--quiet", "--no-compile", str(source)]  # this pip, into the new venv: no ensurepip step
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), *install], check=True)

    _, (images, labels) = mnist
    canvas = drawn_digits(1, seed=8, images=images, labels=labels)[0].render()
    np.save(tmp_path / "canvas.npy", canvas)
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", PREDICT, str(tmp_path / "canvas.npy")],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env={**os.environ, MODEL_ENV: str(DEFAULT_MODEL)},
    )
    light = json.loads(done.stdout.strip().splitlines()[-1])
    assert light["package"].startswith(str(venv)) and light["installed"] == {"tensorflow": False, "keras": False}
    full = recognizer.predict_canvas(canvas)
    assert (light["status"], light["digit"]) == (full.status, full.digit) and full.status == "ok"
    assert np.abs(np.subtract(light["probabilities"], full.probabilities)).max() <= 1e-6
