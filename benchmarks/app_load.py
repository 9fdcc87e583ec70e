"""The Voila drawing app under a class's load, measured in a real Chromium (not run in CI).

For each N in ``--sessions`` (default 1, 8, 16, 32) a FRESH server is started (``python -m digitglyph.serve``
through :class:`digitglyph.browser.VoilaServer`, ``--max-sessions`` N + 8 and a pool sized for the class, N, as the
README advises; ``--pool`` and ``--frontend`` override the server's settings). Once the server says its pool is warm
(``/digitglyph/status``; with ``--at-launch``, as soon as it answers), N browser sessions open the app at once (one
Chromium, one context per session, driven concurrently by Playwright's async API). Each session draws ``--digits``
pen-drawn MNIST digits (:func:`digitglyph.strokes.drawn_digits`) with real mouse events at a person's pace: a stroke
takes 300-600 ms (a pointer move every ~16 ms), the pen lifts for 200-400 ms between strokes, the person reads the
answer for 1-2 s, then clicks Clear. Printed per N:

* first, the cold start: a fresh server as ``make app`` starts it (its default pool), one page opened at launch,
  from launch to a ready canvas;
* the server's start: launch -> answering HTTP -> pool warm (with ``--at-launch``: launch -> first ready canvas);
* time from opening the page to a ready canvas (the first recognition shown), p50 and max over sessions;
* release-to-prediction latency measured in the page (``mouseup`` on the canvas to the change of the
  prediction text), p50 and p95 over every stroke of every session, and its two legs split at the moment the kernel
  sent the answer (the light page marks it): release -> the kernel's answer (the page sending, the server, the
  kernel's queue and work) and the answer -> shown (the server relaying it, the page taking and showing it);
* every answer (after every stroke) checked against ``Recognizer.load().predict_canvas`` on the strokes the
  kernel received, rendered with :func:`digitglyph.strokes.render_strokes` at the app's canvas size and brush;
* CPU seconds spent while the sessions open (until every canvas is ready or has failed) and while they draw, by
  the browser, Playwright's driver (the simulated people), the server, the kernels and the rest of the machine:
  on this one machine the browser's share is what 30 people's own computers would do;
* the nice value of each, and of their autogroups: with ``--class-priority low`` the simulated class (this script,
  Playwright's driver, Chromium and all its processes, and their two sessions' autogroups) runs at nice 19 while the
  server and its kernels keep this script's starting priority (nice 0), so the class only gets the CPU the server
  does not want, as if the browsers ran on the class's own computers (:func:`lower_the_class_priority`,
  :func:`lower_autogroup`; the script reruns itself in a session of its own for that); the default, ``normal``,
  leaves every priority as it is: with the scheduler's autogroups each session (this script with Playwright's
  driver, Chromium, the server with its kernels) then shares the CPU as one;
* failed requests and page errors; kernel RSS and PSS (``/proc/PID/smaps_rollup``) per kernel; total server
  memory (the server process and all its kernels);
* each figure against the issue-15 targets.

    .venv/bin/python benchmarks/app_load.py [--sessions 1,8,16,32] [--digits 3] [--seed 5] [--pool P]
        [--frontend light|lab] [--kernel-start fork|spawn] [--at-launch] [--class-priority normal|low]

Uses DIGITGLYPH_MODEL (default: models/model.keras) and a throw-away corrections file per server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import errno
import os
import random
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import psutil

from digitglyph import answers
from digitglyph.app import CANVAS_SIZE, DEFAULT_BRUSH, answer_of
from digitglyph.browser import (
    CANVAS_RECT,
    POLL_MS,
    PROBABILITIES,
    RECOGNITION_COUNT,
    RECOGNITION_SHOWN,
    AppPage,
    VoilaServer,
    launch_chromium,
)
from digitglyph.recognizer import Recognizer
from digitglyph.serve import DEFAULT_POOL, FRONTENDS, KERNEL_STARTS, wait_for_pool
from digitglyph.strokes import drawn_digits, render_strokes

FORK_SERVER_MODULE = "digitglyph.forkserver"  # the fork server's command line: python -m digitglyph.forkserver

READY_TARGET_S = 30.0
P95_TARGET_MS = 500.0
SINGLE_MEDIAN_TARGET_MS = 50.0
KERNEL_RSS_TARGET_MB = 200.0

STROKE_SECONDS = (0.3, 0.6)  # a hand drawing one stroke
MOVE_INTERVAL_S = 0.016  # one pointer move per frame
PEN_LIFT_SECONDS = (0.2, 0.4)  # between the strokes of one digit
READING_SECONDS = (1.0, 2.0)  # reading the answer before Clear
ANSWER_TIMEOUT_MS = 60_000
READY_TIMEOUT_S = 120  # four times the target: a session not ready by then counts as failed (--ready-timeout)
CLASS_PRIORITIES = ("normal", "low")  # --class-priority: the simulated class at the server's priority, or below it
LOW_PRIORITY_NICENESS = 19  # the simulated class's nice value with --class-priority low
PR_CAPBSET_DROP, CAP_SYS_NICE = 24, 23  # from <linux/prctl.h> and <linux/capability.h>

# Each stroke's release -> prediction (ms, in the page), split at the moment the kernel sent the answer (the light
# page's body[data-update-sent], the kernel's clock; the same machine's clock as the page's Date.now()):
# [release -> shown, release -> kernel sent the answer, kernel sent it -> shown].
LATENCY_PROBE = """() => {
    window.digitglyphLatencies = [];
    const view = document.querySelector('.digitglyph-prediction');
    const canvas = document.querySelector('.digitglyph-canvas');
    let released = null, releasedAt = null;
    canvas.addEventListener('mouseup', () => { released = performance.now(); releasedAt = Date.now(); }, true);
    new MutationObserver(() => {
        if (released === null) return;
        const total = performance.now() - released, sent = Date.parse(document.body.dataset.updateSent || '');
        const split = Number.isFinite(sent) ? [sent - releasedAt, Date.now() - sent] : [NaN, NaN];
        window.digitglyphLatencies.push([total, ...split]);
        released = null;
    }).observe(view, {subtree: true, childList: true, characterData: true});
}"""

# When the page had all of its HTML (Navigation Timing's responseEnd: Voila streams the page, and for a page with a
# kernel of its own ends it once the kernel has run the app), when it asked its kernel for the app's widgets
# (body[data-states-requested]: its scripts loaded and its websocket open) and when the kernel sent them
# (body[data-states-sent], the kernel's clock), ms since the epoch on this machine's clock: the wait for a canvas
# splits into the server sending the page, the browser loading it, the kernel answering and the browser showing it.
STATES_TIMES = """() => {
    const [navigation] = performance.getEntriesByType('navigation');
    const received = navigation && navigation.responseEnd ? performance.timeOrigin + navigation.responseEnd : null;
    return [received, ...['statesRequested', 'statesSent'].map(name => {
        const time = Date.parse(document.body.dataset[name] || '');
        return Number.isFinite(time) ? time : null;
    })];
}"""


@dataclass
class Answer:
    """What a page showed after a stroke, and the strokes (canvas pixels) its kernel had received."""

    strokes: list
    text: str
    probabilities: list


@dataclass
class Session:
    """One browser session's record."""

    number: int
    ready_s: float | None = None
    states_times_s: tuple | None = None  # page opened -> its HTML received, -> widgets asked, -> sent (STATES_TIMES)
    status: int | None = None
    answers: list = field(default_factory=list)
    latencies_ms: list = field(default_factory=list)
    failed_requests: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    failure: str | None = None
    pointer_events: int = 0  # mouse events dispatched (moves, downs, ups)


