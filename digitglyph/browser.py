"""Test and benchmark support: a real Chromium, the Voila app's server and pages, drawing with real input.

Imported by the browser tests and the benchmarks (no ``sys.path`` edits, nothing from ``tests/``):

* :data:`CHROMIUM`, :data:`CHROMIUM_ARGS`, :func:`chromium_args`, :func:`launch_chromium`, :func:`chromium`:
  Debian's Chromium driven by Playwright (no downloaded browsers);
* :class:`VoilaServer`: the app as ``make app`` serves it (:mod:`digitglyph.serve`), on a free port
  of 127.0.0.1 with its own corrections file; restartable, usable as a context manager;
* :class:`AppPage`: one browser session of the Voila app (its CSS-class hooks, see :mod:`digitglyph.app`),
  drawing with real mouse and touch events and recording every failed request and console error;
* page helpers for any canvas page: :func:`points_along` (strokes given as fractions of an element's box),
  :func:`mouse_stroke`, :func:`touch_stroke`, :func:`canvas_rgba`.

Playwright is imported only where a browser is launched, so importing this module is cheap.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import itertools
import json
import math
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Chromium's headless mode is the whole browser: each window (each Playwright browser context) also builds the browser's
# own interface, and since Chromium 15x preloads the address bar's drop-down as a web page of its own. That page is a
# renderer per context costing about 1.2 CPU-seconds, more than a blank page (0.5 CPU-s per context without it,
# measured with 8 contexts); a class simulated on the server's machine paid it 32 times. A headless browser never shows
# the drop-down, so it is switched off.
HEADLESS_UNSEEN_FEATURES = ("WebUIOmniboxPopup", "WebUIOmniboxAimPopup")
PLAYWRIGHT_DISABLED_FEATURES = re.compile(r"\bdisabledFeatures = \[(.*?)\]", re.DOTALL)  # chromiumSwitches.ts
PAGE_TIMEOUT_MS = 240_000  # a fresh kernel starting on 2 busy cores can take a while
RECOGNITION_TIMEOUT_MS = 30_000
LOCAL_HOSTS = ("127.0.0.1", None)  # None: data: and blob: URLs
# The page shows recognition ``number`` (or a later one) in full: the prediction text ends with ``#N`` and the ten
# probability bars, which arrive in a message of their own, carry the same N (``data-recognition``).
RECOGNITION_SHOWN = """number => {
    const view = document.querySelector('.digitglyph-prediction');
    const match = view && view.innerText.match(/#(\\d+)/);
    const bars = [...document.querySelectorAll('.digitglyph-bar')];
    return Boolean(match) && Number(match[1]) >= number && bars.length === 10
        && bars.every(bar => bar.dataset.recognition === match[1]);
}"""
RECOGNITION_COUNT = """() => {
    const view = document.querySelector('.digitglyph-prediction');
    const match = view && view.innerText.match(/#(\\d+)/);
    return match ? Number(match[1]) : 0;
}"""
PROBABILITIES = "bars => bars.map(bar => Number(bar.dataset.probability))"  # on every .digitglyph-bar
CANVAS_RECT = """canvas => {
    const rect = canvas.getBoundingClientRect();
    return {left: rect.left, top: rect.top, width: rect.width, height: rect.height,
            canvas_width: canvas.width, canvas_height: canvas.height};
}"""
POLL_MS = 50  # how often a wait checks the page (Playwright's default, every animation frame, costs a busy browser)
CSP_RECORDER = """window.digitglyphCspViolations = [];
document.addEventListener('securitypolicyviolation',
    event => window.digitglyphCspViolations.push(`${event.violatedDirective} ${event.blockedURI}`));"""


# -- the browser ------------------------------------------------------------------------------


@functools.cache
def playwright_disabled_features() -> tuple[str, ...]:
    """The Chromium features Playwright itself switches off, read once from the installed Playwright's driver.

    Chromium reads only the last ``--disable-features``, so ours (:func:`chromium_args`) repeats Playwright's."""
    import playwright

    bundle = Path(playwright.__file__).parent / "driver" / "package" / "lib" / "coreBundle.js"
    found = PLAYWRIGHT_DISABLED_FEATURES.search(bundle.read_text(encoding="utf-8")) if bundle.exists() else None
    if found is None:
        raise RuntimeError(f"Playwright's disabled Chromium features are not in {bundle}: has Playwright changed?")
    return tuple(re.findall(r'^\s*"([\w-]+)",?\s*$', found.group(1), re.MULTILINE))


def chromium_args() -> list[str]:
    """:data:`CHROMIUM_ARGS`, and the features to disable: Playwright's and :data:`HEADLESS_UNSEEN_FEATURES`."""
    features = dict.fromkeys([*playwright_disabled_features(), *HEADLESS_UNSEEN_FEATURES])
    return [*CHROMIUM_ARGS, "--disable-features=" + ",".join(features)]


def launch_chromium(playwright, **options):
    """Debian's Chromium, headless, with the project's settings (``make setup`` installs it); ``playwright`` is
    Playwright's sync or async API (the async one returns an awaitable)."""
    if not Path(CHROMIUM).exists():
        raise FileNotFoundError(f"{CHROMIUM} is missing: `make setup` installs Debian's chromium")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=chromium_args(), headless=True, **options)


@contextlib.contextmanager
def chromium(**options):
    """``with chromium() as browser:`` a running Chromium, closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright, **options)
        try:
            yield browser
        finally:
            browser.close()


# -- page helpers for any canvas page ----------------------------------------------------------


def points_along(box: dict, stroke, per_segment: int = 12) -> list[tuple[float, float]]:
    """Client (CSS pixel) points along a stroke given as fractions of ``box`` (Playwright's bounding_box)."""
    fractions = []
    for (x0, y0), (x1, y1) in itertools.pairwise(stroke):
        for t in np.linspace(0, 1, per_segment, endpoint=False):
            fractions.append((x0 + t * (x1 - x0), y0 + t * (y1 - y0)))
    fractions.append(tuple(stroke[-1]))
    return [(box["x"] + x * box["width"], box["y"] + y * box["height"]) for x, y in fractions]


def mouse_stroke(page, points, pause_s: float = 0.0) -> None:
    """One stroke with real mouse events through ``points`` (client pixels); ``pause_s`` between moves."""
    mouse = page.mouse
    mouse.move(*points[0])
    mouse.down()
    for x, y in points[1:]:
        if pause_s:
            time.sleep(pause_s)
        mouse.move(x, y)
    mouse.up()


def touch_stroke(page, points, session=None) -> None:
    """One stroke with real touch events (Chrome DevTools protocol); the context needs ``has_touch=True``."""
    own_session = session is None
    session = session or page.context.new_cdp_session(page)

    def touch(point):
        return {"x": point[0], "y": point[1], "radiusX": 4, "radiusY": 4, "force": 1, "id": 1}

    session.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [touch(points[0])]})
    for point in points[1:]:
        session.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [touch(point)]})
    session.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    if own_session:
        session.detach()


