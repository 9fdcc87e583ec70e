"""The app's kernels forked from one warm process (issue 15: ``digitglyph/forkserver.py``).

Real kernels through jupyter_client, as the app's server starts them: the kernel is the fork server's child, has
the app's modules loaded before it imports anything, runs in the working directory and environment it was given,
has ipywidgets' comm targets, can be interrupted, shuts down, and exits when the fork server does.  What the fork
server does not expect it refuses; what the provisioner cannot fork it launches the usual way.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time

import psutil
import pytest
from conftest import run
from jupyter_client.manager import AsyncKernelManager
from jupyter_client.provisioning.factory import KernelProvisionerFactory

from digitglyph.forkserver import (
    LAUNCHER,
    PRELOAD,
    ForkingProvisioner,
    ForkServerError,
    ForkServerProcess,
    check_launch,
    kernel_arguments,
)

TIMEOUT_S = 60


@pytest.fixture()
def forking(monkeypatch):
    """Kernels started by jupyter_client in this process come from a fork server of their own (stopped after)."""
    monkeypatch.setattr(KernelProvisionerFactory.instance(), "default_provisioner_name", "digitglyph-forking")
    yield
    if ForkServerProcess._instance is not None:
        ForkServerProcess._instance.stop()


async def started_kernel(**options):
    manager = AsyncKernelManager(kernel_name="digitglyph")
    await manager.start_kernel(**options)
    client = manager.client()
    client.start_channels()
    await client.wait_for_ready(timeout=TIMEOUT_S)
    return manager, client


async def run_code(client, code: str) -> dict:
    """Execute ``code``; its reply's content, with the text it printed as ``stdout``."""
    printed = []

    def output(message):
        if message["msg_type"] == "stream":
            printed.append(message["content"]["text"])

    reply = await client.execute_interactive(code, timeout=TIMEOUT_S, output_hook=output)
    return {**reply["content"], "stdout": "".join(printed)}


async def wait_until_gone(pid: int) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, f"process {pid} still runs"
        await asyncio.sleep(0.1)


# -- what the fork server accepts -----------------------------------------------------------------------------


def test_only_an_ipykernel_launcher_command_is_a_kernel_command():
    python = sys.executable
    assert kernel_arguments([python, "-m", LAUNCHER, "-f", "k.json"]) == ["-f", "k.json"]
    assert kernel_arguments([python, "-Xfrozen_modules=off", "-m", LAUNCHER, "-f", "k.json"]) == ["-f", "k.json"]
    for refused in (
        [python, "-c", "import os", "-m", LAUNCHER],  # code before the launcher
        [python, "-m", "http.server"],
        [python, "-m", LAUNCHER, "-f"][:2],
        "python -m ipykernel_launcher",
        [python, "-m", LAUNCHER, 3],
    ):
        assert kernel_arguments(refused) is None


def test_a_launch_request_is_checked_field_by_field(tmp_path):
    good = {"argv": [sys.executable, "-m", LAUNCHER, "-f", "k.json"], "env": {"A": "1"}, "cwd": str(tmp_path)}
    assert check_launch(good) == (["-f", "k.json"], {"A": "1"}, str(tmp_path))
    for bad, reason in (
        ({**good, "extra": 1}, "exactly argv, env and cwd"),
        ({**good, "argv": [sys.executable, "-m", "os"]}, "not a '-m ipykernel_launcher' kernel command"),
        ({**good, "env": {"A": 1}}, "env must map names to strings"),
        ({**good, "cwd": str(tmp_path / "missing")}, "is not a directory"),
    ):
        with pytest.raises(ValueError, match=reason):
            check_launch(bad)