# -- one session ------------------------------------------------------------------------------


def pace_points(stroke, seconds: float) -> list[tuple[float, float]]:
    """The stroke (canvas pixels) resampled evenly by length to one point per pointer move over ``seconds``."""
    points = np.asarray(stroke, dtype=float)
    if len(points) < 2:
        return [tuple(points[0])]
    lengths = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(points, axis=0).T))])
    positions = np.linspace(0.0, lengths[-1], max(2, round(seconds / MOVE_INTERVAL_S) + 1))
    return list(
        zip(np.interp(positions, lengths, points[:, 0]), np.interp(positions, lengths, points[:, 1]), strict=True)
    )


def as_kernel_keeps(points) -> list[tuple[float, float]]:
    """The points as the app's Sketch stores them: a point equal to the previous one is dropped."""
    kept = []
    for point in points:
        if not kept or point != kept[-1]:
            kept.append(point)
    return kept


async def wait_for_recognition(page, number: int, timeout_ms: int) -> None:
    """Until the page shows recognition ``number``: its text and its probability bars (browser.RECOGNITION_SHOWN)."""
    await page.wait_for_function(RECOGNITION_SHOWN, arg=number, timeout=timeout_ms, polling=POLL_MS)


async def draw_stroke(page, client_points, seconds: float) -> None:
    """One stroke with real mouse events, spread over ``seconds`` like a hand."""
    pause = seconds / max(1, len(client_points) - 1)
    await page.mouse.move(*client_points[0])
    await page.mouse.down()
    for x, y in client_points[1:]:
        await asyncio.sleep(pause)
        await page.mouse.move(x, y)
    await page.mouse.up()