def canvas_rgba(page, selector: str) -> np.ndarray:
    """The pixels of the canvas element ``selector`` as an ``(H, W, 4)`` uint8 array."""
    width, height, data = page.eval_on_selector(
        selector,
        """canvas => {
        const bytes = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        let text = '';
        for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
        return [canvas.width, canvas.height, btoa(text)];
    }""",
    )
    return np.frombuffer(base64.b64decode(data), dtype=np.uint8).reshape(height, width, 4)


def kernel_message(payload) -> dict:
    """One frame of a Jupyter kernel websocket as a message dict: JSON text, or the binary
    ``v1.kernel.websocket.jupyter.org`` framing (part count, part offsets, then channel, header,
    parent header, metadata, content and buffers)."""
    if isinstance(payload, str):
        return json.loads(payload)
    count = int.from_bytes(payload[:8], "little")
    offsets = [int.from_bytes(payload[8 * (index + 1) : 8 * (index + 2)], "little") for index in range(count)]
    parts = [payload[start:end] for start, end in zip(offsets, [*offsets[1:], len(payload)], strict=True)]
    header, parent_header, metadata, content = (json.loads(part) for part in parts[1:5])
    return {
        "channel": parts[0].decode(),
        "header": header,
        "parent_header": parent_header,
        "metadata": metadata,
        "content": content,
        "buffers": parts[5:],
    }


