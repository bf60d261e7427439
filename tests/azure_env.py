"""Run a program the way a user does after ``eval "$(batchpoint env)"``: in a shell whose only help is what that
command printed (no token, no certificate, no cloud settings of the test process)."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

from tests.server import Server, batchpoint_command


def clean_environment(home: Path) -> dict[str, str]:
    """A shell's environment with nothing that points at the server or trusts its certificate."""
    return {"PATH": os.environ["PATH"], "HOME": str(home), "LANG": "C.UTF-8"}


def env_command(server: Server, *options: str) -> str:
    """``batchpoint env`` for ``server``, as a shell command line."""
    return shlex.join([*batchpoint_command(), "env", *server.cli_options(), *options])


def run_in_env(
    server: Server,
    argv: list[str],
    cwd: Path,
    extra: dict[str, str] | None = None,
    env_options: tuple[str, ...] = (),
    timeout: float = 240,
) -> subprocess.CompletedProcess[str]:
    """``eval "$(batchpoint env ...)" && exec argv`` in ``cwd``, from a clean environment plus ``extra``."""
    shell = f'eval "$({env_command(server, *env_options)})" && exec {shlex.join(argv)}'
    environment = clean_environment(cwd) | (extra or {})
    return subprocess.run(
        ["bash", "-c", shell], cwd=cwd, env=environment, capture_output=True, text=True, timeout=timeout
    )
