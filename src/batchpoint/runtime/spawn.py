"""The one place worker processes start, whoever starts them: the local executor on this machine, and each Ray actor
on its node (an actor runs the worker as its child, so that the worker can run the environment's own interpreter,
which Ray itself may not run on). `start_worker` starts a worker; `command_line` any other sandboxed command (a
pipeline step, an environment build). Each enters its sandbox (`sandbox/`, docs/security.md) before anything of its
environment runs. docs/runtime.md ("How a worker starts") describes the path; a worker may also be forked from a
warm template of its environment (`templates.py`), and then boots the same way (`boot_worker`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol

import psutil

from batchpoint.runtime.protocol import BOOT, encode
from batchpoint.runtime.sandbox.policy import BOOT_VARIABLES, base_interpreter, virtual_environment
from batchpoint.runtime.worker import children_of

BOOT_SCRIPT = Path(__file__).with_name("sandbox") / "boot.py"
REPLY_PIPE_BYTES = 1 << 20
"""The size of a worker's reply pipe: Linux's default `pipe-max-size`, which any user may ask for."""


class WorkerProcess(Protocol):
    """What the executors use of a worker process: a started one's `subprocess.Popen`, or a forked one's
    `templates.ForkedProcess`."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None:
        """Set once the process was reaped (its pid may then be another's)."""

    def wait(self, timeout: float | None = None) -> int: ...

    def poll(self) -> int | None: ...


@dataclass(frozen=True)
class StartedWorker:
    """A worker process and its ends of the two pipes: commands go to it, replies come from it."""

    process: WorkerProcess
    commands: Connection
    replies: Connection
    parent_pid: int = field(default_factory=os.getpid)
    """The worker's parent, which it must not outlive: this server, or the template it was forked from."""
    handle: psutil.Process | None = None
    """The worker as psutil knows it from its start (its pid and start time): signalled only while its pid is still
    its own (a forked worker is reaped by its template, which says so a moment later)."""

    def close(self) -> None:
        self.commands.close()
        self.replies.close()

    def kill(self) -> int:
        """Kill the worker and what it started (its session, and its descendants in sessions of their own, which
        it adopts when orphaned: `worker.die_with_parent`), and reap it; returns its exit code. Its descendants are
        looked for only while it is not known to be reaped and its pid is still its own (`handle`), and stopped as
        they are found, so that none forks past the search."""
        handle = self.handle if self.process.returncode is None else None
        descendants = _stopped_descendants(handle) if handle is not None else []
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)  # its group lives on while a member does
        for process in descendants:
            with contextlib.suppress(psutil.Error):
                process.kill()
        return self.process.wait()


MAX_SEARCHES = 100
"""A bound on the searches for a worker's descendants (each stops those it finds; one forked meanwhile is found by
the next)."""


def _stopped_descendants(root: psutil.Process) -> list[psutil.Process]:
    """The processes under `root` (none once it has exited: they went to another parent), `root` and each of them
    stopped (SIGSTOP) as it is found, each known by its start time, so that a pid used again meanwhile is not
    signalled. From each one's `children` files, not a scan of every process (2 ms with 100 of them) at each
    worker's end."""
    try:
        root.suspend()
    except psutil.Error:  # gone, or its pid is another process's now
        return []
    found: dict[int, psutil.Process] = {}
    for _ in range(MAX_SEARCHES):
        new = [process for process in _descendants(root.pid) if process.pid not in found]
        if not new:
            break
        for process in new:
            with contextlib.suppress(psutil.Error):
                process.suspend()
            found[process.pid] = process
    return list(found.values())


def _descendants(pid: int) -> list[psutil.Process]:
    found: list[psutil.Process] = []
    parents = [pid]
    while parents:
        children = [child for parent in parents for child in children_of(parent)]
        found += [process for child in children if (process := handle_of(child)) is not None]
        parents = children
    return found


def handle_of(pid: int) -> psutil.Process | None:
    """psutil's handle on process `pid`, which knows it by its start time (None: it has exited already)."""
    try:
        return psutil.Process(pid)
    except psutil.Error:
        return None


def start_worker(
    *,
    python: Path,
    home: Path,
    policy: dict[str, Any] | None,
    environment: Mapping[str, str],
    stdout: Path,
    stderr: Path,
) -> StartedWorker:
    """A worker of `python`'s environment in its own session (so that stopping it stops the script's own children
    too), working in `home/cwd`, its output appended to `stdout` and `stderr` (they may be one file), entering
    `policy` (None: unsandboxed) before anything of the environment runs. It then waits for its `config`."""
    command_read, command_write = os.pipe()
    reply_read, reply_write = reply_pipe()
    try:
        fds = (command_read, reply_write)
        process = start_boot(python, ["worker", *map(str, fds)], fds, home / "cwd", environment, stdout, stderr)
    except BaseException:
        for fd in (command_write, reply_read):
            os.close(fd)
        raise
    finally:
        os.close(command_read)
        os.close(reply_write)
    commands, replies = Connection(command_write, readable=False), Connection(reply_read, writable=False)
    started = StartedWorker(process, commands, replies, handle=handle_of(process.pid))
    boot_worker(started, python, policy, environment)
    return started


