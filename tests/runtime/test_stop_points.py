"""A stop point freezes the process before the thread that reached it goes on: the fencing tests rely on the write
after the point not being made until the test resumes the process."""

from __future__ import annotations

import mmap
import struct
import subprocess
import sys
import time
from pathlib import Path

from batchpoint.runtime.stop_points import VARIABLE

COUNTS_ON = """
import mmap, os, struct, sys, threading, time
from batchpoint.runtime.stop_points import stop_point

shared = mmap.mmap(os.open(sys.argv[1], os.O_RDWR), 8)

def work():
    stop_point("terminal-write", "the-job")
    count = 0
    while True:  # what the thread would write after the point
        count += 1
        shared[:8] = struct.pack("q", count)

threading.Thread(target=work).start()
time.sleep(60)  # the main thread idles, as a server's event loop does
"""


def test_the_thread_at_a_stop_point_runs_nothing_more_once_the_process_is_stopped(tmp_path: Path) -> None:
    counter = tmp_path / "counter"
    for _ in range(5):
        counter.write_bytes(bytes(8))
        process = subprocess.Popen(
            [sys.executable, "-c", COUNTS_ON, str(counter)], env={VARIABLE: "terminal-write@the-job"}
        )
        try:
            deadline = time.monotonic() + 30
            while Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "T":
                assert time.monotonic() < deadline, "the process did not stop"
                time.sleep(0.005)
            time.sleep(0.05)
            with counter.open("rb") as file, mmap.mmap(file.fileno(), 8, access=mmap.ACCESS_READ) as shared:
                assert struct.unpack("q", shared[:8]) == (0,), "the thread ran on after it asked to stop"
        finally:
            process.kill()
            process.wait()
