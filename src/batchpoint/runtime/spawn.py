"""How a worker process starts: `python -m batchpoint.runtime.worker READ_FD WRITE_FD` with its two pipes.

The one place worker processes start, whoever starts them: the local executor on this machine, and each Ray actor
on its node (an actor runs the worker as its child, so that the worker can run the environment's own interpreter,
which Ray itself may not run on). A wrapper around `start_worker` (a sandbox, say) therefore applies to every
worker of every executor.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import stat
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

from batchpoint.runtime.environments.cache import activation


@dataclass(frozen=True)
class StartedWorker:
    """A worker process and its ends of the two pipes: commands go to it, replies come from it."""

    process: subprocess.Popen[bytes]
    commands: Connection
    replies: Connection

    def close(self) -> None:
        self.commands.close()
        self.replies.close()


def start_worker(python: str, environment: Mapping[str, str], cwd: Path, stdout: Path, stderr: Path) -> StartedWorker:
    """Start a worker with `python` in its own session (so that stopping it stops the script's own children too),
    its output appended to `stdout` and `stderr` (they may be one file). The worker waits for its `config`."""
    command_read, command_write = os.pipe()
    reply_read, reply_write = os.pipe()
    try:
        with open(stdout, "ab") as out, open(stderr, "ab") as err:
            process = subprocess.Popen(
                [python, "-m", "batchpoint.runtime.worker", str(command_read), str(reply_write)],
                pass_fds=(command_read, reply_write),
                cwd=cwd,
                env=dict(environment),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
    except BaseException:
        for fd in (command_write, reply_read):
            os.close(fd)
        raise
    finally:
        os.close(command_read)
        os.close(reply_write)
    return StartedWorker(process, Connection(command_write, readable=False), Connection(reply_read, writable=False))


def worker_environment(
    base: Mapping[str, str],
    unset: Sequence[str],
    variables: Mapping[str, str],
    output_dir: Path,
    model_dir: Path | None,
    environment_python: Path | None,
) -> dict[str, str]:
    """A worker's variables: `base` (the starting process's) less `unset`, then the job's `variables`, then the two
    the runtime defines; with an `environment_python` (a virtual environment's), that environment activated."""
    inherited = {name: value for name, value in base.items() if name not in unset}
    environment = {**inherited, **variables, "AZUREML_BI_OUTPUT_PATH": str(output_dir.absolute())}
    if model_dir is None:
        environment.pop("AZUREML_MODEL_DIR", None)
    else:
        environment["AZUREML_MODEL_DIR"] = str(model_dir.absolute())
    if environment_python is not None:
        environment.update(_virtual_environment(environment_python))
    return environment


def _virtual_environment(python: Path) -> dict[str, str]:
    """Variables of a deployment's own environment: activated, and the runtime importable through a folder that
    holds nothing but the `batchpoint` package (so none of the starting process's packages leak in)."""
    return {
        **activation(python),
        "PYTHONPATH": str(_runtime_import_root()),
        "PYTHONNOUSERSITE": "1",
    }


def _runtime_import_root() -> Path:
    package = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256(str(package).encode()).hexdigest()[:16]
    root = Path(tempfile.gettempdir()) / f"batchpoint-runtime-{os.getuid()}-{digest}"
    link = root / "batchpoint"
    if not link.is_symlink():
        root.mkdir(exist_ok=True)
        with contextlib.suppress(FileExistsError):
            link.symlink_to(package, target_is_directory=True)
    return root


def private_temp_root() -> Path:
    """The temporary folder of this user where workers' private folders go: only its owner may list and write it
    (others may at most cross it)."""
    root = Path(tempfile.gettempdir()) / f"batchpoint-{os.geteuid()}"
    root.mkdir(mode=0o700, exist_ok=True)
    info = os.lstat(root)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o066:
        raise RuntimeError(f"{root} must be a folder that only its owner can list and write.")
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


def read_text(path: Path) -> str:
    """A worker's file (its crash traceback, say); empty when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
