"""``batchpoint`` commands in real processes that skip the 2-3 s of importing azure-ai-ml and batchpoint each time.

A warm process imports the CLI once, then serves commands over a Unix socket: each command arrives with its
argv, environment, working directory and the caller's stdin/stdout/stderr (passed as file descriptors), runs in a
process forked for it, and its exit code goes back. The caller is a real process too: ``python
tests/cli/warm.py call SOCKET ARGS...`` (what the tests' ``az`` shim and ``batchpoint(...)`` helpers run), so shell
scripts, pipes, ``$(...)`` and exit codes behave exactly as with ``python -m batchpoint``.

What a warm process cannot show, the import itself (for instance azure-ai-ml reading ``AZUREML_CURRENT_CLOUD``
at import time), stays covered by tests that start ``python -m batchpoint`` cold."""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MAX_REQUEST = 1 << 20
"""The most one read takes of a command's request (argv, environment, directory)."""
EXIT = struct.Struct("!i")


def serve(path: str) -> None:
    """Import the CLI, listen on ``path``, and fork a process per command; runs until killed."""
    os.environ.pop("AZUREML_CURRENT_CLOUD", None)  # as batchpoint.cli.sdk.require_sdk does before the import
    import azure.ai.ml  # noqa: F401 - the import this process exists to pay once
    import batchpoint.cli  # noqa: F401

    assert threading.active_count() == 1, "forking needs a single-threaded parent"
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the per-command processes are reaped by the kernel
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
    """In the process forked for one connection: run the command in a child and send back its exit code."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    message, fds, _, _ = socket.recv_fds(connection, MAX_REQUEST, 3)
    while chunk := connection.recv(MAX_REQUEST):  # a stream may deliver the request in parts; the caller shuts
        message += chunk  # its side down once it is all sent
    request = json.loads(message)
    child = os.fork()
    if child == 0:
        _run(request, fds)
    for fd in fds:
        os.close(fd)
    _, status = os.waitpid(child, 0)
    connection.sendall(EXIT.pack(os.waitstatus_to_exitcode(status)))
    os._exit(0)


def _run(request: dict, fds: list[int]) -> None:
    """Become the command: its stdio, environment, directory and argv, then batchpoint's own entry point."""
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    sys.argv = ["batchpoint", *request["args"]]
    from batchpoint.cli import app

    code = 0
    try:
        app(prog_name="batchpoint")
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except BaseException:  # noqa: BLE001 - as the interpreter would: traceback on stderr, exit 1
        import traceback

        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def call(path: str, args: list[str]) -> int:
    """Run ``batchpoint ARGS`` in the warm process at ``path`` with this process's stdio, environment and cwd."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.connect(path)
        request = {"args": args, "env": dict(os.environ), "cwd": os.getcwd()}
        socket.send_fds(connection, [json.dumps(request).encode()], [0, 1, 2])
        connection.shutdown(socket.SHUT_WR)
        answer = b""
        while len(answer) < EXIT.size:
            chunk = connection.recv(EXIT.size - len(answer))
            if not chunk:
                return 1  # the command's process died before answering
            answer += chunk
    return EXIT.unpack(answer)[0]


def command(path: Path) -> list[str]:
    """The argv prefix that runs a batchpoint command through the warm process at ``path`` (the caller needs
    nothing but the standard library: ``-I -S`` keeps its own start at a few milliseconds)."""
    return [sys.executable, "-I", "-S", __file__, "call", str(path)]


@contextmanager
def warm_cli(folder: Path) -> Iterator[Path]:
    """A warm process listening in ``folder``; yields its socket's path. At the end it is stopped with every command
    it forked (a command left running by a test that timed out too), by its process group, whose id is its own."""
    path = folder / "cli.sock"
    process = subprocess.Popen(
        [sys.executable, __file__, "serve", str(path)], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        yield path
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


if __name__ == "__main__":
    verb, socket_path, *rest = sys.argv[1:]
    if verb == "serve":
        serve(socket_path)
    else:
        sys.exit(call(socket_path, rest))
