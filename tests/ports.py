"""Ports for the servers a test starts, which no other process on this machine is handed while the test runs.

A port from the kernel (`bind(("127.0.0.1", 0))`) is free only until it is closed: a test that kills its server
with SIGKILL and starts it again on the same port races every other process for it, and the kernel hands out the
same range to every `bind(0)` and every outgoing connection. Two kill -9 tests lost that race under `make test`
(another test's TLS server took the port; the restarted server's client read "illegal request line").

So each test process claims a block of ports below the kernel's ephemeral range (32768-60999 on Linux), with an
advisory lock that it holds while it lives, and hands its ports out in turn: a concurrent pytest run (another
worktree, CI) claims another block, and nothing asks the kernel for a port in ours."""

from __future__ import annotations

import fcntl
import itertools
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import IO

FIRST_PORT = 20000
BLOCK_SIZE = 250
BLOCKS = 48
"""20000-31999: under the ephemeral range, and 48 test processes at once (a few concurrent `make test` runs)."""

LOCKS = Path("/tmp/batchpoint-test-ports")
"""Machine-wide, not under TMPDIR: concurrent runs (worktrees, CI) set TMPDIRs of their own."""


class PortBlock:
    """The block of ports this process holds, claimed on first use."""

    def __init__(self) -> None:
        self._lock: IO[bytes] | None = None  # kept open while this process lives: the claim
        self._ports: Iterator[int] = iter(())

    def _claim(self) -> None:
        LOCKS.mkdir(parents=True, exist_ok=True)
        for block in range(BLOCKS):
            lock = open(LOCKS / f"{block}.lock", "ab")
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.close()
                continue
            self._lock = lock
            first = FIRST_PORT + BLOCK_SIZE * block
            self._ports = itertools.cycle(range(first, first + BLOCK_SIZE))
            return
        raise RuntimeError(f"all {BLOCKS} blocks of test ports in {LOCKS} are held by other test processes")

    def next_free(self) -> int:
        """The block's next port that nothing listens on or holds now."""
        if self._lock is None:
            self._claim()
        for port in itertools.islice(self._ports, BLOCK_SIZE):
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
        raise RuntimeError("every port of this process's block is taken")


BLOCK = PortBlock()


def free_port() -> int:
    """A port on 127.0.0.1 for a server this test process starts, not handed to any other process meanwhile."""
    return BLOCK.next_free()