async def run_session(
    browser, url: str, session: Session, digits, rng: random.Random, ready_timeout_ms: int
) -> Session:
    """Open the app, wait for the canvas, draw ``digits`` at a person's pace, reading every answer."""
    context = await browser.new_context()
    page = await context.new_page()
    page.on("requestfailed", lambda request: session.failed_requests.append(f"{request.url}: {request.failure}"))
    page.on("console", lambda message: message.type == "error" and session.errors.append(message.text))
    page.on("pageerror", lambda error: session.errors.append(str(error)))
    try:
        started, opened_at = time.perf_counter(), time.time()
        response = await page.goto(url, timeout=ready_timeout_ms, wait_until="commit")
        session.status = response.status if response else None
        await wait_for_recognition(page, 1, ready_timeout_ms)
        session.ready_s = time.perf_counter() - started
        times = await page.evaluate(STATES_TIMES)
        if None not in times:
            session.states_times_s = tuple(time / 1000 - opened_at for time in times)
        await page.evaluate(LATENCY_PROBE)
        rect = await page.eval_on_selector(".digitglyph-canvas", CANVAS_RECT)
        for digit in digits:
            received = []
            for stroke in digit.strokes:
                seconds = rng.uniform(*STROKE_SECONDS)
                client, points = AppPage.pointer_positions(pace_points(stroke, seconds), rect)
                count = await page.evaluate(RECOGNITION_COUNT)
                await draw_stroke(page, client, seconds)
                session.pointer_events += len(client) + 2
                released = time.perf_counter()
                received.append(as_kernel_keeps(points))
                await wait_for_recognition(page, count + 1, ANSWER_TIMEOUT_MS)
                text = (await page.locator(".digitglyph-prediction").inner_text()).strip()
                probabilities = await page.eval_on_selector_all(".digitglyph-bar", PROBABILITIES)
                session.answers.append(Answer([list(s) for s in received], text, probabilities))
                await asyncio.sleep(max(0.0, rng.uniform(*PEN_LIFT_SECONDS) - (time.perf_counter() - released)))
            await asyncio.sleep(rng.uniform(*READING_SECONDS))
            count = await page.evaluate(RECOGNITION_COUNT)
            await page.click(".digitglyph-clear")
            await wait_for_recognition(page, count + 1, ANSWER_TIMEOUT_MS)
        session.latencies_ms = await page.evaluate("window.digitglyphLatencies")
    except Exception as error:  # noqa: BLE001 - a session's failure is a measured result, not a crash of the run
        session.failure = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        with contextlib.suppress(Exception):
            session.failure += f"; the page shows {(await page.inner_text('body'))[-300:]!r}"
    return session


async def close_all(contexts) -> None:
    await asyncio.gather(*(context.close() for context in contexts), return_exceptions=True)


# -- the server's memory ------------------------------------------------------------------------


def proportional_set_size_mb(pid: int) -> float:
    """PSS of a process from /proc/PID/smaps_rollup, in MB (10^6 bytes)."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024 / 1e6
    raise RuntimeError(f"no Pss line in /proc/{pid}/smaps_rollup")


def is_kernel(process: psutil.Process) -> bool:
    """A kernel: started as ``python -m ipykernel_launcher`` or forked by the server's fork server (which, like its
    kernels, shows the fork server's command line)."""
    if "ipykernel_launcher" in " ".join(process.cmdline()):
        return True
    parent = process.parent()
    return parent is not None and FORK_SERVER_MODULE in parent.cmdline()


def server_memory(server: VoilaServer) -> tuple[list[tuple[float, float]], float, float]:
    """([(RSS MB, PSS MB) per kernel], total RSS MB, total PSS MB of the server and all its children)."""
    root = psutil.Process(server.process.pid)
    kernels, total_rss, total_pss = [], 0.0, 0.0
    for process in [root, *root.children(recursive=True)]:
        try:
            rss, pss = process.memory_info().rss / 1e6, proportional_set_size_mb(process.pid)
            kernel = is_kernel(process)
        except (psutil.NoSuchProcess, FileNotFoundError, ProcessLookupError):
            continue
        total_rss, total_pss = total_rss + rss, total_pss + pss
        if kernel:
            kernels.append((rss, pss))
    return kernels, total_rss, total_pss


