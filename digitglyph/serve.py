"""Serving the drawing app with Voila: the one place that configures and launches it.

``make app``, the browser tests and ``benchmarks/app_load.py`` all run ``python -m digitglyph.serve``
(:func:`command`; :func:`start` runs it in the background and waits until it answers).  It runs
Voila 0.5 in this process, hardened for a shared machine:

* **Host allow-list** (DNS rebinding): a request (HTTP or websocket) whose ``Host`` header does not
  name this server gets 403 before any handler runs.  Allowed: 127.0.0.1, localhost and ::1, the
  address the server is bound to (unless it is a wildcard such as 0.0.0.0), and each ``--allow-host``.
* **A cap on sessions**: each page owns one kernel; at most ``--max-sessions`` pages hold one at a time.
  The next visitor gets HTTP 503 with "The app is full, try again shortly" (and ``Retry-After``).
  The accounting is exact, even for visitors arriving at the same moment (:class:`BoundedKernelManager`).
* **A pool** of ``--pool`` kernels that have already run the notebook (Voila's preheated kernels), so a
  visitor gets a ready page at once; the pool comes on top of the cap, so at most
  ``max_sessions + pool`` kernels run.  A taken kernel is replaced ``--refill-after`` seconds later, once a
  class's arrival is over, so that warming kernels does not slow the people who just came in.  The pool warms
  :data:`POOL_WARMING` kernel at a time (start and run the notebook), so that filling it never takes more
  than one core from the people drawing; ``GET /digitglyph/status`` says how many are ready
  (:meth:`BoundedKernelManager.status`, :func:`wait_for_pool`).  While people use the app, each pool kernel
  also waits until the machine has CPU to spare (:func:`until_cpu_to_spare`): nobody drawing (no session's
  kernel active in the last :data:`DRAWING_WINDOW_S`) and less than :data:`BUSY_CPU_FRACTION` of all cores busy at
  normal priority over :data:`CPU_WINDOW_S` (work at low priority, ``nice``, gives way to the kernels and does not
  count), for at most :data:`POOL_CPU_WAIT_S`, then it warms anyway; a kernel a visitor is waiting for never
  waits.  Size the pool to the class: see the README.
* **Kernels forked from one warm process** (``--kernel-start fork``, the default; :mod:`digitglyph.forkserver`): a
  kernel costs about 0.23 CPU-seconds to start and run the app instead of 1.1, and shares the imported code's
  memory with the others (PSS about 32 MB instead of 62-78), so a class opening the app on a freshly started server
  gets its canvases sooner.  Pool kernels that pages already wait for warm :data:`CLAIMED_WARMING` at a time
  beside the pool's own one.  ``--kernel-start spawn`` starts each kernel as a new Python, as Jupyter does.
* **Culling**: a page that is closed shuts its kernel down at once (Voila's page does that on
  ``beforeunload``); a kernel whose page vanished without saying so (crash, lost network, a bare HTTP
  request) is shut down after ``--cull-after`` seconds with no connection and no activity.  A kernel whose
  page has not connected yet gets ``--connect-grace`` seconds (default 5 minutes): on a busy machine a page
  can take more than a minute to load, and culling its kernel then would leave it without a canvas.
  Kernels with an open page are never culled, however long their person thinks.
* **A light page** by default (``--frontend light``, the ``digitglyph`` template): the app's widgets in one small
  script (``digitglyph-widgets.js``, the widget protocol for the widgets the app uses) instead of Voila's 5 MB
  JupyterLab frontend, which ``--frontend lab`` (the ``digitglyph-lab`` template) still serves.
* **No overrides**: ``?template=`` and ``?theme=`` change nothing (Voila's overrides are off), so the
  page is always the ``--frontend``'s template, which loads nothing from outside the server.
* **Headers on every response**: a Content-Security-Policy allowing only what the page loads
  (:data:`CONTENT_SECURITY_POLICY`), ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy``.
* **No freeze from a kernel websocket**: Voila 0.5.13's websocket handler hangs the whole server when a
  client on the legacy websocket protocol receives a widget message with binary buffers; :class:`KernelSocket`
  does not.
* **No empty page under load**: the notebook's run waits up to :data:`IOPUB_TIMEOUT_S` for the app's widget
  (nbclient's 4 s default dropped it when many kernels started at once).
* **Kernels on Unix sockets** (``KernelManager.transport = "ipc"``), in the server's private connection folder: no
  TCP port to race for (32 pages opening at once lost a kernel to "Address already in use") and none to reach.
* **Templates compiled once per server** (:class:`PageExporter`, :class:`CompiledTemplates`) instead of once per page,
  and jsonschema's optional IRI checker (2.5 CPU-seconds of Lark parsers at import) switched off before Jupyter loads.
* Nothing from the notebook's directory is served, and tracebacks are not shown on the page.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import contextvars
import ipaddress
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid

import psutil

# jsonschema, which the server imports through jupyter_server, imports rfc3987_syntax (when installed) to check the
# "iri" format, and that module builds some 35 Lark parsers as it is imported: 2.5 of the 3.4 CPU-seconds the server
# took to start here (python-jsonschema/jsonschema#1428).  No schema the server validates (Jupyter's events, nbformat)
# uses that format, so the server goes without it: a None in sys.modules makes the import fail, and jsonschema then
# skips the format.  The imports below come after this on purpose (E402 is off for this file in pyproject.toml).
sys.modules.setdefault("rfc3987_syntax", None)

import jinja2
import tornado.web
import voila.notebook_renderer
from jupyter_server._tz import utcnow
from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from traitlets import Integer, List, Unicode
from traitlets.config import Config
from voila.app import Voila
from voila.exporter import VoilaExporter
from voila.tornado.handler import TornadoVoilaHandler
from voila.tornado.kernel_websocket_handler import VoilaKernelWebsocketHandler

from .paths import NOTEBOOKS, ROOT

NOTEBOOK = NOTEBOOKS / "app.ipynb"
TEMPLATES = ROOT / "share" / "jupyter"  # voila/templates/digitglyph: no CDN, no inline script
START_TIMEOUT_S = 120

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
WILDCARD_ADDRESSES = ("", "0.0.0.0", "::")
# Sized for a class on this 2-core, 24 GiB machine with forked kernels of ~82 MB RSS, 32 MB PSS: (40 + 32) kernels
# stay under 4 GB of PSS, and a pool of 32 warms in about 18 s; see the README's "Running it for a group".
DEFAULT_MAX_SESSIONS = 40
DEFAULT_POOL = 32
DEFAULT_CULL_AFTER_S = 60
DEFAULT_CONNECT_GRACE_S = 300
# The page's frontend: "light" (templates/digitglyph: the app's widgets in one small script) or "lab" (Voila's
# JupyterLab frontend, templates/digitglyph-lab: 5 MB of JavaScript, any widget library).
FRONTENDS = {"light": "digitglyph", "lab": "digitglyph-lab"}
DEFAULT_FRONTEND = "light"
# How a kernel starts: forked from a warm process (digitglyph.forkserver) or as a new Python (Jupyter's usual way).
KERNEL_STARTS = ("fork", "spawn")
DEFAULT_KERNEL_START = "fork"
PROVISIONERS = {"fork": "digitglyph-forking", "spawn": "local-provisioner"}  # jupyter_client's names
CULL_INTERVAL_S = 10
RETRY_AFTER_S = 30
POOL_WARMING = 1  # pool kernels started and warmed at a time
CLAIMED_WARMING = 16  # pool kernels warmed at a time for pages that wait for them (a class arriving at launch)
WARMING_AT_ONCE = {False: POOL_WARMING, True: CLAIMED_WARMING}  # by whether a page has claimed the kernel
DEFAULT_REFILL_AFTER_S = 30  # a taken pool kernel is replaced this long after (Voila's fill_delay)
# While people use the app, a pool kernel is warmed (about 1 CPU-second with the server's part) only when the machine
# has CPU to spare, so that it does not take the CPU their strokes need: see until_cpu_to_spare.
BUSY_CPU_FRACTION = 0.5  # busy: at least this fraction of all cores' time went to work at normal priority
CPU_WINDOW_S = 1.0  # each reading of the machine's CPU use covers this long
POOL_CPU_WAIT_S = 120  # a pool kernel waits at most this long for spare CPU, then warms anyway
DRAWING_WINDOW_S = 5.0  # a session's kernel busy this recently: people are drawing, and the machine counts as busy
NORMAL_PRIORITY_TIMES = ("user", "system", "irq", "softirq", "steal")  # of psutil.cpu_times(); "nice" is not one
STATUS_PATH = "/digitglyph/status"
IOPUB_TIMEOUT_S = 120  # how long the notebook's run waits for a cell's output (see voila_config)

# What the page really loads: its own scripts, styles and fonts, widget styles set inline by the
# widget libraries, data:/blob: images (the model input, icons), and its websockets.  The one inline
# script Voila still writes is the keep-alive heartbeat it sends while a slow notebook runs.
HEARTBEAT_SHA256 = "sha256-m16tKAZfrqdfaIlK4k9Uc4bmwJm0z0f+0b2ahSGv/Ko="  # of "window.voila_heartbeat()"
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        f"script-src 'self' '{HEARTBEAT_SHA256}'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'self'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
FULL_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>DigitGlyph is full</title></head>
<body style="font-family: sans-serif; margin: 4em auto; max-width: 32em">
<h1>The app is full, try again shortly</h1>
<p>All {max_sessions} places are taken. A place frees up as soon as someone closes their page;
reload this page in a little while.</p>
</body></html>
"""

