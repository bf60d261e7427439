"""``make run``, the README's first command, starts a server on a fresh machine: as root too, where the workers'
default user (nobody) can reach neither the data directory under /root nor pyenv's Python."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx

from tests.ports import free_port

REPO = Path(__file__).parent.parent


def test_make_run_starts_a_server_that_answers(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "BATCHPOINT_HOME": str(tmp_path / "home")}
    process = subprocess.Popen(
        ["make", "--no-print-directory", "run", f"ARGS=--port {port} --http"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        printed = list(_until_listening(process.stdout))
        assert "is listening on" in printed[-1], "".join(printed)
        answered = httpx.get(f"http://127.0.0.1:{port}/metadata/endpoints", timeout=60)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    assert answered.status_code == 200


def _until_listening(output: IO[str]) -> Iterator[str]:
    """The lines make and the server print, up to the banner's first line (or the end, when it failed)."""
    for line in output:
        yield line
        if "is listening on" in line:
            return