# -- the Voila app ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class VoilaServer:
    """The app as ``make app`` serves it, on a free port of 127.0.0.1 with its own corrections file.

    ``serve_options`` go to :func:`digitglyph.serve.start` (for example the kernel cap).
    """

    def __init__(self, directory: str | os.PathLike, port: int | None = None, **serve_options):
        directory = Path(directory)
        self.port = port or free_port()
        self.corrections = directory / "corrections.sqlite"
        self.log_path = directory / "voila.log"
        self.serve_options = serve_options
        self.process = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> VoilaServer:
        from .serve import start

        environment = {
            "DIGITGLYPH_CORRECTIONS": str(self.corrections),
            **self.serve_options.pop("extra_environment", {}),
        }
        with open(self.log_path, "ab") as log:
            self.process = start(self.port, extra_environment=environment, log=log, **self.serve_options)
        return self

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)  # Voila shuts its kernels down on SIGTERM
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> VoilaServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


class AppPage:
    """One browser session of the Voila app, recording every request, failure and console error."""

    def __init__(
        self,
        browser,
        url: str,
        wait: bool = True,
        record_kernel_messages: bool = False,
        before_open=None,
        **context_options,
    ):
        """Open the app; with ``wait=False`` return once the page starts arriving (then call ``wait_until_ready``).

        With ``record_kernel_messages``, every message the page receives from its kernel is kept in
        ``kernel_messages`` (see :meth:`widget_states`).  ``before_open(page)`` is called before the page
        opens the URL (for example to route its websocket).
        """
        self.context = browser.new_context(**context_options)
        self.page = page = self.context.new_page()
        self.external_requests, self.failed_requests, self.errors = [], [], []
        self.load_seconds = None
        page.add_init_script(CSP_RECORDER)
        self.kernel_messages = []
        if record_kernel_messages:
            page.on("websocket", self._record_kernel_socket)
        page.on("request", self._record_request)
        page.on("requestfailed", lambda request: self.failed_requests.append(f"{request.url}: {request.failure}"))
        page.on("console", lambda message: message.type == "error" and self.errors.append(message.text))
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        if before_open is not None:
            before_open(page)
        self.started = time.perf_counter()
        # the page's HTTP response (``.status``)
        self.response = page.goto(url, timeout=PAGE_TIMEOUT_MS, wait_until="load" if wait else "commit")
        if wait:
            self.wait_until_ready()

    def _record_request(self, request) -> None:
        address = urlparse(request.url)
        if address.hostname not in LOCAL_HOSTS and address.scheme in ("http", "https", "ws", "wss"):
            self.external_requests.append(request.url)

    def _record_kernel_socket(self, socket) -> None:
        if "/channels" in socket.url:
            socket.on("framereceived", lambda payload: self.kernel_messages.append(kernel_message(payload)))

    def wait_until_ready(self, timeout_ms: int = PAGE_TIMEOUT_MS) -> float:
        """Wait for the first recognition ("? draw a digit #1"); returns seconds since the URL was opened."""
        self.wait_for_recognition(1, timeout_ms=timeout_ms)
        self.load_seconds = time.perf_counter() - self.started
        return self.load_seconds

    # -- reading the page ---------------------------------------------------------------------

    def text(self, css_class: str = "digitglyph-prediction") -> str:
        return self.page.locator(f".{css_class}").inner_text().strip()

    def recognitions(self) -> int:
        return self.page.evaluate(RECOGNITION_COUNT)

    def wait_for_recognition(self, number: int, timeout_ms: int = RECOGNITION_TIMEOUT_MS) -> None:
        """Wait until the page shows recognition ``number`` or a later one, text and probabilities alike."""
        self.page.wait_for_function(RECOGNITION_SHOWN, arg=number, timeout=timeout_ms, polling=POLL_MS)

    def csp_violations(self) -> list[str]:
        """Every Content-Security-Policy violation on the page since it opened ("directive blocked-URI")."""
        return self.page.evaluate("window.digitglyphCspViolations")

    def widget_states(self) -> dict:
        """``{model id: {"state": ...}}`` of every widget, as the kernel sent them to the page when it loaded
        (needs ``record_kernel_messages``)."""
        for message in self.kernel_messages:
            data = message["content"].get("data") or {}
            if message["header"]["msg_type"] == "comm_msg" and data.get("method") == "update_states":
                return data["states"]
        raise LookupError("the page has received no widget states (record_kernel_messages=True?)")

    def kernel_id(self) -> str:
        return self.page.evaluate("JSON.parse(document.getElementById('jupyter-config-data').textContent).kernelId")

    def probabilities(self) -> list[float]:
        return self.page.eval_on_selector_all(".digitglyph-bar", PROBABILITIES)

    def canvas_rect(self) -> dict:
        return self.page.eval_on_selector(".digitglyph-canvas", CANVAS_RECT)

    def canvas_alpha(self) -> np.ndarray:
        """The alpha channel of the canvas element as the page shows it."""
        return canvas_rgba(self.page, ".digitglyph-canvas")[:, :, 3]

    # -- acting on the page -------------------------------------------------------------------

    @staticmethod
    def pointer_positions(stroke, rect, whole_pixels: bool = True) -> tuple[list, list]:
        """Viewport positions for a stroke in canvas pixels, and the canvas positions the kernel
        will receive: ipycanvas scales ``clientX`` by canvas size / CSS size.  Chrome gives mouse
        events whole CSS pixels (rounded down) and touch events single-precision fractional ones."""
        scale_x, scale_y = rect["width"] / rect["canvas_width"], rect["height"] / rect["canvas_height"]
        client = [(rect["left"] + x * scale_x, rect["top"] + y * scale_y) for x, y in stroke]

        def pixel(value):
            return math.floor(value) if whole_pixels else float(np.float32(value))

        received = [
            (
                min(max(rect["canvas_width"] * (pixel(cx) - rect["left"]) / rect["width"], 0.0), rect["canvas_width"]),
                min(
                    max(rect["canvas_height"] * (pixel(cy) - rect["top"]) / rect["height"], 0.0), rect["canvas_height"]
                ),
            )
            for cx, cy in client
        ]
        return client, received

    def draw_with_mouse(self, strokes, wait: bool = True, pause_s: float = 0.0) -> list:
        """Draw strokes (canvas pixels) with real mouse events, waiting for each recognition unless
        told not to; ``pause_s`` between pointer moves (a hand's pace).  Returns the strokes as the
        kernel receives them."""
        rect, received = self.canvas_rect(), []
        for stroke in strokes:
            client, points = self.pointer_positions(stroke, rect)
            count = self.recognitions() if wait else None
            mouse_stroke(self.page, client, pause_s)
            if wait:
                self.wait_for_recognition(count + 1)
            received.append(points)
        return received

    def draw_with_touch(self, stroke) -> list:
        """One stroke (canvas pixels) with real touch input; needs has_touch=True.  Returns what the kernel gets."""
        client, received = self.pointer_positions(stroke, self.canvas_rect(), whole_pixels=False)
        count = self.recognitions()
        touch_stroke(self.page, client)
        self.wait_for_recognition(count + 1)
        return received

    def click(self, css_class: str, recognises: bool = True) -> None:
        count = self.recognitions()
        self.page.click(f".{css_class}")
        if recognises:
            self.wait_for_recognition(count + 1)

    def assert_clean(self) -> None:
        assert self.external_requests == [], f"requests left 127.0.0.1: {self.external_requests}"
        assert self.failed_requests == [], self.failed_requests
        assert self.errors == [], self.errors
        assert self.csp_violations() == [], self.csp_violations()

    def close(self) -> None:
        self.context.close()