def process_groups(server: VoilaServer) -> dict[str, list[psutil.Process]]:
    """The processes by role: the browser (Chromium under this process), Playwright's driver (the simulated people),
    the server and its kernels."""
    root = psutil.Process(server.process.pid)
    mine = psutil.Process().children(recursive=True)
    return {
        "browser": browser_processes(mine),
        "driver": [p for p in mine if p.name().lower().startswith("node")],
        "server": [root],
        "kernels": root.children(recursive=True),
    }


def cpu_seconds(server: VoilaServer) -> dict[str, float]:
    """CPU seconds so far (user + system) of each of :func:`process_groups` and of the whole machine."""
    groups = process_groups(server)
    totals = dict.fromkeys(groups, 0.0)
    for name, processes in groups.items():
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                times = process.cpu_times()
                totals[name] += times.user + times.system
    machine = psutil.cpu_times()
    totals["machine"] = machine.user + machine.nice + machine.system + machine.irq + machine.softirq
    return totals


def nice_values(server: VoilaServer) -> dict[str, list]:
    """The nice values found in each of :func:`process_groups`, and this script's own; then, under ``NAME
    autogroup``, the nice values of their autogroups (:func:`lower_autogroup`)."""
    values = {"benchmark": {os.getpriority(os.PRIO_PROCESS, 0)}}
    groups = {"benchmark autogroup": {autogroup_nice(os.getpid())}}
    for name, processes in process_groups(server).items():
        values[name], groups[f"{name} autogroup"] = set(), set()
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                values[name].add(process.nice())
                groups[f"{name} autogroup"].add(autogroup_nice(process.pid))
    return {name: sorted(found, key=str) for name, found in {**values, **groups}.items()}


def autogroup_nice(pid: int) -> int | None:
    """The nice value of the process's autogroup (``/proc/PID/autogroup``), None where the kernel keeps none."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int(Path(f"/proc/{pid}/autogroup").read_text().split("nice")[1])
    return None


def lower_autogroup(pid: int) -> None:
    """Put the process's autogroup (all of its session) at nice :data:`LOW_PRIORITY_NICENESS`.

    With the scheduler's autogroups (``/proc/sys/kernel/sched_autogroup_enabled``, on here) each session shares the
    CPU as one, whatever its processes' own nice values: Playwright starts Chromium in a session of its own and the
    server starts in one of its own, so the class's nice values alone would leave the server a third of the
    machine.  Raising a group's nice value needs no privilege."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/autogroup").write_text(str(LOW_PRIORITY_NICENESS))


def browser_processes(mine: list[psutil.Process] | None = None) -> list[psutil.Process]:
    """Chromium's processes among ``mine`` (default: every process this script started, through Playwright's driver)."""
    mine = psutil.Process().children(recursive=True) if mine is None else mine
    return [process for process in mine if "chrom" in process.name().lower()]


def in_a_session_of_its_own(argv: list[str]) -> int:
    """Run this script again, with ``argv``, in a new session: its autogroup is then the class's alone, and lowering
    it (:func:`lower_autogroup`) leaves the shell that started it, and whatever else runs in that session, alone."""
    rerun = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), *argv], start_new_session=True)
    try:
        return rerun.wait()
    except KeyboardInterrupt:  # the new session does not get the terminal's Ctrl-C: pass it on
        rerun.send_signal(signal.SIGINT)
        return rerun.wait()