# The end of a page whose kernel could not run the app (PageExporter): it closes the two elements the template left
# open around the (hidden) cells, hides the loading text (a style: the policy allows no inline script) and says so.
KERNEL_FAILED_PAGE = """
</div></div>
<style>#loading { display: none; }</style>
<div class="digitglyph-failed" role="alert">
<h2>The app could not start</h2>
<p>Its kernel on the server stopped before the app was ready. Reload the page to try again.</p>
</div>
</body></html>
"""


# -- the command line -------------------------------------------------------------------------


def parse_arguments(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m digitglyph.serve", description="Serve the DigitGlyph drawing app.")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only; see README to expose it)",
    )
    parser.add_argument("--port", type=int, default=8866)
    parser.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a host name (or address) people use to reach the server, besides 127.0.0.1, "
        "localhost and ::1; repeat for several; requests naming any other host get 403",
    )
    parser.add_argument(
        "--max-sessions",
        type=int,
        default=DEFAULT_MAX_SESSIONS,
        help=f"pages served at once, each with its own kernel (default {DEFAULT_MAX_SESSIONS})",
    )
    parser.add_argument(
        "--pool",
        type=int,
        default=DEFAULT_POOL,
        help=f"kernels kept ready ahead of visitors, on top of the cap (default {DEFAULT_POOL})",
    )
    parser.add_argument(
        "--cull-after",
        type=int,
        default=DEFAULT_CULL_AFTER_S,
        metavar="SECONDS",
        help=f"shut down a kernel after this long without a page connected (default {DEFAULT_CULL_AFTER_S})",
    )
    parser.add_argument(
        "--connect-grace",
        type=int,
        default=DEFAULT_CONNECT_GRACE_S,
        metavar="SECONDS",
        help="how long a page has to connect to its new kernel before the kernel is culled "
        f"(default {DEFAULT_CONNECT_GRACE_S}; never less than --cull-after)",
    )
    parser.add_argument(
        "--refill-after",
        type=int,
        default=DEFAULT_REFILL_AFTER_S,
        metavar="SECONDS",
        help="replace a kernel taken from the pool this long after (default "
        f"{DEFAULT_REFILL_AFTER_S}: the people arriving get the CPU first)",
    )
    parser.add_argument(
        "--frontend",
        choices=sorted(FRONTENDS),
        default=DEFAULT_FRONTEND,
        help="the page: 'light' (default; the app's widgets in one small script, for a class on one machine) "
        "or 'lab' (Voila's full JupyterLab frontend)",
    )
    parser.add_argument(
        "--kernel-start",
        choices=KERNEL_STARTS,
        default=DEFAULT_KERNEL_START,
        help="'fork' (default): each kernel is forked from one process that has imported what the app needs "
        "(digitglyph/forkserver.py, a third of the CPU); 'spawn': each kernel is a new Python, as Jupyter starts them",
    )
    args = parser.parse_args(argv)
    for name in ("max_sessions", "cull_after", "connect_grace", "refill_after"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.pool < 0:
        parser.error(f"--pool must be 0 or more, got {args.pool}")
    try:
        args.allowed_hosts = allowed_hosts(args.host, args.allow_host)
    except ValueError as error:
        parser.error(str(error))
    return args


def allowed_hosts(bound: str, named=()) -> list[str]:
    """The Host names the server answers to: the local names, the bound address and those ``named``."""
    hosts = list(LOCAL_HOSTS)
    for name in ([] if bound in WILDCARD_ADDRESSES else [bound]) + list(named):
        host = normal_host(name)
        if not host or any(character in host for character in "/*@ ") or (":" in host and not is_address(host)):
            raise ValueError(f"--allow-host {name!r} is not a host name or address")
        if host not in hosts:
            hosts.append(host)
    return hosts


def normal_host(host: str) -> str:
    """A Host header's name: lower case, without port, IPv6 brackets or a final dot."""
    host = host.strip().lower()
    if host.startswith("["):
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


def is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def command(
    port: int = 8866,
    host: str = "127.0.0.1",
    allow_hosts=(),
    max_sessions: int = DEFAULT_MAX_SESSIONS,
    pool: int = DEFAULT_POOL,
    cull_after: int = DEFAULT_CULL_AFTER_S,
    connect_grace: int = DEFAULT_CONNECT_GRACE_S,
    refill_after: int = DEFAULT_REFILL_AFTER_S,
    frontend: str = DEFAULT_FRONTEND,
    kernel_start: str = DEFAULT_KERNEL_START,
) -> list[str]:
    """The command line that serves the app."""
    arguments = [
        sys.executable,
        "-m",
        "digitglyph.serve",
        f"--host={host}",
        f"--port={port}",
        f"--max-sessions={max_sessions}",
        f"--pool={pool}",
        f"--cull-after={cull_after}",
        f"--connect-grace={connect_grace}",
        f"--refill-after={refill_after}",
        f"--frontend={frontend}",
        f"--kernel-start={kernel_start}",
    ]
    return arguments + [f"--allow-host={name}" for name in allow_hosts]


def environment(extra: dict | None = None) -> dict:
    """The environment for the server: the digitglyph template on JUPYTER_PATH, plus ``extra``."""
    values = {**os.environ, **(extra or {})}
    paths = [str(TEMPLATES)] + [path for path in values.get("JUPYTER_PATH", "").split(os.pathsep) if path]
    values["JUPYTER_PATH"] = os.pathsep.join(dict.fromkeys(paths))
    values.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return values


def start(
    port: int, host: str = "127.0.0.1", extra_environment: dict | None = None, log=subprocess.DEVNULL, **options
) -> subprocess.Popen:
    """Start the server in the background (its own process group) and wait until it answers HTTP.

    ``options`` are :func:`command`'s (``allow_hosts``, ``max_sessions``, ``pool``, ``cull_after``,
    ``connect_grace``, ``refill_after``, ``frontend``, ``kernel_start``).
    """
    process = subprocess.Popen(
        command(port, host, **options),
        env=environment(extra_environment),
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    local = "127.0.0.1" if host in WILDCARD_ADDRESSES else host
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the app's server exited with status {process.returncode} before serving")
        try:
            with urllib.request.urlopen(f"http://{local}:{port}/voila/static/voila.js", timeout=5):
                return process
        except (OSError, urllib.error.URLError):
            time.sleep(0.5)
    process.kill()
    raise RuntimeError(f"the app's server did not answer on {host}:{port} within {START_TIMEOUT_S} s")


def status(port: int, host: str = "127.0.0.1") -> dict:
    """The server's ``/digitglyph/status``: ``{"pool": {"size", "ready"}, "sessions", "max_sessions"}``."""
    with urllib.request.urlopen(f"http://{host}:{port}{STATUS_PATH}", timeout=10) as response:
        return json.load(response)


def wait_for_pool(port: int, host: str = "127.0.0.1", timeout_s: float = 600.0) -> dict:
    """Wait until every kernel of the pool has run the notebook (a class can come in); returns the status."""
    deadline = time.monotonic() + timeout_s
    while True:
        current = status(port, host)
        if current["pool"]["ready"] >= current["pool"]["size"]:
            return current
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"the pool has {current['pool']['ready']} of {current['pool']['size']} kernels "
                f"ready after {timeout_s:.0f} s"
            )
        time.sleep(0.5)


def voila_config(args: argparse.Namespace) -> Config:
    """Voila's own settings for :class:`DigitGlyphVoila`."""
    config = Config()
    config.Voila.update(
        ip=args.host, port=args.port, open_browser=False, port_retries=0
    )  # the port asked for, or an error: never another one silently
    config.DigitGlyphVoila.allowed_hosts = args.allowed_hosts
    config.VoilaConfiguration.update(
        template=FRONTENDS[args.frontend],
        theme="light",
        allow_template_override="NO",
        allow_theme_override="NO",
        file_denylist=[".*"],  # serve no files from the notebook's directory
        show_tracebacks=False,
        multi_kernel_manager_class="digitglyph.serve.BoundedKernelManager",
        preheat_kernel=args.pool > 0,
        default_pool_size=args.pool,
    )
    # nbclient waits 4 s for a cell's output after the kernel's reply, then goes on without it: on a machine
    # busy starting many kernels the app's widget arrived later, and the page came up empty.
    config.VoilaExecutor.iopub_timeout = IOPUB_TIMEOUT_S
    # Kernels talk to the server over Unix sockets beside their connection files, not TCP ports: a port picked free for
    # a kernel could be taken before the kernel bound it (by another kernel or by any connection on the machine), and
    # 32 pages opening at once lost a kernel that way ("Address already in use"); no other user can reach them, either.
    config.KernelManager.transport = "ipc"
    # The app's kernels only (this server's): forked from one warm process, see digitglyph/forkserver.py.
    config.KernelProvisionerFactory.default_provisioner_name = PROVISIONERS[args.kernel_start]
    config.BoundedKernelManager.update(
        max_sessions=args.max_sessions,
        cull_idle_timeout=args.cull_after,
        connect_grace=max(args.connect_grace, args.cull_after),
        cull_interval=min(CULL_INTERVAL_S, args.cull_after),
        cull_connected=False,
        fill_delay=args.refill_after,
    )  # an open page keeps its kernel
    return config


def main(argv=None) -> int:
    """``python -m digitglyph.serve [--host H] [--port P] [--allow-host NAME ...] [--max-sessions N] [--pool N]``."""
    args = parse_arguments(argv)
    if args.kernel_start == "fork":
        from .forkserver import provisioner_installed, start_in_background

        if provisioner_installed():
            start_in_background()  # the fork server imports while Voila does: the first kernel comes sooner
        else:
            print("digitglyph: the fork provisioner is not installed (`pip install -e .`); kernels are spawned")
            args.kernel_start = "spawn"
    os.chdir(ROOT)
    os.environ.update(environment())
    voila.notebook_renderer.VoilaExporter = PageExporter  # Voila has no setting for the exporter its pages use
    print(
        f"DigitGlyph drawing app: http://{'127.0.0.1' if args.host in WILDCARD_ADDRESSES else args.host}:"
        f"{args.port}/  (Ctrl-C stops it)\n  answers to hosts: {', '.join(args.allowed_hosts)}; "
        f"at most {args.max_sessions} pages at once, {args.pool} kernels kept ready, the {args.frontend} page, "
        f"kernels started by {args.kernel_start}",
        flush=True,
    )
    DigitGlyphVoila.launch_instance(argv=[str(NOTEBOOK)], config=voila_config(args))
    return 0


# -- inside the server ------------------------------------------------------------------------

ADMISSION: contextvars.ContextVar = contextvars.ContextVar("digitglyph_admission", default=None)


class CompiledTemplates(jinja2.BytecodeCache):
    """Jinja's compiled templates, kept in memory for as long as the server runs.

    Voila makes a new exporter, and with it a new Jinja environment, for every kernel it renders the page with, and
    each environment parsed and compiled the page's templates again (ours and the nbconvert templates they extend):
    0.2 CPU-seconds a page, more than half of what the server spends on one.  An environment with this cache compiles
    a template once per server and then loads its code from here.  Jinja checks each template's source against the
    code's checksum, so an edited template is compiled anew; the code is kept apart for environments that compile
    differently (async or not, other extensions).
    """

    def __init__(self):
        self.code: dict[tuple, bytes] = {}

    @staticmethod
    def key(bucket: jinja2.bccache.Bucket) -> tuple:
        environment = bucket.environment
        return (environment.is_async, tuple(sorted(environment.extensions)), bucket.key)

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        code = self.code.get(self.key(bucket))
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        self.code[self.key(bucket)] = bucket.bytecode_to_string()


COMPILED_TEMPLATES = CompiledTemplates()


class PageExporter(VoilaExporter):
    """Voila's exporter, its templates compiled once per server (:class:`CompiledTemplates`), and a page that ends
    with :data:`KERNEL_FAILED_PAGE` when its kernel cannot run the app.

    Voila renders the page while the kernel starts and runs the notebook.  When that fails (a kernel that dies before
    it answers, say), Voila's page handler kept the request open for ever, sending heartbeats to a page that showed
    "Loading the app" and held a place under the cap.
    """

    def _create_environment(self) -> jinja2.Environment:
        environment = super()._create_environment()
        environment.bytecode_cache = COMPILED_TEMPLATES
        return environment

    async def generate_from_notebook_node(self, nb, resources=None, extra_context=None, page_config=None, **kw):
        pieces = super().generate_from_notebook_node(nb, resources, extra_context or {}, page_config or {}, **kw)
        try:
            async for piece in pieces:
                yield piece
        except Exception as error:  # noqa: BLE001 - whatever stopped the kernel, the page must end and say so
            self.log.error("DigitGlyph: the app's page could not be finished: %s", error)
            yield KERNEL_FAILED_PAGE, resources


class SecurityHeaders(tornado.web.OutputTransform):
    """Adds :data:`SECURITY_HEADERS` to every response (Voila's static file handlers set none)."""

    def transform_first_chunk(self, status_code, headers, chunk, finishing):
        for name, value in SECURITY_HEADERS.items():
            headers[name] = value
        return status_code, headers, chunk


class RefusedHost(tornado.web.RequestHandler):
    """403 for a request naming a host this server does not answer to (DNS rebinding)."""

    def prepare(self):
        self.set_status(403)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish("403 Forbidden: this server does not answer to that host name.\n")


class GuardedApplication(tornado.web.Application):
    """Voila's tornado application, refusing unknown hosts before routing and adding the security headers."""

    def __init__(self, hosts, **settings):
        super().__init__(transforms=[SecurityHeaders], **settings)
        self.allowed_hosts = frozenset(hosts)

    def find_handler(self, request, **kwargs):
        if normal_host(request.host or "") not in self.allowed_hosts:
            return self.get_handler_delegate(request, RefusedHost)
        return super().find_handler(request, **kwargs)


def is_v1_frame(payload: bytes) -> bool:
    """Whether ``payload`` can be a ``v1.kernel.websocket.jupyter.org`` frame: a part count whose offsets fit in it."""
    count = int.from_bytes(payload[:8], "little")
    return 0 < count and 8 * (count + 1) <= len(payload)


class KernelSocket(VoilaKernelWebsocketHandler):
    """Voila's kernel websocket without its freeze.

    Voila 0.5.13 reads the part count of every binary message it sends as v1 framing.  A client on the
    legacy protocol (a websocket opened without the v1 subprotocol, as any script or page can) gets
    binary messages in the legacy framing, whose first bytes read as a count in the billions; building
    that list of offsets holds the server's only thread, and every page stops.  Such messages skip
    Voila's filter, which only drops ``execute_input`` (a message that never carries binary buffers).
    """

    def write_message(self, message, binary=False):
        if isinstance(message, bytes) and not is_v1_frame(message):
            return super(VoilaKernelWebsocketHandler, self).write_message(message, binary)
        return super().write_message(message, binary)


def normal_priority_use(before, after) -> float:
    """The fraction of all cores' time between two ``psutil.cpu_times()`` readings that went to work at normal
    priority.  Work at low priority (``nice``: a niced training run, the benchmark's simulated class) does not count:
    it gives way to a warming kernel.  Guest time is already counted in user and nice time."""

    def total(times):
        return sum(times) - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)

    elapsed = total(after) - total(before)
    busy = sum(getattr(after, name, 0.0) - getattr(before, name, 0.0) for name in NORMAL_PRIORITY_TIMES)
    return busy / elapsed if elapsed > 0 else 0.0


