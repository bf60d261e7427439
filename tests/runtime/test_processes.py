"""A process is signalled only while it is still the one that was started: never by a stale or foreign pid."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from batchpoint.runtime.processes import ProcessIdentity


def sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)


def test_the_process_that_was_started_is_killed(tmp_path: Path) -> None:
    process = sleeper()
    ProcessIdentity.of(process.pid).save(tmp_path / "pid")

    assert ProcessIdentity.load(tmp_path / "pid").kill_group()  # type: ignore[union-attr]
    assert process.wait(timeout=10) < 0


def test_a_pid_now_used_by_another_process_is_left_alone(tmp_path: Path) -> None:
    process = sleeper()
    try:
        identity = ProcessIdentity.of(process.pid)
        for stale in (replace(identity, started=identity.started - 5), replace(identity, host="elsewhere")):
            assert not stale.kill_group()
        assert process.poll() is None
    finally:
        process.kill()
        process.wait()


def test_an_ended_process_or_an_unreadable_file_is_nothing_to_kill(tmp_path: Path) -> None:
    process = sleeper()
    identity = ProcessIdentity.of(process.pid)
    process.kill()
    process.wait()
    (tmp_path / "old").write_text("12345")  # the bare pid an older version wrote

    assert not identity.kill_group()
    assert ProcessIdentity.load(tmp_path / "old") is None
    assert ProcessIdentity.load(tmp_path / "missing") is None