def lower_the_class_priority() -> ThreadPoolExecutor:
    """Put every thread of this process at nice :data:`LOW_PRIORITY_NICENESS` but one, kept at the starting priority:
    the returned executor, which starts the servers.

    Linux keeps a nice value (and capabilities) per thread, and a new thread or process takes those of the thread
    that started it: Playwright's driver and Chromium (started later from the main thread) and all their processes
    run at low priority, a server started from the executor's thread and the kernels it starts at any time at the
    starting one.  (A process at low priority could not start the server at a higher one without privileges.)
    Chromium sets its processes' and threads' nice values itself (0, 5, -8 for display threads) wherever it may lower
    them, so the programs the main thread starts lose that right: CAP_SYS_NICE (held as root) and RLIMIT_NICE."""
    launcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="server-launcher")
    kept = launcher.submit(threading.get_native_id).result()
    lower_autogroup(os.getpid())  # this script and Playwright's driver; the server starts an autogroup of its own
    for thread in map(int, os.listdir("/proc/self/task")):
        if thread != kept:
            os.setpriority(os.PRIO_PROCESS, thread, LOW_PRIORITY_NICENESS)
    resource.setrlimit(resource.RLIMIT_NICE, (0, 0))  # (per process: the server never lowers a nice value either)
    libc = ctypes.CDLL(None, use_errno=True)
    # EPERM: no CAP_SETPCAP, so not root, and no CAP_SYS_NICE to drop either
    if libc.prctl(PR_CAPBSET_DROP, CAP_SYS_NICE, 0, 0, 0) != 0 and ctypes.get_errno() != errno.EPERM:
        raise OSError(ctypes.get_errno(), "could not drop CAP_SYS_NICE for the simulated class")
    return launcher


def cpu_line(cpu: dict, what: str) -> str:
    """One line: where the CPU went during ``what`` (``cpu`` holds differences of :func:`cpu_seconds`)."""
    other = cpu["machine"] - sum(cpu[name] for name in ("browser", "driver", "server", "kernels"))
    return (
        f"CPU while {what} ({cpu['wall']:.1f} s, {psutil.cpu_count()} cores, {cpu['machine']:.1f} CPU-s in all): "
        f"browser {cpu['browser']:.1f} s, Playwright driver {cpu['driver']:.1f} s, server {cpu['server']:.1f} s, "
        f"kernels {cpu['kernels']:.1f} s, rest of the machine {max(other, 0.0):.1f} s"
    )


async def cpu_while_running(server: VoilaServer, sessions: list, tasks: list) -> tuple[dict, dict]:
    """CPU seconds (by :func:`cpu_seconds`) and wall seconds from now until every session is ready or failed
    (the pages opening), then until every session has finished (the drawing)."""

    def difference(before, after, started):
        return {**{name: after[name] - before[name] for name in after}, "wall": time.perf_counter() - started}

    before, started = cpu_seconds(server), time.perf_counter()
    while not all(s.ready_s is not None or s.failure is not None for s in sessions):
        await asyncio.sleep(0.25)
    ready, ready_at = cpu_seconds(server), time.perf_counter()
    opening = difference(before, ready, started)
    while not all(task.done() for task in tasks):
        await asyncio.sleep(0.25)
    return opening, difference(ready, cpu_seconds(server), ready_at)


# -- one N ------------------------------------------------------------------------------------


def percentile(values, fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(np.ceil(fraction * len(ordered))) - 1)]


def answer_mismatch(recognizer: Recognizer, answer: Answer) -> str | None:
    """How the page's answer differs from ``predict_canvas`` on the same strokes (words, probabilities), or None."""
    expected = recognizer.predict_canvas(render_strokes(answer.strokes, CANVAS_SIZE, CANVAS_SIZE, DEFAULT_BRUSH))
    head, detail = answers.wording(answer_of(expected))
    lines = answer.text.splitlines()
    if not lines or lines[0].strip() != head or detail not in answer.text:
        return f"page shows {answer.text!r}, predict_canvas says {head!r} / {detail!r}"
    if len(answer.probabilities) != len(expected.probabilities) or not np.allclose(
        answer.probabilities, expected.probabilities, atol=1e-5
    ):
        shown = np.round(answer.probabilities, 3).tolist()
        return f"probabilities {shown} on the page, {np.round(expected.probabilities, 3).tolist()} from predict_canvas"
    return None


@dataclass(frozen=True)
class LoadSettings:
    """What every measurement of a run shares (from the command line)."""

    seed: int
    serve_options: dict  # the server's options on top of the pool sized for the class
    ready_timeout_ms: int
    at_launch: bool  # open the sessions as soon as the server answers, not once its pool is warm
    launcher: ThreadPoolExecutor | None  # the thread that starts the servers (None: the default executor)


