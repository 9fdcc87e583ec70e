"""The static web page in a real Chromium: built by digitglyph.export, served under a project subpath.

Every page opened here fails its test on a request to another origin, a console error,
an uncaught exception or an HTTP error.
"""

from __future__ import annotations

import base64
import json
import re
import zlib
from urllib.parse import urlparse

import numpy as np
import pytest

from digitglyph.answers import AnswerRule, decide, wording
from digitglyph.browser import canvas_rgba as browser_canvas_rgba
from digitglyph.browser import mouse_stroke, points_along, touch_stroke
from digitglyph.export import TOLERANCE, build_site, convert, serve
from digitglyph.paths import VECTORS
from digitglyph.preprocess import canvas_to_mnist, network_input
from digitglyph.strokes import render_strokes

pytestmark = pytest.mark.browser

SUBPATH = "digitglyph"
# Strokes as fractions of the pad: a one, a seven (two strokes), a short dash.
ONE = [[(0.50, 0.15), (0.50, 0.85)]]
SEVEN = [[(0.25, 0.20), (0.75, 0.20), (0.45, 0.85)], [(0.35, 0.52), (0.68, 0.52)]]


@pytest.fixture(scope="module")
def site(tmp_path_factory, recognizer):
    out = tmp_path_factory.mktemp("web") / "dist"
    manifest = build_site(None, out)
    assert manifest["model_version"] == recognizer.version, "the site must ship the model the tests compare with"
    return out, manifest


@pytest.fixture(scope="module")
def site_url(site):
    with serve(site[0], subpath=SUBPATH) as url:
        yield url


@pytest.fixture
def open_page(browser, site_url):
    """Open the page in a fresh context; afterwards fail on anything that went wrong."""
    opened = []

    def open_(url=site_url, **context_options):
        context = browser.new_context(**context_options)
        page = context.new_page()
        page.problems, page.requests = [], []
        own_origin = urlparse(url).netloc

        def route(route):
            page.requests.append(route.request.url)
            if urlparse(route.request.url).netloc == own_origin:
                route.continue_()
            else:
                page.problems.append(f"request to another origin: {route.request.url}")
                route.abort()

        context.route("**/*", route)
        page.on("console", lambda message: message.type == "error" and page.problems.append(f"console: {message.text}"))
        page.on("pageerror", lambda error: page.problems.append(f"uncaught: {error}"))
        page.on(
            "response",
            lambda response: response.status >= 400 and page.problems.append(f"HTTP {response.status}: {response.url}"),
        )
        opened.append((context, page))
        page.goto(url)
        page.evaluate("window.digitglyph.ready")
        return page

    yield open_
    for context, page in opened:
        context.close()
        assert page.problems == [], "the page misbehaved:\n" + "\n".join(page.problems)


# ---- helpers ----


def prediction(page) -> str:
    """The prediction's text, head and detail joined by one space."""
    return " ".join(page.get_by_test_id("prediction").inner_text().split())


def settle(page) -> None:
    page.evaluate("window.digitglyph.idle()")


def pad_points(page, stroke):
    """Client coordinates along a stroke given as fractions of the pad."""
    return points_along(page.get_by_test_id("canvas").bounding_box(), stroke)


def draw_with_mouse(page, strokes):
    for stroke in strokes:
        mouse_stroke(page, pad_points(page, stroke))
    settle(page)


def draw_with_touch(page, strokes):
    for stroke in strokes:
        touch_stroke(page, pad_points(page, stroke))
    settle(page)


def canvas_rgba(page) -> np.ndarray:
    return browser_canvas_rgba(page, "[data-testid=canvas]")


def alpha_at(page, rgba, client_point):
    """The canvas's alpha under a client (CSS pixel) point."""
    box = page.get_by_test_id("canvas").bounding_box()
    height, width = rgba.shape[:2]
    column = int((client_point[0] - box["x"]) * width / box["width"])
    row = int((client_point[1] - box["y"]) * height / box["height"])
    return int(rgba[row, column, 3])


