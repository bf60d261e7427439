"""``batchpoint`` commands and servers in real processes that skip the 2-3 s of imports each start pays.

A warm process imports what is slow to import (azure-ai-ml for the CLI, FastAPI, SQLAlchemy and the routes for
``batchpoint serve``) once, then serves requests over a Unix socket: each arrives with its argv, environment,
working directory and stdin/stdout/stderr (passed as file descriptors) and runs in a process forked for it, whose
pid goes back at once and whose exit code follows when it ends. That process is as real as one started with
``python -m batchpoint``: its own pid to signal (through a pidfd, so never a recycled one), its own stdio, and its
own children; the kernel re-parents its orphans as it would those of a process the test started.

The CLI's caller is a real process too: ``python tests/warm.py call SOCKET ARGS...`` (what the tests' ``az`` shim
and ``batchpoint(...)`` helpers run), so shell scripts, pipes, ``$(...)`` and exit codes behave as with
``python -m batchpoint``. What a warm process cannot show, the import itself (for instance azure-ai-ml reading
``AZUREML_CURRENT_CLOUD`` at import time, or how long ``batchpoint serve`` takes to start), stays covered by tests
that start ``python -m batchpoint`` cold.

This file runs as a script with ``-I -S`` (no site-packages) for ``call``: it imports the standard library only."""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import traceback
from pathlib import Path

MAX_REQUEST = 1 << 20
"""The most one read takes of a request (argv, environment, directory)."""
NUMBER = struct.Struct("!i")
"""A pid, then an exit code (negative: the signal that ended the process, as ``Popen.returncode``)."""
RUN_MODULES = ("typer._adapters",)
"""What every command imports once it runs: typer's parameter adapters (and with them pydantic)."""
CLI_MODULES = (
    "azure.ai.ml",
    "batchpoint.cli",
    *RUN_MODULES,
    "IPython",
    "jmespath",
    "cryptography.hazmat.backends.openssl",
)
"""The CLI's imports, and those its commands make when they run: IPython (each MLClient imports it to ask whether it
runs in a notebook), jmespath (``--query``), cryptography's OpenSSL backend (TLS). A third of the CPU of an ``az ml``
command was these imports."""
SERVER_MODULES = (
    "batchpoint.cli",
    "batchpoint.app.server",
    "batchpoint.store.sql",
    "uvicorn.protocols.http.h11_impl",
    *RUN_MODULES,
)
"""``batchpoint serve``'s imports, and those it makes once running (the SQL store, uvicorn's HTTP protocol)."""


def serve(path: str, modules: list[str]) -> None:
    """Import ``modules``, listen on ``path``, and fork a process per request; runs until killed."""
    os.environ.pop("AZUREML_CURRENT_CLOUD", None)  # as batchpoint.cli.az_ml.sdk.require_sdk does before the import
    for module in modules:
        importlib.import_module(module)
    assert threading.active_count() == 1, "forking needs a single-threaded parent"
    gc.collect()
    gc.freeze()  # what is imported stays shared with the forked processes instead of being copied by the collector
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the per-request processes are reaped by the kernel
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    print("ready", flush=True)
    while True:
        connection, _ = listener.accept()
        if os.fork() == 0:
            listener.close()
            _answer(connection)
        connection.close()


def _answer(connection: socket.socket) -> None:
    """In the process forked for one request: run it in a child; send back the child's pid with a pidfd of it (opened
    before the child can be reaped, so never a recycled pid's), then its exit code. A caller that goes away (its
    side of the connection closed) takes the child with it."""
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        message, fds, _, _ = socket.recv_fds(connection, MAX_REQUEST, 3)
        while chunk := connection.recv(MAX_REQUEST):  # a stream may deliver the request in parts; the caller shuts
            message += chunk  # its side down once it is all sent
        request = json.loads(message)
        child = os.fork()
        if child == 0:
            connection.close()
            _run(request, fds)
        for fd in fds:
            os.close(fd)
        pidfd = os.pidfd_open(child)
        socket.send_fds(connection, [NUMBER.pack(child)], [pidfd])
        _outlive_caller_never(connection, pidfd)
        _, status = os.waitpid(child, 0)
        connection.sendall(NUMBER.pack(os.waitstatus_to_exitcode(status)))
    except BaseException:  # noqa: BLE001 - the caller sees the connection close; the warm process's log says why
        traceback.print_exc()
    finally:
        os._exit(0)


def _outlive_caller_never(connection: socket.socket, pidfd: int) -> None:
    """Returns when the child has exited; kills it first if the caller closes its side of the connection (its
    shutdown for writing shows as readable, not as a hang-up, so only the hang-up is watched)."""
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    poller.register(connection, 0)  # POLLHUP and POLLERR are always reported
    while True:
        for fd, _ in poller.poll():
            if fd == pidfd:
                return
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            poller.unregister(connection)


def _run(request: dict, fds: list[int]) -> None:
    """Become the command: its stdio, environment, directory and argv, then batchpoint's own entry point."""
    code = 0
    try:
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        sys.argv = ["batchpoint", *request["args"]]
        from batchpoint.cli import app

        app(prog_name="batchpoint")
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except BaseException:  # noqa: BLE001 - as the interpreter would: traceback on stderr, exit 1
        traceback.print_exc()
        code = 1
    with contextlib.suppress(OSError):  # stdout may be a pipe nobody reads any more
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


