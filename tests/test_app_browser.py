"""The Voila drawing app in a real Chromium: drawing with real pointer events, recognition, undo,
clear, corrections across a server restart, separate sessions, and a page that stays on 127.0.0.1.

One Voila server (``digitglyph.app.voila_command``, what ``make app`` serves) runs for the module,
with its own corrections file.  ``AppPage`` and ``VoilaServer`` are also used by
``benchmarks/app_load.py``.
"""

from __future__ import annotations

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
import pytest

from digitglyph.app import start_voila
from digitglyph.corrections import CorrectionStore
from digitglyph.strokes import drawn_digits, render_strokes

pytestmark = pytest.mark.browser
CANVAS_SIZE = 280
PAGE_TIMEOUT_MS = 240_000  # a kernel imports TensorFlow; on 2 busy cores that takes a while
RECOGNITION_TIMEOUT_MS = 30_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class VoilaServer:
    """``make app``'s Voila on a free port with its own corrections file; restartable."""

    def __init__(self, directory: Path, port: int | None = None):
        self.port = port or free_port()
        self.corrections = directory / "corrections.sqlite"
        self.log_path = directory / "voila.log"
        self.process = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> "VoilaServer":
        with open(self.log_path, "ab") as log:
            self.process = start_voila(self.port, extra_environment={"DIGITGLYPH_CORRECTIONS": str(self.corrections)},
                                       log=log)
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