def assert_page_words_its_answer_like_python(page):
    """The page's words and bars are what answers.py makes of the outputs it got, under its build's rule."""
    last = page.evaluate("window.digitglyph.last")
    rule = AnswerRule.from_dict(page.evaluate("window.digitglyph.rule"))
    answer = decide(last["outputs"], rule)
    head, detail = wording(answer)
    text = prediction(page)
    assert text == f"{head} {detail} · #{page.evaluate('window.digitglyph.recognitions')}"
    assert last["answer"]["status"] == answer.status
    shown = [int(value.rstrip("%")) for value in page.locator("#bars .value").all_inner_texts()]
    assert len(shown) == 10 and all(
        abs(s - 100 * p) <= 0.5 + 1e-9 for s, p in zip(shown, answer.probabilities, strict=True)
    )
    best = page.locator("#bars li.best .label").all_inner_texts()
    assert best == ([] if answer.status == "empty" else [str(answer.best_guess)])
    return answer, text


def assert_page_agrees_with_python(page, recognizer):
    """The shown input, probabilities and words are what Python makes of the same canvas pixels."""
    last = page.evaluate("window.digitglyph.last")
    expected_input = canvas_to_mnist(canvas_rgba(page))
    assert expected_input is not None and last["input"] is not None
    page_input = np.array(last["input"], dtype=np.uint8).reshape(28, 28)
    assert np.abs(page_input.astype(int) - expected_input).max() <= 1, "preprocess.js and Python disagree"
    probabilities = np.array(last["probabilities"])  # the ten digit outputs as the model gave them
    python_outputs = recognizer.runtime.outputs(network_input(page_input[None]))[0]
    assert np.abs(probabilities - python_outputs[:10]).max() <= TOLERANCE
    _, text = assert_page_words_its_answer_like_python(page)
    return text


# ---- tests ----


def test_page_loads_everything_from_its_own_origin_under_a_subpath(open_page, site_url, site):
    page = open_page()
    assert page.requests, "the route saw no requests"
    assert all(url.startswith(site_url) for url in page.requests), page.requests
    assert any(url.endswith("/model/model.json") for url in page.requests)
    policy = page.locator("meta[http-equiv=Content-Security-Policy]").get_attribute("content")
    assert "default-src 'self'" in policy and "unsafe" not in policy, policy
    html = (site[0] / "index.html").read_text()
    assert not re.search(r"""(src|href)=["'](/|[a-z]+:)""", html), "index.html must use relative URLs only"
    assert prediction(page).startswith("?") and "draw a digit" in prediction(page)
    assert site[1]["model_version"] in page.get_by_test_id("status").inner_text()
    assert page.evaluate("window.digitglyph.ready")["backend"] == "cpu"


def test_content_security_policy_blocks_other_origins(open_page):
    page = open_page()
    outcome = page.evaluate("fetch('http://192.0.2.1/x').then(() => 'fetched', () => 'blocked')")
    assert outcome == "blocked"
    assert not any("192.0.2.1" in url for url in page.requests), "the CSP must stop it before the network"
    assert any("Content Security Policy" in problem for problem in page.problems)
    page.problems.clear()  # that console error was the point of this test


def test_mouse_drawing_is_recognised_like_python(open_page, recognizer):
    page = open_page(viewport={"width": 1100, "height": 800})
    draw_with_mouse(page, SEVEN)
    assert page.evaluate("window.digitglyph.recognitions") == 2, "one recognition per stroke"
    text = assert_page_agrees_with_python(page, recognizer)
    assert re.match(r"^[0-9?]", text)
    model_input = page.evaluate("""() => Array.from(document.querySelector('#model-input')
        .getContext('2d').getImageData(0, 0, 28, 28).data.filter((_, i) => i % 4 === 0))""")
    assert model_input == page.evaluate("window.digitglyph.last.input"), "the 28x28 input shown is the model's"


