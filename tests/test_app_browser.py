"""The Voila drawing app in a real Chromium: drawing with real pointer events, recognition, undo,
clear, corrections across a server restart, separate sessions, and a page that stays on 127.0.0.1.

One Voila server (``digitglyph.browser.VoilaServer``: what ``make app`` serves) runs for the module,
with its own corrections file.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from digitglyph import answers
from digitglyph.app import answer_of
from digitglyph.browser import AppPage, VoilaServer
from digitglyph.corrections import CorrectionStore
from digitglyph.strokes import drawn_digits, render_strokes

pytestmark = pytest.mark.browser
CANVAS_SIZE = 280


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = VoilaServer(tmp_path_factory.mktemp("voila"), pool=2).start()  # a few pages, one after the other
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
    """The page shows ``predict_canvas``'s answer in the one wording (a digit, "not sure", "not a digit", "draw a
    digit") and its ten digit probabilities."""
    head, detail = answers.wording(answer_of(expected))
    shown = page.text()
    assert shown.splitlines()[0].strip() == head and detail in shown, (shown, head, detail)
    assert shown[0] == {"ok": str(expected.digit), "not_a_digit": "✗"}.get(expected.status, "?"), shown
    np.testing.assert_allclose(page.probabilities(), expected.probabilities, atol=1e-5)


# -- tests ------------------------------------------------------------------------------------


def test_a_new_page_is_ready_and_asks_for_a_digit(app_page):
    assert app_page.text().startswith("?") and "draw a digit" in app_page.text()
    rect = app_page.canvas_rect()
    assert rect["width"] >= 280 and rect["height"] >= 280
    assert (rect["canvas_width"], rect["canvas_height"]) == (CANVAS_SIZE, CANVAS_SIZE)
    for css_class in [
        "digitglyph-clear",
        "digitglyph-undo",
        "digitglyph-brush",
        "digitglyph-model-input",
        *[f"digitglyph-correct-{digit}" for digit in range(10)],
    ]:
        assert app_page.page.locator(f".{css_class}").count() == 1, css_class
    assert not app_page.canvas_alpha().any()
    app_page.assert_clean()


def test_the_page_records_when_it_asked_its_kernel_for_the_app_and_when_the_kernel_sent_it(app_page):
    """benchmarks/app_load.py splits the wait for a canvas at these two moments (ms since the epoch)."""
    requested, sent, now = app_page.page.evaluate(
        "() => [Date.parse(document.body.dataset.statesRequested), Date.parse(document.body.dataset.statesSent),"
        " Date.now()]"
    )
    assert requested is not None and sent is not None, "both moments are on the page's body"
    assert requested - 5 <= sent <= now, (requested, sent, now)  # the kernel answered after the page asked
    assert now - requested < 10 * 60 * 1000


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
    replies = app_page.page.evaluate(
        """async code => {
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
    }""",
        f"open({str(marker)!r}, 'w').write('ran')",
    )
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
        assert np.abs(np.argwhere(shown).mean(axis=0) - np.argwhere(expected).mean(axis=0)).max() < 0.75
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
    (record,) = CorrectionStore(server.corrections).records()
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


# -- the light page (the default) and Voila's JupyterLab frontend (--frontend lab) ---------------


def test_the_light_page_loads_a_few_small_files_and_none_of_jupyterlab(server, browser):
    context = browser.new_context()
    page = context.new_page()
    loaded = []
    page.on("requestfinished", lambda request: loaded.append((request.url, request.sizes()["responseBodySize"])))
    try:
        page.goto(server.url)
        page.wait_for_selector(".digitglyph-canvas")
        page.wait_for_load_state("networkidle")
        names = [url.split("?")[0].rsplit("/", 1)[-1] for url, _ in loaded]
        assert "digitglyph-widgets.js" in names and "voila.js" not in names, names
        assert not [url for url, _ in loaded if "labextensions" in url], loaded
        assert len(loaded) <= 5 and sum(size for _, size in loaded) < 100_000, loaded
    finally:
        context.close()


def test_a_dropped_connection_reconnects_and_the_drawing_is_kept(server, browser, recognizer):
    """The light page reconnects to its kernel (which kept the strokes) and the canvas is drawn again."""
    routes = []

    def proxy(socket_route):
        socket_route.connect_to_server()
        routes.append(socket_route)

    page = AppPage(
        browser, server.url, before_open=lambda page: page.route_web_socket(re.compile(r".*/channels.*"), proxy)
    )
    try:
        first = page.draw_with_mouse([[(140.0, 40.0), (140.0, 240.0)]])
        routes[0].close(code=1001, reason="the network went away")
        page.page.wait_for_function("() => document.querySelector('.digitglyph-connection').hidden === false")
        assert "Reconnecting" in page.text("digitglyph-connection")
        page.page.wait_for_function("() => document.querySelector('.digitglyph-connection').hidden === true")
        assert len(routes) == 2
        page.page.wait_for_function(
            "() => { const c = document.querySelector('.digitglyph-canvas');"
            " return c.getContext('2d').getImageData(0, 0, c.width, c.height).data.some(v => v > 0); }"
        )  # drawn again from the kernel's strokes
        second = page.draw_with_mouse([[(90.0, 150.0), (190.0, 150.0)]])
        assert_page_shows(page, expected_prediction(recognizer, first + second))
        assert page.errors == [] and page.failed_requests == []
    finally:
        page.close()


def test_the_lab_frontend_serves_the_same_app(browser, recognizer, digits, tmp_path):
    with VoilaServer(tmp_path, frontend="lab", pool=1) as lab_server:
        page = AppPage(browser, lab_server.url)
        try:
            assert page.page.locator("script[src*='voila.js']").count() == 1
            received = page.draw_with_mouse(digits[0].strokes)
            assert_page_shows(page, expected_prediction(recognizer, received))
            page.assert_clean()
        finally:
            page.close()