async def recent_cpu_use() -> float:
    """The machine's CPU use at normal priority (:func:`normal_priority_use`) over the next :data:`CPU_WINDOW_S`."""
    before = psutil.cpu_times()
    await asyncio.sleep(CPU_WINDOW_S)
    return normal_priority_use(before, psutil.cpu_times())


async def until_cpu_to_spare(worth_waiting, cpu_use=recent_cpu_use) -> int:
    """Wait while the machine is busy: read its CPU use (``cpu_use``, one :data:`CPU_WINDOW_S` each) until a reading
    is under :data:`BUSY_CPU_FRACTION`, ``worth_waiting()`` turns false, or :data:`POOL_CPU_WAIT_S` of busy readings
    have gone by.  Returns how many readings were busy."""
    busy = 0
    while worth_waiting() and busy * CPU_WINDOW_S < POOL_CPU_WAIT_S:
        if await cpu_use() < BUSY_CPU_FRACTION:
            break
        busy += 1
    return busy


def has_started(task: asyncio.Task) -> bool:
    """Whether a pool task has finished warming its kernel without an error."""
    return task.done() and not task.cancelled() and task.exception() is None


class BoundedKernelManager(AsyncMappingKernelManager):
    """Kernels for at most ``max_sessions`` pages at once, counted exactly.

    A *session* is a kernel that belongs to a page: every kernel this manager started that is not
    waiting in Voila's pool, plus every admitted page request that has no kernel yet.  Voila (with a
    pool) subclasses this class; its pool starts kernels with ``VOILA_PREHEAT=True`` in their
    environment and keeps them as tasks in ``self._pools``.
    """

    max_sessions = Integer(DEFAULT_MAX_SESSIONS, config=True, help="pages served at once (one kernel each)")
    connect_grace = Integer(
        DEFAULT_CONNECT_GRACE_S, config=True, help="seconds a page has to connect to its kernel before culling"
    )

    def __init__(self, **kwargs):
        self.started_by: dict[str, asyncio.Task] = {}  # kernel id -> the task that started it
        self.starting: set[str] = set()
        self.admissions: set[object] = set()  # admitted page requests whose kernel is not counted yet
        self.claims: dict[asyncio.Task, object] = {}  # pool task handed to a request before it started
        self.connected: set[str] = set()  # kernels whose page has connected at least once
        self.warming = {False: 0, True: 0}  # pool kernels warming now, unclaimed and claimed (see WARMING_AT_ONCE)
        self.turns = asyncio.Condition()  # a pool task's turn to warm: a warming one finished, or it was claimed
        self.not_before: dict[asyncio.Task, float] = {}  # a refill task's start (loop time), unless claimed before
        self.closing = False  # the server is stopping: no kernel is started any more
        self.pool_size = 0  # --pool; 0 without Voila's pool
        super().__init__(**kwargs)
        if hasattr(self, "_initialize"):  # Voila's pool (its subclass), before it starts filling
            self.pool_size = self.kernel_pools_config.get("default", {}).get("pool_size", 0)
            self._initialize = self._one_at_a_time(self._initialize)
            self._voila_fill, self.fill_if_needed = self.fill_if_needed, self._fill_to_target

    def _one_at_a_time(self, initialize):
        """Voila's pool warm-up (start a kernel, run the notebook in it), :data:`POOL_WARMING` at a time, each once
        the machine has CPU to spare (:func:`until_cpu_to_spare`, while :meth:`pool_may_wait`).  Pool kernels that pages
        have claimed (their visitors are waiting) warm :data:`CLAIMED_WARMING` at a time, beside those: at a class's
        arrival on a freshly started server every page claims one, and one at a time made the last page wait for
        all the others' kernels, while all at once made every page wait for the last."""

        async def warm(*args, **kwargs):
            task = asyncio.current_task()
            start_at = self.not_before.pop(task, None)
            async with self.turns:
                if start_at is not None:  # a refill waits out its delay, unless a page claims it meanwhile
                    remaining = start_at - asyncio.get_running_loop().time()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.turns.wait_for(lambda: task in self.claims), max(0.0, remaining))
                await self.turns.wait_for(
                    lambda: self.warming[task in self.claims] < WARMING_AT_ONCE[task in self.claims]
                )
                claimed = task in self.claims
                self.warming[claimed] += 1
            try:
                if not claimed and (busy := await until_cpu_to_spare(self.pool_may_wait, self.machine_use)):
                    self.log.info("A pool kernel waited %.0f s for spare CPU", busy * CPU_WINDOW_S)
                result = await initialize(*args, **kwargs)
                with contextlib.suppress(Exception):  # a failed notebook run shows on the page that takes it
                    await asyncio.shield(result["task"])
                return result
            finally:
                async with self.turns:
                    self.warming[claimed] -= 1
                    self.turns.notify_all()

        return warm

    async def _next_turns(self) -> None:
        async with self.turns:
            self.turns.notify_all()

    async def machine_use(self) -> float:
        """The machine's CPU use (:func:`recent_cpu_use`), or 1 (all busy) while people are drawing: a session's
        kernel worked in the last :data:`DRAWING_WINDOW_S`.  Their browsers run elsewhere, and the CPU their next
        stroke needs is not visible in the last second's use."""
        use = await recent_cpu_use()
        return 1.0 if self.people_drawing() else use

    def people_drawing(self, now=None) -> bool:
        """Whether a kernel that is not in the pool had activity in the last :data:`DRAWING_WINDOW_S`."""
        now = now or utcnow()
        pooled = {task.result()["kernel_id"] for task in self.pool_tasks() if has_started(task)}
        return any(
            (now - kernel.last_activity).total_seconds() < DRAWING_WINDOW_S
            for kernel_id, kernel in list(self._kernels.items())
            if kernel_id not in pooled and getattr(kernel, "last_activity", None) is not None
        )

    def pool_may_wait(self) -> bool:
        """Whether warming a pool kernel may wait for spare CPU: people use the app (their strokes come first), none
        of them is waiting for a pool kernel that has not started yet, and the server is not stopping."""
        return self.sessions() > 0 and not self.claims and not self.closing

    def pool_target(self) -> int:
        """How many kernels the pool should hold: ``--pool``, but never more than the places left under the cap
        (a kernel nobody may take is only a cost)."""
        return min(self.pool_size, max(0, self.max_sessions - self.sessions()))

    def _fill_to_target(self, *args, delay=None, **kwargs) -> None:
        """Voila's ``fill_if_needed`` (called when a page takes a pool kernel), filling to :meth:`pool_target`.  The
        refill delay (``--refill-after``) is waited in :meth:`_one_at_a_time`'s warm-up instead of before it, so that a
        page that claims a refill (the pool is empty, the class is still arriving) does not wait it out."""
        if self.closing:
            return
        config = self.kernel_pools_config.setdefault("default", {})
        config["pool_size"] = self.pool_target()
        before = self.pool_tasks()
        try:
            self._voila_fill(*args, delay=0, **kwargs)
        finally:
            config["pool_size"] = self.pool_size
        start_at = asyncio.get_event_loop().time() + (self.fill_delay if delay is None else delay)
        for task in self.pool_tasks() - before:
            self.not_before[task] = start_at

    def status(self) -> dict:
        """The pool (how many kernels it should hold now, how many have run the notebook) and the sessions, for
        ``/digitglyph/status``."""
        ready = sum(map(has_started, self.pool_tasks()))
        return {
            "pool": {"size": self.pool_target(), "ready": ready},
            "sessions": self.sessions(),
            "max_sessions": self.max_sessions,
        }

    def pool_tasks(self) -> set:
        return {task for pool in getattr(self, "_pools", {}).values() for task in pool}

    def sessions(self) -> int:
        pooled = self.pool_tasks()
        alive = [
            kernel_id
            for kernel_id, task in self.started_by.items()
            if task not in pooled and (kernel_id in self._kernels or kernel_id in self.starting)
        ]
        return len(alive) + len(self.admissions)

    def admit(self) -> object | None:
        """A token for a page request if there is room (release it with :meth:`release`), else None."""
        if self.sessions() >= self.max_sessions:
            return None
        token = object()
        self.admissions.add(token)
        return token

    def release(self, token) -> None:
        self.admissions.discard(token)
        for task in [task for task, claimed in self.claims.items() if claimed is token]:
            del self.claims[task]

    def claim_pool_kernel(self, notebook: str, token) -> None:
        """The request ``token`` takes the first kernel of the pool: it counts as a session from now on."""
        task = self._pools[notebook][0]
        if has_started(task):
            # its idle time starts now, not when it was put in the pool: the page has not connected yet
            self.get_kernel(task.result()["kernel_id"]).last_activity = utcnow()
        if task.done() or task in self.started_by.values():
            self.release(token)  # counted through started_by once it leaves the pool
        else:
            self.claims[task] = token  # counted as an admission until its kernel starts
            asyncio.ensure_future(self._next_turns())  # a claimed pool kernel warms now

    async def start_kernel(self, *, kernel_id=None, **kwargs):
        kernel_id = kernel_id or str(uuid.uuid4())
        task = asyncio.current_task()
        self.started_by[kernel_id] = task
        self.starting.add(kernel_id)
        if (kwargs.get("env") or {}).get("VOILA_PREHEAT") != "True":
            self.release(ADMISSION.get())  # a page's own kernel: counted through started_by now
        elif task in self.claims:
            self.release(self.claims.pop(task))
        try:
            return await super().start_kernel(kernel_id=kernel_id, **kwargs)
        except BaseException:
            self.started_by.pop(kernel_id, None)
            raise
        finally:
            self.starting.discard(kernel_id)

    def notify_connect(self, kernel_id):
        self.connected.add(kernel_id)
        super().notify_connect(kernel_id)

    async def cull_kernel_if_idle(self, kernel_id):
        kernel = self._kernels.get(kernel_id)
        if kernel is not None and kernel_id not in self.connected and hasattr(kernel, "last_activity"):
            waiting_s = (utcnow() - kernel.last_activity).total_seconds()
            if waiting_s <= self.connect_grace and getattr(kernel, "execution_state", None) != "dead":
                return  # its page is still loading (or was a bare request): culled after the grace
        return await super().cull_kernel_if_idle(kernel_id)

    async def shutdown_kernel(self, kernel_id, *args, **kwargs):
        was_session = kernel_id in self.started_by and self.started_by[kernel_id] not in self.pool_tasks()
        try:
            return await super().shutdown_kernel(kernel_id, *args, **kwargs)
        finally:
            self.started_by.pop(kernel_id, None)
            self.connected.discard(kernel_id)
            if was_session and self.pool_size:  # (nothing is started while the server is closing)
                self.fill_if_needed(notebook_name=self.notebook_path)  # a place freed: the pool may grow back

    async def shutdown_all(self, *args, **kwargs):
        self.closing = True
        return await super().shutdown_all(*args, **kwargs)


