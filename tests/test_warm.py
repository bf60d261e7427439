"""tests/warm.py, which the other tests start their servers and CLI commands through: a forked command reports
its exit as ``Popen`` would, is signalled by its own pidfd, and does not outlive a caller that goes away."""

from __future__ import annotations

import os
import select
import signal
import subprocess
from pathlib import Path

from tests.server import Server, free_port, wait_for_port
from tests.warm import Forked


def serve(tmp_path: Path) -> tuple[Forked, int]:
    assert Server.warm is not None
    port = free_port()
    with open(os.devnull, "rb") as stdin, open(tmp_path / "server.log", "ab") as log:
        stdio = (stdin.fileno(), log.fileno(), log.fileno())
        args = ["serve", "--http", "--port", str(port), "--home", str(tmp_path)]
        process = Server.warm.fork(args, dict(os.environ), str(tmp_path), stdio)
    wait_for_port(process, port, "server", str(tmp_path / "server.log"))
    return process, port


def test_exit_codes_come_back_as_popen_reports_them(tmp_path: Path) -> None:
    assert subprocess.run([*Server.warm.command(), "no-such-command"], capture_output=True).returncode == 2  # type: ignore[union-attr]
    process, _ = serve(tmp_path)
    assert process.poll() is None
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=10) == -signal.SIGKILL and process.poll() == -signal.SIGKILL
    process.send_signal(signal.SIGTERM)  # after the end: nothing to signal, no error


def test_a_command_whose_caller_goes_away_is_killed(tmp_path: Path) -> None:
    process, _ = serve(tmp_path)
    watcher = os.pidfd_open(process.pid)
    try:
        process._connection.close()  # as when the test process holding it dies
        assert select.select([watcher], [], [], 10)[0], "the server outlived its caller"
    finally:
        os.close(watcher)