def test_the_fork_server_refuses_what_it_does_not_expect_and_forks_nothing(forking):
    server = ForkServerProcess.shared()
    before = psutil.Process(server.process.pid).children()
    for request in (
        {"launch": {"argv": [sys.executable, "-c", "print(1)"], "env": {}, "cwd": "/"}},
        {"run": "anything"},
        {"exit_status": "1"},
    ):
        with pytest.raises(ForkServerError):
            server.ask(request)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:  # not JSON at all
        connection.connect(server.socket_path)
        connection.sendall(b"\x00\x01 not json\n")
        assert "error" in json.loads(connection.makefile().readline())
    assert psutil.Process(server.process.pid).children() == before
    assert oct(os.stat(server.directory).st_mode & 0o777) == "0o700"  # only this user reaches the socket


# -- a forked kernel ----------------------------------------------------------------------------------------


def test_a_forked_kernel_is_a_working_kernel_with_the_app_already_loaded(forking, tmp_path):
    async def scenario():
        manager, client = await started_kernel(cwd=str(tmp_path), env={**os.environ, "DIGITGLYPH_PROBE": "here"})
        try:
            assert isinstance(manager.provisioner, ForkingProvisioner)
            kernel = psutil.Process(manager.provisioner.pid)
            assert kernel.parent().pid == ForkServerProcess.shared().process.pid
            reply = await run_code(
                client,
                "import gc, os, sys; print(sorted(m for m in " + repr(list(PRELOAD)) + " if m in sys.modules)); "
                "print(os.getcwd()); print(os.environ['DIGITGLYPH_PROBE']); print(gc.get_freeze_count())",
            )
            assert reply["status"] == "ok"
            loaded, cwd, probe, frozen = reply["stdout"].splitlines()
            assert loaded == str(sorted(PRELOAD))  # forked with everything loaded: none of it imported now
            assert (cwd, probe) == (str(tmp_path), "here")
            assert int(frozen) > 10_000  # the preloaded objects, out of the garbage collector's sight (shared memory)
            # widgets reach the front end only if the kernel registered ipywidgets' comm targets
            reply = await run_code(
                client,
                "import comm; print(sorted(t for t in comm.get_comm_manager().targets if 'widget' in t))",
            )
            assert reply["stdout"].strip() == "['jupyter.widget', 'jupyter.widget.control']"
            # an interrupt reaches the kernel
            execution = asyncio.ensure_future(run_code(client, "import time; time.sleep(30)"))
            await asyncio.sleep(1.0)
            await manager.interrupt_kernel()
            reply = await asyncio.wait_for(execution, TIMEOUT_S)
            assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt"
        finally:
            client.stop_channels()
            await manager.shutdown_kernel()
        await wait_until_gone(kernel.pid)
        assert not await manager.is_alive()

    run(scenario())


def test_forked_kernels_exit_with_the_fork_server(forking):
    async def scenario():
        kernels = [await started_kernel() for _ in range(2)]
        pids = [manager.provisioner.pid for manager, _ in kernels]
        os.kill(ForkServerProcess.shared().process.pid, signal.SIGKILL)
        for pid in pids:
            await wait_until_gone(pid)  # ipykernel's parent poller: nothing outlives the app
        for manager, client in kernels:
            client.stop_channels()
            assert await manager.provisioner.poll() is not None
            await manager.shutdown_kernel(now=True)

    run(scenario())


def test_a_fork_server_that_stops_takes_its_socket_with_it(forking):
    server = ForkServerProcess.shared()
    assert os.path.exists(server.socket_path)
    server.process.terminate()
    server.process.wait(TIMEOUT_S)
    assert not os.path.exists(server.directory)


def test_without_a_fork_server_the_kernel_starts_the_usual_way(forking, monkeypatch, caplog):
    def broken():
        raise ForkServerError("the fork server did not start (exit status 1)")

    monkeypatch.setattr(ForkServerProcess, "shared", broken)

    async def scenario():
        manager, client = await started_kernel()
        try:
            assert psutil.Process(manager.provisioner.pid).parent().pid == os.getpid()  # launched by us, not forked
            assert (await run_code(client, "print(6 * 7)"))["stdout"].strip() == "42"
        finally:
            client.stop_channels()
            await manager.shutdown_kernel()

    run(scenario())
    assert "forking the kernel failed (the fork server did not start" in caplog.text
