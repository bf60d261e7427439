"""How workers start (runtime/spawn.py): a worker's reply pipe holds a mini-batch's rows, so that the worker writes
them at once, whether the server reads them now or later."""

from __future__ import annotations

import fcntl
import os
import signal
import sys
from pathlib import Path

from batchpoint.runtime.spawn import REPLY_PIPE_BYTES, reply_pipe, start_worker

ROWS = b"part-00042.csv,1,0\n" * 12_000
"""A tabular mini-batch's rows: 10 files of 1,000 rows (about 220 KB)."""


def test_a_mini_batchs_rows_fit_in_the_reply_pipe_with_no_reader() -> None:
    read, write = reply_pipe()
    try:
        os.set_blocking(write, False)
        assert os.write(write, ROWS) == len(ROWS)  # a pipe of Linux's default 64 KB raises BlockingIOError
    finally:
        os.close(read)
        os.close(write)


def test_a_started_worker_answers_on_such_a_pipe(tmp_path: Path) -> None:
    (tmp_path / "cwd").mkdir()
    started = start_worker(
        python=Path(sys.executable),
        home=tmp_path,
        policy=None,
        environment={"PATH": os.environ["PATH"]},
        stdout=tmp_path / "out.txt",
        stderr=tmp_path / "out.txt",
    )
    try:
        assert fcntl.fcntl(started.replies.fileno(), fcntl.F_GETPIPE_SZ) == REPLY_PIPE_BYTES
    finally:
        os.killpg(started.process.pid, signal.SIGKILL)
        started.process.wait()
        started.close()