def test_a_drawn_one_is_a_one(open_page):
    page = open_page()
    draw_with_mouse(page, ONE)
    assert prediction(page).startswith("1"), prediction(page)
    assert page.locator("#bars li.best .label").inner_text() == "1"


def test_touch_drawing_on_a_phone_puts_ink_under_the_finger(open_page, recognizer):
    page = open_page(viewport={"width": 390, "height": 844}, device_scale_factor=3, is_mobile=True, has_touch=True)
    canvas = page.get_by_test_id("canvas")
    assert canvas.evaluate("element => getComputedStyle(element).touchAction") == "none"
    box = canvas.bounding_box()
    size = canvas.evaluate("element => [element.width, element.height]")
    assert abs(size[0] - 3 * box["width"]) <= 1 and abs(size[1] - 3 * box["height"]) <= 1, "backing store = CSS x DPR"
    draw_with_touch(page, ONE)
    assert page.evaluate("window.scrollY") == 0, "drawing must not scroll the page"
    rgba = canvas_rgba(page)
    points = pad_points(page, ONE[0])
    assert all(alpha_at(page, rgba, point) == 255 for point in points), "ink must lie under the finger"
    assert alpha_at(page, rgba, (box["x"] + 0.2 * box["width"], box["y"] + 0.5 * box["height"])) == 0
    middle_row = rgba[rgba.shape[0] // 2, :, 3]
    assert abs((middle_row >= 128).sum() - size[0] / 14) <= 3, "brush width = canvas side / 14"
    assert page.evaluate("window.digitglyph.recognitions") == 1
    assert_page_agrees_with_python(page, recognizer)


def test_undo_and_clear_with_buttons_and_keys(open_page):
    page = open_page()
    undo, clear = page.get_by_test_id("undo"), page.get_by_test_id("clear")
    assert undo.is_disabled() and clear.is_disabled()
    draw_with_mouse(page, SEVEN[:1])
    after_first = canvas_rgba(page)
    first_text = prediction(page)
    draw_with_mouse(page, SEVEN[1:])
    assert (canvas_rgba(page)[..., 3] > after_first[..., 3]).any()
    undo.click()
    settle(page)
    assert np.array_equal(canvas_rgba(page), after_first), "undo must restore the canvas exactly"
    assert prediction(page).split("#")[0] == first_text.split("#")[0]
    assert prediction(page) != first_text, "every recognition changes the prediction text"

    for press in ("Control+z", "Escape", "Delete", "clear-button"):
        if press == "Control+z":
            page.keyboard.press(press)  # the one stroke left
        elif press == "clear-button":
            draw_with_mouse(page, SEVEN)
            clear.click()
        else:
            draw_with_mouse(page, SEVEN)
            page.keyboard.press(press)
        settle(page)
        assert prediction(page).startswith("?") and "draw a digit" in prediction(page), (press, prediction(page))
        assert canvas_rgba(page)[..., 3].max() == 0, press
        assert undo.is_disabled() and clear.is_disabled()
        assert page.evaluate("window.digitglyph.last.input") is None


def browser_and_python(page, recognizer, images):
    browser_probabilities = np.array(
        page.evaluate("images => window.digitglyph.predictMnist(images)", images.reshape(-1).tolist())
    )
    assert browser_probabilities.shape == (len(images), 10)
    return browser_probabilities, recognizer.predict_mnist(images)


def test_shipped_float16_page_reproduces_python_on_1000_mnist_images(open_page, site, recognizer, mnist):
    """The page's float16 weights are the shipped model's own values, so TF.js and Keras agree to 1e-4."""
    _, (x_test, y_test) = mnist
    assert site[1]["weights"] == "float16"
    page = open_page()
    browser_probabilities, python_probabilities = browser_and_python(page, recognizer, x_test[:1000])
    difference = np.abs(browser_probabilities - python_probabilities).max()
    assert difference <= 1e-4, f"TF.js and Keras differ by up to {difference:.2e}"
    assert (browser_probabilities.argmax(1) == python_probabilities.argmax(1)).all()
    assert (browser_probabilities.argmax(1) == y_test[:1000]).mean() >= 0.99


def test_the_hook_rejects_bad_images(open_page):
    page = open_page()
    for images, message in (("[1, 2, 3]", "N*784"), ("new Array(784).fill(300)", "0-255")):
        error = page.evaluate(f"window.digitglyph.predictMnist({images}).then(() => 'accepted', e => e.message)")
        assert message in error


def test_shared_preprocessing_vectors_in_the_browser(open_page):
    """preprocess.js as the page loads it reproduces every shared vector within the file's tolerance."""
    vectors = json.loads((VECTORS / "preprocess.json").read_text())
    cases = [
        {
            "name": case["name"],
            "width": case["width"],
            "height": case["height"],
            "rgba": base64.b64encode(zlib.decompress(base64.b64decode(case["rgba"]))).decode(),
        }
        for case in vectors["cases"]
    ]
    page = open_page()
    outputs = page.evaluate(
        """cases => cases.map(({ width, height, rgba }) => {
        const bytes = Uint8ClampedArray.from(atob(rgba), (character) => character.charCodeAt(0));
        const output = window.digitglyph.canvasToMnist(new ImageData(bytes, width, height));
        return output && Array.from(output);
    })""",
        cases,
    )
    for case, output in zip(vectors["cases"], outputs, strict=True):
        if case["expected"] is None:
            assert output is None, case["name"]
        else:
            assert output is not None, case["name"]
            difference = np.abs(np.array(output) - np.array(case["expected"])).max()
            assert difference <= vectors["tolerance"], (case["name"], difference)


def test_a_missing_model_is_reported_on_the_page(browser, site_url):
    context = browser.new_context()
    context.route("**/model/model.json", lambda route: route.fulfill(status=404, body="not found"))
    page = context.new_page()
    errors = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.goto(site_url)
    page.get_by_test_id("status").filter(has_text="Error").wait_for()
    assert prediction(page).startswith("?") and "failed to load" in prediction(page)
    assert any("404" in error for error in errors), errors
    context.close()


def _with_build(context, site, **changes):
    """Serve the site's build.json with ``changes``."""
    manifest = {**json.loads((site[0] / "build.json").read_text()), **changes}
    context.route(
        "**/build.json",
        lambda route: route.fulfill(status=200, content_type="application/json", body=json.dumps(manifest)),
    )


def test_the_page_answers_with_the_rule_of_its_build(open_page, browser, site, site_url):
    """A build whose rule is stricter makes the same drawn one "not sure", worded as answers.py words it."""
    page = open_page()
    assert page.evaluate("window.digitglyph.rule") == site[1]["answer_rule"]
    context = browser.new_context()
    _with_build(context, site, answer_rule={"unsure_below": 1.0})
    strict = context.new_page()
    strict.goto(site_url)
    assert strict.evaluate("window.digitglyph.ready")["rule"] == {"unsure_below": 1.0, "not_a_digit_at": 1.01}
    draw_with_mouse(strict, ONE)
    answer, text = assert_page_words_its_answer_like_python(strict)
    assert answer.status == "unsure" and text.startswith("? not sure (maybe 1, "), text
    context.close()


@pytest.fixture(scope="module")
def eleven_output_model(tmp_path_factory):
    """A small untrained TF.js graph model with 11 outputs (ten digits and "not a digit")."""
    import keras

    keras.utils.set_random_seed(3)
    inputs = keras.Input(shape=(28, 28, 1))
    x = keras.layers.Flatten()(keras.layers.Conv2D(3, 3, strides=2, activation="relu")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(11, activation="softmax")(x))
    model_dir = tmp_path_factory.mktemp("eleven") / "model"
    convert(model, model_dir, "float32")
    return model, model_dir


def test_an_eleven_output_model_shows_ten_bars_and_says_not_a_digit(browser, site, site_url, eleven_output_model):
    model, model_dir = eleven_output_model
    context = browser.new_context()
    context.route("**/model/*", lambda route: route.fulfill(path=model_dir / route.request.url.rsplit("/", 1)[1]))
    _with_build(context, site, answer_rule={"unsure_below": 0.6, "not_a_digit_at": 0.05}, outputs=11)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(site_url)
    page.evaluate("window.digitglyph.ready")
    draw_with_mouse(page, SEVEN)
    last = page.evaluate("window.digitglyph.last")
    assert len(last["outputs"]) == 11 and len(last["probabilities"]) == 10
    expected = np.asarray(model(network_input(np.array(last["input"], np.uint8).reshape(1, 28, 28)), training=False))[0]
    assert np.abs(np.array(last["outputs"]) - expected).max() <= TOLERANCE
    answer, text = assert_page_words_its_answer_like_python(page)
    assert answer.status == "not_a_digit" and text == "\u2717 not a digit · #2", text
    assert page.locator("#bars li").count() == 10
    digits = np.array(page.evaluate("images => window.digitglyph.predictMnist(images)", [0] * 784))
    assert digits.shape == (1, 10) and abs(digits.sum() - 1) < 1e-6, "predictMnist: the ten digits renormalised"
    assert errors == []
    context.close()


# Non-digits people draw: a cross, a plus, a caret, a dash, a zigzag, a question-mark-ish hook, a blob, two digits.
NON_DIGITS = {
    "x": [[(0.25, 0.25), (0.75, 0.75)], [(0.75, 0.25), (0.25, 0.75)]],
    "plus": [[(0.5, 0.2), (0.5, 0.8)], [(0.2, 0.5), (0.8, 0.5)]],
    "caret": [[(0.2, 0.7), (0.5, 0.25), (0.8, 0.7)]],
    "dash": [[(0.2, 0.5), (0.8, 0.52)]],
    "zigzag": [[(0.1, 0.3), (0.3, 0.7), (0.5, 0.3), (0.7, 0.7), (0.9, 0.3)]],
    "hook": [[(0.3, 0.3), (0.5, 0.15), (0.7, 0.3), (0.5, 0.5), (0.5, 0.65)], [(0.5, 0.85), (0.51, 0.86)]],
    "blob": [[(0.4, 0.4), (0.6, 0.4), (0.6, 0.6), (0.4, 0.6), (0.4, 0.45), (0.55, 0.45), (0.55, 0.55)]],
    "one-one": [[(0.3, 0.2), (0.3, 0.8)], [(0.7, 0.2), (0.7, 0.8)]],
}


def test_non_digits_get_the_same_outputs_and_answers_in_the_browser_as_in_python(open_page, recognizer):
    """The TF.js parity check on drawings that are not digits: every output, and the answer from them."""
    canvases = [
        render_strokes([[(280 * x, 280 * y) for x, y in stroke] for stroke in strokes], 280, 280, 20)
        for strokes in NON_DIGITS.values()
    ]
    predictions = [recognizer.predict_canvas(canvas) for canvas in canvases]
    inputs = np.stack([prediction.model_input for prediction in predictions])
    page = open_page()
    page_outputs = np.array(
        page.evaluate("images => window.digitglyph.predictOutputs(images)", inputs.reshape(-1).tolist())
    )
    rule = AnswerRule.from_dict(page.evaluate("window.digitglyph.rule"))
    for name, prediction, outputs in zip(NON_DIGITS, predictions, page_outputs, strict=True):
        python_outputs = list(prediction.probabilities) + ([prediction.not_a_digit] if len(outputs) == 11 else [])
        assert np.abs(outputs - python_outputs).max() <= TOLERANCE, name
        assert decide(outputs, rule).status == prediction.status, name
    draw_with_mouse(page, NON_DIGITS["x"])
    assert_page_agrees_with_python(page, recognizer)
