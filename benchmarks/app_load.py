"""The Voila drawing app under load, measured in a real Chromium (not run in CI).

Prints:
  * time from opening the URL to a ready canvas (the first recognition shown), for the
    preheated kernel (the usual visitor) and for a visitor right behind it (a cold kernel);
  * pointer-release-to-updated-prediction latency, measured in the page: from the ``mouseup``
    on the canvas to the change of the ``digitglyph-prediction`` text (median and p95, >= 20 strokes);
  * kernel memory (RSS and PSS) per open session;
  * 4 sessions opened at once and drawn on at the same time: does each show what the Python
    side predicts for its own strokes?

    .venv/bin/python benchmarks/app_load.py [--strokes 24] [--sessions 4]

Uses DIGITGLYPH_MODEL (default: models/model.keras) and a throw-away corrections file.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

from digitglyph.browser import CHROMIUM, CHROMIUM_ARGS, AppPage, VoilaServer
from digitglyph.recognizer import Recognizer
from digitglyph.strokes import drawn_digits, render_strokes


def expected_prediction(recognizer, strokes, brush_width=20):
    return recognizer.predict_canvas(render_strokes(strokes, 280, 280, brush_width))


LATENCY_PROBE = """() => {
    window.digitglyphLatencies = [];
    const view = document.querySelector('.digitglyph-prediction');
    const canvas = document.querySelector('.digitglyph-canvas');
    let released = null;
    canvas.addEventListener('mouseup', () => { released = performance.now(); }, true);
    new MutationObserver(() => {
        if (released !== null) { window.digitglyphLatencies.push(performance.now() - released); released = null; }
    }).observe(view, {subtree: true, childList: true, characterData: true});
}"""


def kernel_memory(server: VoilaServer) -> list[tuple[int, float, float]]:
    """(pid, RSS MiB, PSS MiB) of every kernel the server runs."""
    kernels = []
    for process in psutil.Process(server.process.pid).children(recursive=True):
        if "ipykernel_launcher" in " ".join(process.cmdline()):
            memory = process.memory_full_info()
            kernels.append((process.pid, memory.rss / 2**20, memory.pss / 2**20))
    return kernels


def percentile(values, fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(np.ceil(fraction * len(ordered))) - 1)]


def measure_latency(page: AppPage, strokes_wanted: int) -> list[float]:
    page.page.evaluate(LATENCY_PROBE)
    drawn = 0
    for digit in drawn_digits(strokes_wanted, seed=21, canvas_size=280, brush_range=(1 / 14, 1 / 14)):
        page.draw_with_mouse(digit.strokes)
        drawn += len(digit.strokes)
        page.click("digitglyph-clear")
        if drawn >= strokes_wanted:
            break
    return page.page.evaluate("window.digitglyphLatencies")


def concurrent_sessions(browser, server, recognizer, count: int) -> list[tuple[float, bool, str]]:
    """Open ``count`` pages at once, draw a different digit on each at the same time, check each."""
    digits = drawn_digits(count, seed=33, canvas_size=280, brush_range=(1 / 14, 1 / 14))
    sessions = [AppPage(browser, server.url, wait=False) for _ in range(count)]
    ready = [session.wait_until_ready() for session in sessions]
    # interleave the strokes of all sessions, then wait for every session's last recognition
    received = [[] for _ in sessions]
    for index in range(max(len(digit.strokes) for digit in digits)):
        for number, (session, digit) in enumerate(zip(sessions, digits, strict=True)):
            received[number] += session.draw_with_mouse(digit.strokes[index : index + 1], wait=False)
    results = []
    for session, digit, strokes, seconds in zip(sessions, digits, received, ready, strict=True):
        session.wait_for_recognition(1 + len(digit.strokes), timeout_ms=120_000)
        expected = expected_prediction(recognizer, strokes)
        shown = session.text()
        correct = shown[0] == (str(expected.digit) if expected.status == "ok" else "?") and np.allclose(
            session.probabilities(), expected.probabilities, atol=1e-5
        )
        results.append((seconds, correct, f"drew a {digit.label}, page shows {shown.replace(chr(10), ' ')!r}"))
    for session in sessions:
        session.assert_clean()
        session.close()
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--strokes", type=int, default=24, help="strokes for the latency figures (>= 20)")
    parser.add_argument("--sessions", type=int, default=4)
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    recognizer = Recognizer.load()
    print(f"model {recognizer.version}; {psutil.cpu_count()} CPUs, load average {psutil.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as directory, sync_playwright() as playwright:
        server = VoilaServer(Path(directory)).start()
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            time.sleep(60)  # let the preheated kernel finish running the notebook
            first = AppPage(browser, server.url)
            print(f"ready canvas, preheated kernel: {first.load_seconds:.1f} s")
            second = AppPage(browser, server.url)
            print(f"ready canvas, next visitor at once (cold kernel): {second.load_seconds:.1f} s")
            latencies = measure_latency(first, args.strokes)
            print(
                f"pointer release -> updated prediction over {len(latencies)} strokes: "
                f"median {statistics.median(latencies):.0f} ms, p95 {percentile(latencies, 0.95):.0f} ms, "
                f"max {max(latencies):.0f} ms"
            )
            for pid, rss, pss in kernel_memory(server):
                print(f"kernel {pid}: RSS {rss:.0f} MiB, PSS {pss:.0f} MiB")
            first.close()
            second.close()
            results = concurrent_sessions(browser, server, recognizer, args.sessions)
            for number, (seconds, correct, shown) in enumerate(results, 1):
                print(f"session {number}: ready after {seconds:.1f} s, {'correct' if correct else 'WRONG'}: {shown}")
            print(f"{sum(correct for _, correct, _ in results)}/{len(results)} concurrent sessions answered correctly")
            memory = kernel_memory(server)
            print(
                f"{len(memory)} kernels running, RSS {sum(m[1] for m in memory):.0f} MiB, "
                f"PSS {sum(m[2] for m in memory):.0f} MiB in all"
            )
            return 0 if all(correct for _, correct, _ in results) else 1
        finally:
            browser.close()
            server.stop()


if __name__ == "__main__":
    raise SystemExit(main())
