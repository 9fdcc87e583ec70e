"""App kernels forked from one warm process, so that a kernel starts for a fraction of a CPU-second.

A kernel started the usual way is a new Python that imports ipykernel, IPython, numpy, ipywidgets, ipycanvas
and this package before it runs the app's notebook: about 1 CPU-second each (``benchmarks/app_load.py``
prints the kernels' CPU time), which is what kept 32 people opening the app on a freshly started 2-core
server from all getting a canvas within 30 s.  Here one process, the *fork server*, imports all of that
once (:data:`PRELOAD`) and then only forks: each kernel is a copy of it that goes straight to
``ipykernel``'s kernel app, and shares the imported code's memory with its siblings (copy on write).

Two halves:

* **The fork server** (``python -m digitglyph.forkserver SOCKET``, :func:`serve`): imports :data:`PRELOAD`,
  says ``ready`` on stdout and answers one JSON request per connection on a Unix socket in a directory only
  its user can enter: ``{"launch": {"argv": [...], "env": {...}, "cwd": "..."}}`` forks a kernel and answers
  ``{"pid": N}``; ``{"exit_status": N}`` answers ``{"exit_status": code or null}`` (null: still running or
  not one of its kernels).  Anything else gets ``{"error": "..."}``.  A kernel gets exactly the
  environment, working directory and kernel arguments it was asked for, its own process group, and stdin
  from ``/dev/null``.  The server reaps its kernels and exits when the process that started it goes away,
  and each kernel exits when the fork server does (ipykernel's parent poller), so nothing outlives the app.
* **The provisioner** (:class:`ForkingProvisioner`, the ``digitglyph-forking`` kernel provisioner that
  ``digitglyph.serve`` selects for the app's kernels only): jupyter_client's :class:`LocalProvisioner` with
  one change, its kernels come from the fork server (started on first use, one per app server) instead of
  ``Popen``.  A kernel command it cannot fork the same way (not ``python -m ipykernel_launcher`` of this
  interpreter, or other output redirection) and any failure of the fork server fall back to the usual
  launch, with a warning in the server's log: the app starts slower, never not at all.

Kernels for notebooks (papermill, JupyterLab) are started as before: only the app's server uses this.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from jupyter_client.provisioning import LocalProvisioner

# What every app kernel imports before it can run the notebook; imported once, by the fork server.  Nothing that
# makes a widget when imported: ipycanvas creates its canvas manager widget at import, and one made in the fork
# server has no kernel to talk to (the canvas never got a command), so each kernel imports ipycanvas itself.
PRELOAD = (
    "ipykernel.kernelapp",
    "ipykernel.ipkernel",
    "ipykernel.comm",
    "ipykernel.debugger",  # and debugpy: 0.1 CPU-s a kernel when each imported it
    "IPython.core.interactiveshell",
    "IPython.core.completerlib",
    "IPython.core.debugger",
    "IPython.extensions.storemagic",
    "psutil",
    "tornado.platform.asyncio",
    "ipywidgets",
    "numpy",
    "numpy.random",
    "PIL.Image",
    "PIL.PngImagePlugin",
    "digitglyph.app",
    "digitglyph.recognizer",
    "digitglyph.runtime",
    "ai_edge_litert.interpreter",
    "ai_edge_litert.schema_py_generated",  # and flatbuffers: the light model's metadata
)
PROVISIONER = "digitglyph-forking"  # ForkingProvisioner's entry point name (pyproject.toml)
LAUNCHER = "ipykernel_launcher"  # kernel commands look like [python, *interpreter options, -m, LAUNCHER, *args]
START_TIMEOUT_S = 60  # the fork server must say "ready" within this (it imports PRELOAD: ~1 CPU-s)
REPLY_TIMEOUT_S = 10
MAX_REQUEST_BYTES = 1 << 20
MAX_KEPT_EXIT_STATUSES = 1024
# The kernels do small pieces of numerical work on a shared machine: one BLAS thread each (set before numpy loads).
SINGLE_THREADED = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


class ForkServerError(RuntimeError):
    """The fork server is not there or refused a request; the provisioner then launches the usual way."""


# -- the fork server (its own process) ---------------------------------------------------------------------


def kernel_arguments(argv) -> list[str] | None:
    """The arguments after ``-m ipykernel_launcher`` in a kernel command, or None if it is not one."""
    if not isinstance(argv, list) or not all(isinstance(part, str) for part in argv):
        return None
    for index in range(1, len(argv) - 1):
        if argv[index] == "-m" and argv[index + 1] == LAUNCHER:
            if all(option.startswith("-X") for option in argv[1:index]):  # interpreter options such as -Xfrozen_modules
                return argv[index + 2 :]
            return None
    return None


def check_launch(request) -> tuple[list[str], dict, str]:
    """``(kernel arguments, environment, working directory)`` of a launch request, or a ValueError saying why not."""
    if not isinstance(request, dict) or set(request) != {"argv", "env", "cwd"}:
        raise ValueError("a launch needs exactly argv, env and cwd")
    arguments = kernel_arguments(request["argv"])
    if arguments is None:
        raise ValueError(f"not a '-m {LAUNCHER}' kernel command: {request['argv']!r}")
    env = request["env"]
    if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        raise ValueError("env must map names to strings")
    cwd = request["cwd"]
    if not isinstance(cwd, str) or not os.path.isdir(cwd):
        raise ValueError(f"cwd {cwd!r} is not a directory")
    return arguments, env, cwd


def run_kernel(arguments: list[str], env: dict, cwd: str) -> None:
    """In a freshly forked child: become the kernel ``python -m ipykernel_launcher *arguments`` would be."""
    os.setpgid(0, 0)
    for number in (signal.SIGCHLD, signal.SIGTERM):  # the fork server's own handlers
        signal.signal(number, signal.SIG_DFL)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    sys.path[0] = cwd  # `python -m` puts the working directory first; ipykernel_launcher keeps it
    # exit when the fork server does (ipykernel's parent poller; its default was read when the fork server imported it)
    sys.argv = [LAUNCHER, *arguments, f"--IPKernelApp.parent_handle={os.getppid()}"]
    import ipywidgets
    from ipykernel.kernelapp import IPKernelApp

    kernel = IPKernelApp.instance()  # what ipykernel_launcher's launch_new_instance does, in two steps
    kernel.initialize()
    # ipywidgets registers its comm targets when it is imported inside a kernel; the fork server imported it
    # before there was one, so the kernel registers them now (the widgets never reach the page without them).
    ipywidgets.register_comm_target()
    kernel.start()


class ForkServer:
    """The fork server's state: its listening socket and its kernels' exit statuses."""

    def __init__(self, listener: socket.socket):
        self.listener = listener
        self.pid = os.getpid()  # the fork server's own (a kernel forked from it is another process)
        self.connection: socket.socket | None = None  # the request being answered
        self.exit_statuses: dict[int, int] = {}
        self.children: set[int] = set()

    def reap(self, *_signal) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.children.discard(pid)
            self.exit_statuses[pid] = os.waitstatus_to_exitcode(status)
            while len(self.exit_statuses) > MAX_KEPT_EXIT_STATUSES:
                self.exit_statuses.pop(next(iter(self.exit_statuses)))

    def launch(self, request) -> dict:
        arguments, env, cwd = check_launch(request)
        pid = os.fork()
        if pid == 0:  # the kernel
            code = 1
            try:
                self.listener.close()
                self.connection.close()
                run_kernel(arguments, env, cwd)
                code = 0
            except SystemExit as stop:
                code = stop.code if isinstance(stop.code, int) else 1
            except BaseException:  # noqa: BLE001 - a kernel that fails to start reports it and exits, never returns here
                import traceback

                traceback.print_exc()
            finally:
                os._exit(code)
        with contextlib.suppress(OSError):
            os.setpgid(pid, pid)  # also here, so that a signal to the group reaches it from the first moment
        self.children.add(pid)
        return {"pid": pid}

    def answer(self, request) -> dict:
        if isinstance(request, dict) and set(request) == {"launch"}:
            return self.launch(request["launch"])
        if isinstance(request, dict) and set(request) == {"exit_status"} and type(request["exit_status"]) is int:
            return {"exit_status": self.exit_statuses.get(request["exit_status"])}
        raise ValueError("expected {'launch': {...}} or {'exit_status': pid}")

    def handle(self, connection: socket.socket) -> None:
        self.connection = connection
        with connection:
            connection.settimeout(REPLY_TIMEOUT_S)
            data = b""
            while not data.endswith(b"\n") and len(data) <= MAX_REQUEST_BYTES:
                chunk = connection.recv(65536)
                if not chunk:
                    break
                data += chunk
            try:
                if len(data) > MAX_REQUEST_BYTES:
                    raise ValueError("request too long")
                reply = self.answer(json.loads(data))
            except (ValueError, OSError) as error:
                reply = {"error": str(error)}
            with contextlib.suppress(OSError):
                connection.sendall(json.dumps(reply).encode() + b"\n")


def preload() -> None:
    # debugpy (imported with ipykernel.debugger) otherwise warns in the server's log that Python's frozen modules may
    # hide breakpoints: nobody debugs the app's kernels
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    for name in PRELOAD:
        importlib.import_module(name)
    # What is imported lives as long as the fork server: out of the garbage collector's sight, so that a kernel's
    # collections neither walk those objects nor write to them (which would copy their memory into every kernel).
    gc.freeze()


def serve(socket_path: str, ready_fd: int) -> None:
    """Run the fork server on ``socket_path`` until the process that started it exits; ``ready`` is written
    to ``ready_fd`` (then closed) once it listens.  Its stdout and stderr, the kernels' too, are the app server's."""
    starter = os.getppid()
    preload()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(socket_path)
    listener.listen(64)
    listener.settimeout(1.0)  # wake up every second to see whether the app server is still there
    server = ForkServer(listener)
    signal.signal(signal.SIGCHLD, server.reap)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    os.write(ready_fd, b"ready\n")
    os.close(ready_fd)
    try:
        while os.getppid() == starter:
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            server.handle(connection)
    finally:  # the socket and its directory go with the fork server (the app server may be gone already)
        if os.getpid() == server.pid:
            shutil.rmtree(os.path.dirname(socket_path), ignore_errors=True)


# -- the provisioner (in the app server) ---------------------------------------------------------------------


class ForkServerProcess:
    """The app server's handle on its fork server: started on first use, asked over its socket."""

    _instance: ForkServerProcess | None = None
    _starting = threading.Lock()

    def __init__(self):
        self.directory = tempfile.mkdtemp(prefix="digitglyph-forks-")  # mode 0700: only this user can connect
        self.socket_path = str(Path(self.directory) / "socket")
        ready_read, ready_write = os.pipe()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "digitglyph.forkserver", self.socket_path, str(ready_write)],
                pass_fds=(ready_write,),
                env={**os.environ, **SINGLE_THREADED},
                start_new_session=True,
            )
        finally:
            os.close(ready_write)
        with os.fdopen(ready_read, "rb") as ready:
            ready_fd = ready.fileno()
            if not select.select([ready_fd], [], [], START_TIMEOUT_S)[0] or ready.readline().strip() != b"ready":
                self.process.kill()
                raise ForkServerError(f"the fork server did not start (exit status {self.process.wait()})")

    @classmethod
    def shared(cls) -> ForkServerProcess:
        """The app server's fork server, started if it is not running (blocks about a second then: call it
        from a thread)."""
        with cls._starting:
            if cls._instance is None or cls._instance.process.poll() is not None:
                cls._instance = cls()
            return cls._instance

    def stop(self) -> None:
        """Stop the fork server (its kernels exit with it) and remove its socket's directory."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(REPLY_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)
        if ForkServerProcess._instance is self:
            ForkServerProcess._instance = None

    def ask(self, request: dict) -> dict:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.settimeout(REPLY_TIMEOUT_S)
            connection.connect(self.socket_path)
            connection.sendall(json.dumps(request).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = connection.recv(65536)
                if not chunk:
                    break
                data += chunk
        reply = json.loads(data) if data else {"error": "no reply"}
        if "error" in reply:
            raise ForkServerError(reply["error"])
        return reply

    async def launch(self, argv: list[str], env: dict, cwd: str) -> int:
        reply = await asyncio.to_thread(self.ask, {"launch": {"argv": argv, "env": env, "cwd": cwd}})
        return int(reply["pid"])


def start_in_background() -> threading.Thread:
    """Start the app server's fork server in a thread (it imports while the app server does); a failure is
    printed and the first kernel tries again (or falls back to the usual launch)."""

    def start():
        try:
            ForkServerProcess.shared()
        except (ForkServerError, OSError) as error:
            print(f"digitglyph: the fork server did not start ({error}); kernels will try again", file=sys.stderr)

    thread = threading.Thread(target=start, name="fork server start", daemon=True)
    thread.start()
    return thread


class ForkedKernel:
    """What :class:`LocalProvisioner` uses of a ``Popen``, for a kernel the fork server forked (not our child)."""

    stdin = stdout = stderr = None

    def __init__(self, pid: int, server: ForkServerProcess):
        import psutil

        self.pid, self.server, self.returncode = pid, server, None
        self._process = psutil.Process(pid)

    def _alive(self) -> bool:
        import psutil

        try:
            return self._process.is_running() and self._process.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    def poll(self) -> int | None:
        if self.returncode is None and not self._alive():
            try:
                status = self.server.ask({"exit_status": self.pid})["exit_status"]
            except (ForkServerError, OSError):
                status = None
            self.returncode = status if status is not None else -signal.SIGKILL  # gone, and nobody saw how
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired([str(self.pid)], timeout)
            time.sleep(0.02)
        return self.returncode

    def send_signal(self, number: int) -> None:
        os.kill(self.pid, number)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class ForkingProvisioner(LocalProvisioner):
    """:class:`LocalProvisioner` whose kernels are forked by the app server's fork server (see the module)."""

    async def launch_kernel(self, cmd: list[str], **kwargs):
        env, cwd = kwargs.get("env"), str(kwargs.get("cwd") or Path.cwd())
        redirected = any(kwargs.get(name) is not None for name in ("stdin", "stdout", "stderr"))
        if not redirected and env is not None and kernel_arguments(cmd) is not None and _same_python(cmd[0]):
            try:
                server = await asyncio.to_thread(ForkServerProcess.shared)
                pid = await server.launch(list(cmd), {str(k): str(v) for k, v in env.items()}, cwd)
            except (ForkServerError, OSError, ValueError) as error:
                self.log.warning("digitglyph: forking the kernel failed (%s); starting it the usual way", error)
            else:
                self.process, self.pid, self.pgid, self.cwd = ForkedKernel(pid, server), pid, pid, cwd
                return self.connection_info
        return await super().launch_kernel(cmd, **kwargs)


def provisioner_installed() -> bool:
    """Whether jupyter_client can find :class:`ForkingProvisioner` (the package's entry point: ``pip install -e .``)."""
    from importlib.metadata import entry_points

    return PROVISIONER in {entry.name for entry in entry_points(group="jupyter_client.kernel_provisioners")}


def _same_python(executable: str) -> bool:
    """A kernel command's interpreter is this one, by its path (the fork server runs this interpreter)."""
    return os.path.abspath(executable) == os.path.abspath(sys.executable)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: python -m digitglyph.forkserver SOCKET_PATH READY_FD")
    serve(sys.argv[1], int(sys.argv[2]))