async def measure(browser, count: int, digits_each: int, settings: LoadSettings) -> dict:
    """A fresh server (started from ``settings.launcher``'s thread) with a pool sized for the class (``count``,
    unless the server options name one), ``count`` sessions opened at once once the pool is warm (or, ``at_launch``,
    as soon as the server answers); the figures."""
    digits = drawn_digits(
        count * digits_each, seed=settings.seed + count, canvas_size=CANVAS_SIZE, brush_range=(1 / 14, 1 / 14)
    )
    options = {"pool": count, **settings.serve_options}
    with tempfile.TemporaryDirectory() as directory:
        server = VoilaServer(Path(directory), max_sessions=count + 8, **options)
        launched = time.perf_counter()
        await asyncio.get_running_loop().run_in_executor(settings.launcher, server.start)
        answered_s = time.perf_counter() - launched
        warm_s = None
        if not settings.at_launch:
            await asyncio.to_thread(wait_for_pool, server.port)
            warm_s = time.perf_counter() - launched
        try:
            sessions = [Session(number) for number in range(1, count + 1)]
            before = set(browser.contexts)
            tasks = [
                asyncio.ensure_future(
                    run_session(
                        browser,
                        server.url,
                        session,
                        digits[index * digits_each : (index + 1) * digits_each],
                        random.Random(settings.seed * 1000 + index),
                        settings.ready_timeout_ms,
                    )
                )
                for index, session in enumerate(sessions)
            ]
            opening, drawing = await cpu_while_running(server, sessions, tasks)
            await asyncio.gather(*tasks)
            kernels, total_rss, total_pss = server_memory(server)  # every session still open
            nice = nice_values(server)
            if any(session.failure for session in sessions):
                print(f"server log (tail) for N = {count}:\n{server.log()[-3000:]}")
            await close_all(set(browser.contexts) - before)
        finally:
            server.stop()
    return {
        "count": count,
        "sessions": sessions,
        "server_answers_s": answered_s,
        "pool": options["pool"],
        "pool_warm_s": warm_s,
        "cold_start_s": answered_s + min((s.ready_s for s in sessions if s.ready_s is not None), default=np.nan),
        "kernels": kernels,
        "total_rss": total_rss,
        "total_pss": total_pss,
        "opening_cpu": opening,
        "drawing_cpu": drawing,
        "nice": nice,
    }


