"""tests/warm.py, which the other tests start their servers and CLI commands through: a forked command reports
its exit as ``Popen`` would, is signalled by its own pidfd, and does not outlive a caller that goes away."""

from __future__ import annotations

import os
import select
import signal
import subprocess
from pathlib import Path

from tests.server import Server, batchpoint_command
from tests.warm import Forked


def forked_server(home: Path) -> Forked:
    process = Server(home=home).start().process
    assert isinstance(process, Forked)
    return process


def test_exit_codes_come_back_as_popen_reports_them(tmp_path: Path) -> None:
    assert subprocess.run([*batchpoint_command(), "no-such-command"], capture_output=True).returncode == 2
    process = forked_server(tmp_path)
    assert process.poll() is None
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=10) == -signal.SIGKILL and process.poll() == -signal.SIGKILL
    process.send_signal(signal.SIGTERM)  # after the end: nothing to signal, no error


def test_a_command_whose_caller_goes_away_is_killed(tmp_path: Path) -> None:
    process = forked_server(tmp_path)
    watcher = os.pidfd_open(process.pid)
    try:
        process._connection.close()  # as when the test process holding it dies
        assert select.select([watcher], [], [], 10)[0], "the server outlived its caller"
    finally:
        os.close(watcher)