class Forked:
    """A process a warm one forked: what tests use of ``subprocess.Popen`` (``pid``, ``poll``, ``wait``,
    ``send_signal``, ``kill``, ``returncode``)."""

    def __init__(self, connection: socket.socket, pid: int, pidfd: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._connection = connection
        self._pidfd = pidfd

    def poll(self) -> int | None:
        try:
            return self.wait(0)
        except subprocess.TimeoutExpired:
            return None

    def wait(self, timeout: float | None = None) -> int:
        """The exit code, as the process that forked it saw it; if that process died first, ``-SIGKILL`` once the
        pidfd shows the command itself has exited."""
        if self.returncode is None:
            if not select.select([self._connection], [], [], timeout)[0]:
                raise subprocess.TimeoutExpired(f"process {self.pid}", timeout or 0)
            exit_code = _receive_number(self._connection)
            if exit_code is None and not select.select([self._pidfd], [], [], timeout)[0]:
                raise subprocess.TimeoutExpired(f"process {self.pid}", timeout or 0)
            self.returncode = -signal.SIGKILL if exit_code is None else exit_code
            self._connection.close()
            os.close(self._pidfd)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            try:
                signal.pidfd_send_signal(self._pidfd, sig)
            except ProcessLookupError:
                pass  # it has exited; wait() tells how

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def fork(path: Path | str, args: list[str], env: dict[str, str], cwd: str, stdio: tuple[int, int, int]) -> Forked:
    """Run ``batchpoint ARGS`` in a process forked by the warm process at ``path``."""
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(str(path))
        request = {"args": args, "env": env, "cwd": cwd}
        socket.send_fds(connection, [json.dumps(request).encode()], list(stdio))
        connection.shutdown(socket.SHUT_WR)
        message, fds, _, _ = socket.recv_fds(connection, NUMBER.size, 1)
        if len(message) != NUMBER.size or len(fds) != 1:
            raise RuntimeError(f"the warm process at {path} did not start the command (see its log there)")
    except BaseException:
        connection.close()
        raise
    return Forked(connection, NUMBER.unpack(message)[0], fds[0])


def _receive_number(connection: socket.socket) -> int | None:
    """One NUMBER, or None if the connection closed before it (the process that forked the command was killed)."""
    answer = b""
    while len(answer) < NUMBER.size:
        chunk = connection.recv(NUMBER.size - len(answer))
        if not chunk:
            return None
        answer += chunk
    return NUMBER.unpack(answer)[0]


def call(path: str, args: list[str]) -> int:
    """Run ``batchpoint ARGS`` in the warm process at ``path`` with this process's stdio, environment and cwd."""
    exit_code = fork(path, args, dict(os.environ), os.getcwd(), (0, 1, 2)).wait()
    return 128 - exit_code if exit_code < 0 else exit_code  # a shell's code for a process a signal ended


class Warm:
    """A warm process that imports ``modules``, started at its first ``fork()`` and stopped by ``stop()``, with every
    process it forked (one a test left running, too): by its process group, whose id is its own."""

    def __init__(self, folder: Path, modules: tuple[str, ...]) -> None:
        self.socket = folder / "warm.sock"
        self.log = folder / "warm.log"
        self._modules = modules
        self._process: subprocess.Popen[str] | None = None
        self._starting = threading.Lock()  # tests start servers from several threads at once

    def fork(self, args: list[str], env: dict[str, str], cwd: str, stdio: tuple[int, int, int]) -> Forked:
        self.start()
        return fork(self.socket, args, env, cwd, stdio)

    def start(self) -> Warm:
        """Starts the warm process unless it is running (again, if it died: a test may have killed it)."""
        with self._starting:
            if self._process is not None and self._process.poll() is not None:
                self.socket.unlink(missing_ok=True)
                self._process = None
            if self._process is None:
                self._process = self._launch()
        return self

    def _launch(self) -> subprocess.Popen[str]:
        command = [sys.executable, __file__, "serve", str(self.socket), *self._modules]
        with open(self.log, "ab") as log:
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True)
        assert process.stdout is not None
        with process.stdout:
            if process.stdout.readline().strip() == "ready":
                return process
        process.kill()
        process.wait()
        raise RuntimeError(f"the warm process did not start; see {self.log}")

    def command(self) -> list[str]:
        """The argv prefix that runs a batchpoint command through this warm process (the caller needs nothing but
        the standard library: ``-I -S`` keeps its own start at a few milliseconds)."""
        self.start()
        return [sys.executable, "-I", "-S", __file__, "call", str(self.socket)]

    def stop(self) -> None:
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError):  # the group is gone already
                os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()
            self._process = None


if __name__ == "__main__":
    verb, socket_path, *rest = sys.argv[1:]
    if verb == "serve":
        if sys.path[0] == os.path.dirname(os.path.abspath(__file__)):
            del sys.path[0]  # tests/, put first for this script: commands must not import its modules by bare name
        serve(socket_path, rest)
    else:
        sys.exit(call(socket_path, rest))