def report(figures: dict, recognizer: Recognizer) -> dict:
    """Print one N's figures; returns the values the targets need."""
    count, sessions = figures["count"], figures["sessions"]
    ready = [s.ready_s for s in sessions if s.ready_s is not None]
    splits = np.array([value for s in sessions for value in s.latencies_ms], dtype=float).reshape(-1, 3)
    latencies = splits[:, 0].tolist()
    all_answers = [answer for s in sessions for answer in s.answers]
    differences = [difference for answer in all_answers if (difference := answer_mismatch(recognizer, answer))]
    mismatches = len(differences)
    failed = sum(len(s.failed_requests) for s in sessions)
    errors = sum(len(s.errors) for s in sessions)
    kernels = figures["kernels"]
    print(f"\n== N = {count} sessions opened at once on a fresh server (pool of {figures['pool']}) ==")
    if figures["pool_warm_s"] is None:
        print(
            f"opened at launch: server process launched -> answering HTTP {figures['server_answers_s']:.1f} s, "
            f"-> first ready canvas (cold start) {figures['cold_start_s']:.1f} s"
        )
    else:
        print(
            f"server process launched -> answering HTTP {figures['server_answers_s']:.1f} s, -> pool of "
            f"{figures['pool']} warm {figures['pool_warm_s']:.1f} s; then the {count} sessions opened"
        )
    if ready:
        print(
            f"page opened -> ready canvas: p50 {statistics.median(ready):.1f} s, max {max(ready):.1f} s "
            f"({len(ready)}/{count} sessions ready)"
        )
    legs = np.array([(*s.states_times_s, s.ready_s) for s in sessions if s.ready_s and s.states_times_s]).reshape(-1, 4)
    if len(legs):
        parts = {
            "page opened -> its HTML all received (the server)": legs[:, 0],
            "-> its scripts asked the kernel for the app (the browser)": legs[:, 1] - legs[:, 0],
            "-> the kernel sent it": legs[:, 2] - legs[:, 1],
            "-> shown (the browser)": legs[:, 3] - legs[:, 2],
        }
        for name, values in parts.items():
            print(f"  of which {name}: p50 {np.median(values):.1f} s, max {values.max():.1f} s")
    if latencies:
        print(
            f"release -> prediction over {len(latencies)} strokes: p50 {statistics.median(latencies):.0f} ms, "
            f"p95 {percentile(latencies, 0.95):.0f} ms, max {max(latencies):.0f} ms"
        )
        for column, leg in ((1, "release -> the kernel sent its answer"), (2, "the answer sent -> shown in the page")):
            values = splits[np.isfinite(splits[:, column]), column].tolist()
            if values:
                print(
                    f"  of which {leg} (the kernel's clock): p50 {statistics.median(values):.0f} ms, "
                    f"p95 {percentile(values, 0.95):.0f} ms"
                )
    print(f"answers checked against predict_canvas: {len(all_answers) - mismatches}/{len(all_answers)} equal")
    for difference in differences[:5]:
        print(f"  differs: {difference}")
    print(
        f"failed requests {failed}, page errors {errors}, HTTP statuses {sorted({s.status for s in sessions}, key=str)}"
    )
    for session in sessions:
        if session.failure or session.failed_requests or session.errors:
            print(
                f"  session {session.number}: {session.failure or 'completed'}; "
                f"failed requests {session.failed_requests[:2]}; errors {session.errors[:2]}"
            )
    print(cpu_line(figures["opening_cpu"], "the pages opened"))
    print(cpu_line(figures["drawing_cpu"], "the people drew, after the last page was ready"))
    nice = {name: ", ".join(map(str, values)) or "-" for name, values in figures["nice"].items()}
    print(
        f"nice values, every session still open: the class: this script {nice['benchmark']}, browser "
        f"{nice['browser']}, Playwright driver {nice['driver']}; the server {nice['server']}, kernels {nice['kernels']}"
    )
    print(
        f"  their autogroups' nice values (each autogroup shares the CPU as one): the class: this script and "
        f"Playwright's driver {nice['benchmark autogroup']}, browser {nice['browser autogroup']}; the server "
        f"{nice['server autogroup']}, kernels {nice['kernels autogroup']}"
    )
    events = sum(s.pointer_events for s in sessions)
    if events:
        cpu = sum(figures[phase][name] for phase in ("opening_cpu", "drawing_cpu") for name in ("browser", "driver"))
        print(
            f"the simulated people: {events} mouse events; Chromium and Playwright's driver used "
            f"{1000 * cpu / events:.1f} CPU-ms per event, page loads included (on the class's own computers)"
        )
    if kernels:
        rss, pss = [k[0] for k in kernels], [k[1] for k in kernels]
        print(
            f"{len(kernels)} kernels ({count} sessions + pool): RSS per kernel median {statistics.median(rss):.0f} MB, "
            f"max {max(rss):.0f} MB; PSS per kernel median {statistics.median(pss):.0f} MB, max {max(pss):.0f} MB"
        )
    print(
        f"total server memory (server + kernels): RSS {figures['total_rss']:.0f} MB, PSS {figures['total_pss']:.0f} MB"
    )
    return {
        "all_ready_in_time": len(ready) == count and max(ready) <= READY_TARGET_S,
        "max_ready": max(ready) if ready else np.nan,
        "mismatches": mismatches,
        "answers": len(all_answers),
        "p50": statistics.median(latencies) if latencies else np.nan,
        "p95": percentile(latencies, 0.95) if latencies else np.nan,
        "max_rss": max((k[0] for k in kernels), default=np.nan),
        "failures": sum(s.failure is not None for s in sessions),
    }


def print_targets(results: dict[int, dict]) -> bool:
    """Each target against the figures; True when all are met."""
    print("\n== targets (issue 15) ==")
    met = True

    def check(label: str, ok: bool) -> None:
        nonlocal met
        met = met and ok
        print(f"[{'met' if ok else 'MISSED'}] {label}")

    for count, result in results.items():
        check(
            f"N={count}: every session has its canvas within {READY_TARGET_S:.0f} s (max {result['max_ready']:.1f} s)",
            result["all_ready_in_time"],
        )
        check(
            f"N={count}: every answer equals predict_canvas ({result['answers'] - result['mismatches']}/"
            f"{result['answers']}, {result['failures']} sessions failed)",
            result["mismatches"] == 0 and result["failures"] == 0 and result["answers"] > 0,
        )
        check(
            f"N={count}: release -> prediction p95 <= {P95_TARGET_MS:.0f} ms ({result['p95']:.0f} ms)",
            result["p95"] <= P95_TARGET_MS,
        )
        check(
            f"N={count}: kernel RSS <= {KERNEL_RSS_TARGET_MB:.0f} MB (max {result['max_rss']:.0f} MB)",
            result["max_rss"] <= KERNEL_RSS_TARGET_MB,
        )
    if 1 in results:
        check(
            f"N=1: single-session median <= {SINGLE_MEDIAN_TARGET_MS:.0f} ms ({results[1]['p50']:.0f} ms)",
            results[1]["p50"] <= SINGLE_MEDIAN_TARGET_MS,
        )
    return met