def reply_pipe() -> tuple[int, int]:
    """The pipe a worker answers on, large enough for a mini-batch's rows (10 files of 1,000 rows: 220 KB), so that
    the worker writes them at once and goes on to its queued mini-batch; with the default 64 KB it waited for the
    server to read each 64 KB, a wake-up of the server each, on a busy machine its longest wait (issue 26)."""
    read, write = os.pipe()
    with contextlib.suppress(OSError):  # above the system's pipe-max-size or its user's pipe pages: as it is
        fcntl.fcntl(write, fcntl.F_SETPIPE_SZ, REPLY_PIPE_BYTES)
    return read, write


def start_boot(
    python: Path,
    arguments: list[str],
    fds: tuple[int, ...],
    cwd: Path,
    environment: Mapping[str, str],
    stdout: Path,
    stderr: Path,
) -> subprocess.Popen[bytes]:
    """`boot.py ARGUMENTS` run by `python`'s base interpreter with `-I -S`, in its own session, keeping `fds`, with
    only the variables it needs until it is in its sandbox (`BOOT_VARIABLES`), output appended to `stdout` and
    `stderr`."""
    boot = [str(base_interpreter(python)), "-I", "-S", str(BOOT_SCRIPT), *arguments]
    with open(stdout, "ab") as out, open(stderr, "ab") as err:
        return subprocess.Popen(
            boot,
            pass_fds=fds,
            cwd=cwd,
            env=boot_environment(environment),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )


def boot_worker(
    started: StartedWorker, python: Path, policy: dict[str, Any] | None, environment: Mapping[str, str]
) -> None:
    """Send a worker, started or forked, what its boot needs: its sandbox, its environment, its virtual
    environment. Nothing else of the job reaches it before it has entered the sandbox."""
    venv = virtual_environment(python)
    with contextlib.suppress(OSError):  # a worker that died at once says so through its replies
        started.commands.send_bytes(encode(BOOT, policy=policy, environment=dict(environment), venv=str(venv or "")))


def command_line(
    command: list[str], file: Path, policy: dict[str, Any] | None, environment: Mapping[str, str]
) -> tuple[list[str], dict[str, str]]:
    """`command` run in the sandbox `policy` with `environment`, and the environment to start that with: the
    policy goes to `file` (the server's own, outside what the command may read)."""
    descriptor = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump({"policy": policy, "environment": dict(environment)}, handle)
    boot = [sys.executable, "-I", "-S", str(BOOT_SCRIPT), "exec", str(file), "--", *command]
    return boot, boot_environment(environment)


def boot_environment(environment: Mapping[str, str]) -> dict[str, str]:
    return {name: environment[name] for name in BOOT_VARIABLES if name in environment}


def private_temp_root() -> Path:
    """The temporary folder of this user where sandboxed processes' private folders go: others may cross it (a
    worker user, to its own folder) but not list or write it."""
    root = Path(tempfile.gettempdir()) / f"batchpoint-{os.geteuid()}"
    root.mkdir(mode=0o711, exist_ok=True)
    info = os.lstat(root)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o066:
        raise RuntimeError(f"{root} must be a folder that only its owner can list and write.")
    os.chmod(root, 0o711)
    return root


def describe_exit(returncode: int) -> str:
    """How a worker ended, for messages: `exited with code 1`, `was killed by signal SIGKILL (...)`."""
    if returncode >= 0:
        return f"exited with code {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = str(-returncode)
    hint = " (as the out-of-memory killer does)" if -returncode == signal.SIGKILL else ""
    return f"was killed by signal {name}{hint}"


OUTPUT_TAIL_LINES = 20
OUTPUT_TAIL_CHARACTERS = 4000


def output_tail(path: Path, name: str) -> str:
    """The last lines a worker that ended wrote to its output file `path` (named `name` in the job's logs), as a
    paragraph for the message saying why it ended: what a script prints before `sys.exit` or `os._exit`, or a
    failure of the worker's own start, is often the only word on it. Empty when it wrote nothing."""
    try:
        with path.open("rb") as file:
            size = file.seek(0, os.SEEK_END)
            file.seek(max(0, size - 4 * OUTPUT_TAIL_CHARACTERS))
            data = file.read()
    except OSError:
        return ""
    lines = data.decode("utf-8", errors="replace").splitlines()[1 if size > len(data) else 0 :]
    tail = "\n".join(lines[-OUTPUT_TAIL_LINES:]).strip("\n")[-OUTPUT_TAIL_CHARACTERS:]
    return f"The end of what it wrote to {name}:\n{tail}" if tail.strip() else ""


def why_it_ended(who: str, returncode: int, when: str, crash: str, output: Path, output_name: str) -> str:
    """The error of a worker that is gone: how it ended (`who` exited ... `when`), the Python stacks of a crash
    (`crash`, what faulthandler wrote) and the end of what it wrote to `output` (`output_tail`)."""
    explained = [crash, output_tail(output, output_name)]
    return "\n".join([f"{who} {describe_exit(returncode)} {when}.", *filter(None, explained)])


def read_text(path: Path) -> str:
    """A worker's file (its crash traceback, say); empty when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
