"""Two test processes at once never hand out the same port, and none of theirs is one the kernel hands out."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.ports import BLOCK_SIZE, FIRST_PORT, free_port

EPHEMERAL_FIRST = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
TAKE = """
import sys
from tests.ports import free_port
print(*(free_port() for _ in range({count})), flush=True)
sys.stdin.read()  # holds its block until the test has every process's ports
"""


def test_concurrent_test_processes_get_ports_of_their_own_below_the_kernels_range(tmp_path: Path) -> None:
    count = BLOCK_SIZE + 3  # more than a block: its ports are handed out again, in turn
    command = [sys.executable, "-c", TAKE.format(count=count)]
    others = [
        subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env={**os.environ, "TMPDIR": str(tmp)}
        )
        for tmp in (tmp_path / "one", tmp_path / "other")  # as concurrent runs do, each with its own
    ]
    try:
        mine = {free_port() for _ in range(count)}
        theirs = [set(map(int, other.stdout.readline().split())) for other in others if other.stdout]
    finally:
        for other in others:
            other.communicate(timeout=60)
    assert len(theirs) == 2 and all(other.returncode == 0 for other in others)
    assert not mine & (theirs[0] | theirs[1]), "this process's ports were handed to another"
    assert not theirs[0] & theirs[1], "two concurrent processes were handed the same port"
    every = mine | theirs[0] | theirs[1]
    assert FIRST_PORT <= min(every) and max(every) < EPHEMERAL_FIRST