async def run(counts: list[int], digits_each: int, settings: LoadSettings) -> dict[int, dict]:
    from playwright.async_api import async_playwright

    figures = {}
    async with async_playwright() as playwright:
        browser = await launch_chromium(playwright)
        if settings.launcher is not None:  # --class-priority low: Chromium's own session too
            for process in browser_processes():
                lower_autogroup(process.pid)
        try:
            if not settings.at_launch:  # the cold start: `make app` (its default pool) and one person at once
                options = {"pool": DEFAULT_POOL, **settings.serve_options}
                cold = await measure(browser, 1, 1, replace(settings, serve_options=options, at_launch=True))
                print(
                    f"cold start (a fresh `make app`, pool {cold['pool']}, one page opened at launch): server "
                    f"answering HTTP {cold['server_answers_s']:.1f} s, first ready canvas {cold['cold_start_s']:.1f} s "
                    "after launch",
                    flush=True,
                )
            for count in counts:
                figures[count] = await measure(browser, count, digits_each, settings)
        finally:
            await browser.close()
    return figures


def session_counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--sessions wants comma-separated whole numbers, got {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"--sessions wants positive numbers, got {text!r}")
    return counts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=session_counts, default=[1, 8, 16, 32], help="e.g. 1,8,16,32")
    parser.add_argument("--digits", type=int, default=3, help="digits each session draws (default 3)")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument(
        "--ready-timeout", type=int, default=READY_TIMEOUT_S, help="seconds a session may wait for its canvas"
    )
    parser.add_argument(
        "--cull-after", type=int, default=None, help="the server's --cull-after in seconds (default: the server's)"
    )
    parser.add_argument(
        "--pool", type=int, default=None, help="the server's --pool (default: sized for the class, N for N sessions)"
    )
    parser.add_argument(
        "--at-launch",
        action="store_true",
        help="open the sessions as soon as the server answers (the default waits until its pool is warm)",
    )
    parser.add_argument(
        "--frontend", choices=sorted(FRONTENDS), default=None, help="the server's --frontend (default: the server's)"
    )
    parser.add_argument(
        "--kernel-start",
        choices=KERNEL_STARTS,
        default=None,
        help="the server's --kernel-start: 'fork' (from one warm process) or 'spawn' (default: the server's)",
    )
    parser.add_argument(
        "--class-priority",
        choices=CLASS_PRIORITIES,
        default="normal",
        help="'low': the simulated class (this script, Playwright's driver, Chromium, and their sessions' "
        f"autogroups) at nice {LOW_PRIORITY_NICENESS}, the server and its kernels at this script's starting "
        "priority, as if the browsers ran on the class's own computers (default 'normal': priorities as they are)",
    )
    args = parser.parse_args(argv)
    if args.digits < 1:
        parser.error("--digits must be at least 1")
    if args.class_priority == "low" and os.getsid(0) != os.getpid():
        return in_a_session_of_its_own(sys.argv[1:] if argv is None else argv)
    recognizer = Recognizer.load()
    print(
        f"model {recognizer.version}; {psutil.cpu_count()} CPUs, {psutil.virtual_memory().total / 1e9:.0f} GB, "
        f"load average {psutil.getloadavg()[0]:.1f}; {args.digits} digits per session"
    )
    options = {
        "cull_after": args.cull_after,
        "pool": args.pool,
        "frontend": args.frontend,
        "kernel_start": args.kernel_start,
    }
    serve_options = {name: value for name, value in options.items() if value is not None}
    print(f"server options: {serve_options or 'the defaults'}")
    starting = os.getpriority(os.PRIO_PROCESS, 0)
    low = args.class_priority == "low"
    class_nice = f"nice {LOW_PRIORITY_NICENESS}" if low else f"nice {starting} (Chromium sets some of its own)"
    print(
        f"class priority {args.class_priority}: the simulated class (this script, Playwright's driver, Chromium) at "
        f"{class_nice}, the server and its kernels at nice {starting}"
    )
    with lower_the_class_priority() if low else contextlib.nullcontext() as launcher:
        settings = LoadSettings(args.seed, serve_options, args.ready_timeout * 1000, args.at_launch, launcher)
        figures = asyncio.run(run(args.sessions, args.digits, settings))
    results = {count: report(figure, recognizer) for count, figure in figures.items()}
    return 0 if print_targets(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
