"""Serving the drawing app with Voila: the one place that configures and launches it.

``make app``, the browser tests and ``benchmarks/app_load.py`` all run ``python -m digitglyph.serve``
(built by :func:`voila_command`, started in the background by :func:`start`).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "app.ipynb"
TEMPLATES = ROOT / "share" / "jupyter"  # voila/templates/digitglyph: Voila's lab template minus its CDN links
START_TIMEOUT_S = 120


def voila_command(port: int = 8866, host: str = "127.0.0.1") -> list[str]:
    """The Voila command line that serves the app."""
    return [sys.executable, "-m", "voila", str(NOTEBOOK), "--no-browser", f"--Voila.ip={host}", f"--port={port}",
            "--template=digitglyph", "--theme=light",
            "--VoilaConfiguration.file_denylist=.*",  # serve no files from the notebook's directory
            "--preheat_kernel=True",
            "--MappingKernelManager.cull_interval=60", "--MappingKernelManager.cull_idle_timeout=300"]


def voila_environment(extra: dict | None = None) -> dict:
    """The environment for Voila: the digitglyph template on JUPYTER_PATH, plus ``extra``."""
    environment = {**os.environ, **(extra or {})}
    paths = [str(TEMPLATES)] + [p for p in environment.get("JUPYTER_PATH", "").split(os.pathsep) if p]
    environment["JUPYTER_PATH"] = os.pathsep.join(paths)
    environment.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return environment


def start(port: int, host: str = "127.0.0.1", extra_environment: dict | None = None,
          log=subprocess.DEVNULL) -> subprocess.Popen:
    """Start the server in the background (its own process group) and wait until it answers HTTP."""
    process = subprocess.Popen(voila_command(port, host), env=voila_environment(extra_environment), cwd=ROOT,
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"voila exited with status {process.returncode} before serving")
        try:
            with urllib.request.urlopen(f"http://{host}:{port}/voila/static/voila.js", timeout=5):
                return process
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise RuntimeError(f"voila did not answer on {host}:{port} within {START_TIMEOUT_S} s")


def main(argv=None) -> int:
    """``python -m digitglyph.serve [--host H] [--port P]``: serve the app (what ``make app`` runs)."""
    parser = argparse.ArgumentParser(prog="python -m digitglyph.serve", description="Serve the DigitGlyph drawing app.")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only; see README to expose it)")
    parser.add_argument("--port", type=int, default=8866)
    args = parser.parse_args(argv)
    print(f"DigitGlyph drawing app: http://{args.host}:{args.port}/  (Ctrl-C stops it)", flush=True)
    os.chdir(ROOT)
    os.execve(sys.executable, voila_command(args.port, args.host), voila_environment())  # Voila takes over
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