class StatusHandler(tornado.web.RequestHandler):
    """``GET /digitglyph/status``: :meth:`BoundedKernelManager.status` as JSON (is the pool warm for a class?)."""

    def initialize(self, manager: BoundedKernelManager):
        self.manager = manager

    def get(self):
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(self.manager.status()))


class PageHandler(TornadoVoilaHandler):
    """The app's page: admitted under the cap (503 when full); the pool is used whatever the query says."""

    async def get(self, path=None):
        token = self.kernel_manager.admit()
        if token is None:
            self.set_status(503)
            self.set_header("Retry-After", str(RETRY_AFTER_S))
            self.set_header("Content-Type", "text/html; charset=utf-8")
            self.finish(FULL_PAGE.format(max_sessions=self.kernel_manager.max_sessions))
            return
        ADMISSION.set(token)
        try:
            await super().get(path=path)
        finally:
            self.kernel_manager.release(token)

    def should_use_rendered_notebook(self, notebook_data, pool_size, template_name, theme, request_args):
        # Template and theme overrides are off, so ?template= and ?theme= must not bypass the pool.  (Until the pool's
        # first kernel has started, Voila gives a page a kernel of its own: taking a pool kernel then was measured
        # slower for a class arriving at launch, 30.4 s and 36.4 s to the last canvas against 22.6-27.1 s and 33.0 s.)
        use = super().should_use_rendered_notebook(notebook_data, pool_size, None, None, request_args)
        if use:
            self.kernel_manager.claim_pool_kernel(self.notebook_path, ADMISSION.get())
        return use