class AppPage:
    """One browser session of the app, recording every request, failure and console error."""

    def __init__(self, browser, url: str, wait: bool = True, **context_options):
        """Open the app; with ``wait=False`` return once the page starts arriving (then call ``wait_until_ready``)."""
        self.context = browser.new_context(**context_options)
        self.page = page = self.context.new_page()
        self.external_requests, self.failed_requests, self.errors = [], [], []
        page.on("request", lambda request: urlparse(request.url).hostname not in ("127.0.0.1", None)
                and urlparse(request.url).scheme in ("http", "https", "ws", "wss")
                and self.external_requests.append(request.url))
        page.on("requestfailed", lambda request: self.failed_requests.append(f"{request.url}: {request.failure}"))
        page.on("console", lambda message: message.type == "error" and self.errors.append(message.text))
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.started = time.perf_counter()
        page.goto(url, timeout=PAGE_TIMEOUT_MS, wait_until="load" if wait else "commit")
        if wait:
            self.wait_until_ready()

    def wait_until_ready(self) -> float:
        """Wait for the first recognition ("? draw a digit #1"); returns seconds since the URL was opened."""
        self.wait_for_recognition(1, timeout_ms=PAGE_TIMEOUT_MS)
        self.load_seconds = time.perf_counter() - self.started
        return self.load_seconds

    # -- reading the page ---------------------------------------------------------------------

    def text(self, css_class: str = "digitglyph-prediction") -> str:
        return self.page.locator(f".{css_class}").inner_text().strip()

    def recognitions(self) -> int:
        return int(re.search(r"#(\d+)", self.text()).group(1))

    def wait_for_recognition(self, number: int, timeout_ms: int = RECOGNITION_TIMEOUT_MS) -> None:
        self.page.wait_for_function(
            """number => {
                 const view = document.querySelector('.digitglyph-prediction');
                 const match = view && view.innerText.match(/#(\\d+)/);
                 return match && Number(match[1]) >= number;
               }""", arg=number, timeout=timeout_ms)

    def kernel_id(self) -> str:
        return self.page.evaluate("JSON.parse(document.getElementById('jupyter-config-data').textContent).kernelId")

    def probabilities(self) -> list[float]:
        return self.page.eval_on_selector_all(
            ".digitglyph-bar", "bars => bars.map(bar => Number(bar.dataset.probability))")

    def canvas_rect(self) -> dict:
        return self.page.eval_on_selector(".digitglyph-canvas", """canvas => {
            const rect = canvas.getBoundingClientRect();
            return {left: rect.left, top: rect.top, width: rect.width, height: rect.height,
                    canvas_width: canvas.width, canvas_height: canvas.height};
        }""")

    def canvas_alpha(self) -> np.ndarray:
        """The alpha channel of the canvas element as the page shows it."""
        values = self.page.eval_on_selector(".digitglyph-canvas", """canvas => {
            const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
            const alpha = new Array(data.length / 4);
            for (let i = 0; i < alpha.length; i++) alpha[i] = data[4 * i + 3];
            return [canvas.height, canvas.width, alpha];
        }""")
        return np.array(values[2], np.uint8).reshape(values[0], values[1])

    # -- acting on the page -------------------------------------------------------------------

    def pointer_positions(self, stroke, rect, whole_pixels: bool = True) -> tuple[list, list]:
        """Viewport positions for a stroke in canvas pixels, and the canvas positions the kernel
        will receive: ipycanvas scales ``clientX`` by canvas size / CSS size.  Chrome gives mouse
        events whole CSS pixels (rounded down) and touch events single-precision fractional ones."""
        scale_x, scale_y = rect["width"] / rect["canvas_width"], rect["height"] / rect["canvas_height"]
        client = [(rect["left"] + x * scale_x, rect["top"] + y * scale_y) for x, y in stroke]
        pixel = math.floor if whole_pixels else (lambda value: float(np.float32(value)))
        received = [(min(max(rect["canvas_width"] * (pixel(cx) - rect["left"]) / rect["width"], 0.0),
                         rect["canvas_width"]),
                     min(max(rect["canvas_height"] * (pixel(cy) - rect["top"]) / rect["height"], 0.0),
                         rect["canvas_height"]))
                    for cx, cy in client]
        return client, received

    def draw_with_mouse(self, strokes, wait: bool = True) -> list:
        """Draw strokes (canvas pixels) with real mouse events, waiting for each recognition unless
        told not to.  Returns the strokes as the kernel receives them."""
        rect, mouse, received = self.canvas_rect(), self.page.mouse, []
        for stroke in strokes:
            client, points = self.pointer_positions(stroke, rect)
            count = self.recognitions() if wait else None
            mouse.move(*client[0])
            mouse.down()
            for x, y in client[1:]:
                mouse.move(x, y)
            mouse.up()
            if wait:
                self.wait_for_recognition(count + 1)
            received.append(points)
        return received

    def draw_with_touch(self, stroke) -> list:
        """One stroke with real touch input (Chrome DevTools touch events); needs has_touch=True."""
        rect = self.canvas_rect()
        client, received = self.pointer_positions(stroke, rect, whole_pixels=False)
        session = self.context.new_cdp_session(self.page)
        count = self.recognitions()
        for index, (x, y) in enumerate(client):
            kind = "touchStart" if index == 0 else "touchMove"
            session.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [{"x": x, "y": y}]})
        session.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        self.wait_for_recognition(count + 1)
        session.detach()
        return received

    def click(self, css_class: str, recognises: bool = True) -> None:
        count = self.recognitions()
        self.page.click(f".{css_class}")
        if recognises:
            self.wait_for_recognition(count + 1)

    def assert_clean(self) -> None:
        assert self.external_requests == [], "requests left 127.0.0.1"
        assert self.failed_requests == []
        assert self.errors == []

    def close(self) -> None:
        self.context.close()


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = VoilaServer(tmp_path_factory.mktemp("voila")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def app_page(server, browser):
    page = AppPage(browser, server.url)
    yield page
    page.close()


@pytest.fixture(scope="module")
def digits():
    """Pen paths of real MNIST test digits, drawn with the app's default brush (20 px)."""
    return drawn_digits(4, seed=11, canvas_size=CANVAS_SIZE, brush_range=(1 / 14, 1 / 14))


def expected_prediction(recognizer, strokes, brush_width=20):
    return recognizer.predict_canvas(render_strokes(strokes, CANVAS_SIZE, CANVAS_SIZE, brush_width))


def assert_page_shows(page: AppPage, expected) -> None:
    shown = page.text()
    assert shown[0] == (str(expected.digit) if expected.status == "ok" else "?"), shown
    if expected.status == "empty":
        assert "draw a digit" in shown
    np.testing.assert_allclose(page.probabilities(), expected.probabilities, atol=1e-5)


# -- tests ------------------------------------------------------------------------------------


def test_a_new_page_is_ready_and_asks_for_a_digit(app_page):
    assert app_page.text().startswith("?") and "draw a digit" in app_page.text()
    rect = app_page.canvas_rect()
    assert rect["width"] >= 280 and rect["height"] >= 280
    assert (rect["canvas_width"], rect["canvas_height"]) == (CANVAS_SIZE, CANVAS_SIZE)
    for css_class in ["digitglyph-clear", "digitglyph-undo", "digitglyph-brush", "digitglyph-model-input",
                      *[f"digitglyph-correct-{digit}" for digit in range(10)]]:
        assert app_page.page.locator(f".{css_class}").count() == 1, css_class
    assert not app_page.canvas_alpha().any()
    app_page.assert_clean()


def test_drawn_digits_are_recognised_as_python_recognises_their_strokes(app_page, recognizer, digits):
    for digit in digits[:2]:
        received = app_page.draw_with_mouse(digit.strokes)
        assert_page_shows(app_page, expected_prediction(recognizer, received))
        app_page.click("digitglyph-clear")
        assert_page_shows(app_page, expected_prediction(recognizer, []))
        assert not app_page.canvas_alpha().any()
    app_page.assert_clean()


def test_undo_removes_the_last_stroke(app_page, recognizer, digits):
    digit = max(digits, key=lambda digit: len(digit.strokes))
    received = app_page.draw_with_mouse(digit.strokes)
    extra = app_page.draw_with_mouse([[(20.0, 250.0), (60.0, 255.0)]])
    assert_page_shows(app_page, expected_prediction(recognizer, received + extra))
    app_page.click("digitglyph-undo")
    assert_page_shows(app_page, expected_prediction(recognizer, received))
    app_page.click("digitglyph-clear")
    assert app_page.text().startswith("?")
    app_page.assert_clean()


def test_the_brush_slider_redraws_and_rerecognises_at_the_new_width(app_page, recognizer, digits):
    received = app_page.draw_with_mouse(digits[1].strokes)
    count = app_page.recognitions()
    readout = app_page.page.locator(".digitglyph-brush .widget-readout")  # the slider's editable number
    readout.click()
    app_page.page.keyboard.press("Control+A")
    app_page.page.keyboard.type("25")
    app_page.page.keyboard.press("Enter")
    app_page.wait_for_recognition(count + 1)
    assert readout.inner_text().strip() == "25"
    assert_page_shows(app_page, expected_prediction(recognizer, received, brush_width=25))
    thicker = app_page.canvas_alpha() > 127
    assert thicker.sum() > (render_strokes(received, CANVAS_SIZE, CANVAS_SIZE, 20)[:, :, 3] > 127).sum()
    app_page.click("digitglyph-clear")
    app_page.assert_clean()


def test_the_page_cannot_make_the_kernel_execute_code(app_page, tmp_path):
    """Voila forwards only widget (comm) and kernel-info messages from the page to the kernel."""
    marker = tmp_path / "executed"
    replies = app_page.page.evaluate("""async code => {
        const config = JSON.parse(document.getElementById('jupyter-config-data').textContent);
        const socket = new WebSocket(`ws://${location.host}${config.baseUrl}api/kernels/${config.kernelId}/channels`
                                     + '?session_id=probe');
        const replies = [];
        socket.onmessage = event => replies.push(JSON.parse(event.data).header.msg_type);
        await new Promise((resolve, reject) => { socket.onopen = resolve; socket.onerror = reject; });
        const send = (type, content) => socket.send(JSON.stringify({
            header: {msg_id: crypto.randomUUID(), msg_type: type, session: 'probe', username: 'probe',
                     version: '5.3', date: new Date().toISOString()},
            parent_header: {}, metadata: {}, content, channel: 'shell', buffers: []}));
        send('execute_request', {code, silent: false, store_history: false, user_expressions: {},
                                 allow_stdin: false, stop_on_error: true});
        send('kernel_info_request', {});
        for (let waited = 0; waited < 15000 && !replies.includes('kernel_info_reply'); waited += 100)
            await new Promise(resolve => setTimeout(resolve, 100));
        await new Promise(resolve => setTimeout(resolve, 1000));
        socket.close();
        return replies;
    }""", f"open({str(marker)!r}, 'w').write('ran')")
    assert "kernel_info_reply" in replies  # the channel works ...
    assert "execute_reply" not in replies and "execute_input" not in replies  # ... but code is not run
    assert not marker.exists()
    app_page.assert_clean()


def test_ink_lands_under_the_pointer_at_device_pixel_ratio_2_with_mouse_and_touch(server, browser, recognizer):
    page = AppPage(browser, server.url, device_scale_factor=2, has_touch=True, viewport={"width": 900, "height": 700})
    try:
        rect = page.canvas_rect()
        assert rect["width"] != rect["canvas_width"]  # CSS size differs from canvas size: positions are scaled
        mouse = page.draw_with_mouse([[(60.0, 70.0), (90.0, 150.0), (150.0, 200.0)]])
        touch = [page.draw_with_touch([(200.0, 40.0), (210.0, 120.0), (230.0, 240.0)])]
        strokes = mouse + touch
        shown = page.canvas_alpha() > 127
        expected = render_strokes(strokes, CANVAS_SIZE, CANVAS_SIZE, 20)[:, :, 3] > 127
        overlap = (shown & expected).sum() / (shown | expected).sum()
        assert overlap > 0.9, overlap
        centre = lambda mask: np.argwhere(mask).mean(axis=0)  # noqa: E731
        assert np.abs(centre(shown) - centre(expected)).max() < 0.75
        assert_page_shows(page, expected_prediction(recognizer, strokes))
        page.assert_clean()
    finally:
        page.close()


def test_two_pages_at_once_do_not_see_each_others_drawings(server, browser, recognizer, digits):
    first, second = AppPage(browser, server.url), AppPage(browser, server.url)
    try:
        assert first.kernel_id() != second.kernel_id()
        received = first.draw_with_mouse(digits[2].strokes)
        assert second.recognitions() == 1 and second.text().startswith("?")
        assert not second.canvas_alpha().any()
        received_second = second.draw_with_mouse(digits[3].strokes)
        assert_page_shows(second, expected_prediction(recognizer, received_second))
        assert_page_shows(first, expected_prediction(recognizer, received))
        first.click("digitglyph-clear")
        assert_page_shows(second, expected_prediction(recognizer, received_second))
        first.assert_clean()
        second.assert_clean()
    finally:
        first.close()
        second.close()


def test_a_correction_is_stored_and_survives_a_server_restart(server, browser, recognizer, digits):
    page = AppPage(browser, server.url)
    try:
        assert page.text("digitglyph-count") == "Corrections stored: 0"
        digit = digits[0]
        label = (digit.label + 1) % 10  # any label the user says is right
        received = page.draw_with_mouse(digit.strokes)
        page.click(f"digitglyph-correct-{label}")  # stores, confirms, clears
        assert page.text("digitglyph-saved").startswith(f"Saved as {label}")
        assert page.text("digitglyph-count") == "Corrections stored: 1"
        assert page.text().startswith("?") and not page.canvas_alpha().any()
        page.assert_clean()
    finally:
        page.close()

    server.stop()
    server.start()
    record, = CorrectionStore(server.corrections).records()
    assert record["true_label"] == label
    expected = expected_prediction(recognizer, received)
    assert record["predicted"] == expected.best_guess
    np.testing.assert_array_equal(record["model_input"], expected.model_input)
    assert [len(stroke) for stroke in record["strokes"]] == [len(stroke) for stroke in received]
    np.testing.assert_allclose(np.concatenate(record["strokes"]), np.concatenate(received), atol=1e-9)
    page = AppPage(browser, server.url)
    try:
        assert page.text("digitglyph-count") == "Corrections stored: 1"
        page.assert_clean()
    finally:
        page.close()