class DigitGlyphVoila(Voila):
    """Voila with the host allow-list, the security headers, the capped page handler and a kernel websocket
    that cannot freeze the server."""

    allowed_hosts = List(Unicode(), list(LOCAL_HOSTS), config=True, help="Host names the server answers to")

    def start(self):
        # As Voila.start, with GuardedApplication and PageHandler in place of tornado's and Voila's.
        self.connection_dir = tempfile.mkdtemp(prefix="voila_", dir=self.connection_dir_root)
        self.app = GuardedApplication(self.allowed_hosts, **self.init_settings())
        self.app.settings.update(self.tornado_settings)
        replacements = {TornadoVoilaHandler: PageHandler, VoilaKernelWebsocketHandler: KernelSocket}
        handlers = [
            (pattern, replacements.get(handler, handler), *rest) for pattern, handler, *rest in self.init_handlers()
        ]
        handlers.insert(0, (STATUS_PATH, StatusHandler, {"manager": self.kernel_manager}))
        self.app.add_handlers(".*$", handlers)
        self.listen()


if __name__ == "__main__":
    # The importable module's main, not this __main__ copy of it: Voila loads the kernel manager by its dotted name
    # (digitglyph.serve.BoundedKernelManager), and the page handler must set that module's ADMISSION, not a copy's
    # (with a copy's, a page whose kernel was not from the pool stayed counted twice until its page had loaded).
    from digitglyph.serve import main as module_main

    raise SystemExit(module_main())
