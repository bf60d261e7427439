"""Processes as the kernel sees them, for tests that check that nothing outlives what it belongs to."""

from __future__ import annotations

import ctypes
import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36
KILL_SEED_VARIABLE = "BATCHPOINT_KILL_SEED"


def processes_with(environment_entry: str, prefix: bool = False) -> list[int]:
    """Live processes, whatever their parent, whose environment holds the `NAME=value` entry (zombies have none);
    with `prefix`, an entry that begins with it (`HOME=/a/folder/`: workers whose home is in that folder, as a
    worker carries none of its server's environment)."""
    found = []
    needle = environment_entry.encode()
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            entries = environ.read_bytes().split(b"\0")
            if any(entry.startswith(needle) if prefix else entry == needle for entry in entries):
                found.append(int(environ.parent.name))
        except OSError:
            continue
    return found


def reap(pids: set[int]) -> None:
    """Collect the ones among `pids` that were re-parented to this (subreaper) process and have exited."""
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            continue


@contextmanager
def child_subreaper() -> Iterator[None]:
    """Orphaned descendants are re-parented to this process instead of PID 1, as under a container's init or a CI
    runner: a check that relies on orphans having parent 1 would pass without proving anything."""
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    assert prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    try:
        yield
    finally:
        prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


def kill_seed() -> int:
    """The seed kill points are drawn from: `BATCHPOINT_KILL_SEED` replays a run, else a fresh one, printed (pytest
    shows it with a failure)."""
    seed = int(os.environ.get(KILL_SEED_VARIABLE) or random.randrange(2**32))
    print(f"kill points drawn with {KILL_SEED_VARIABLE}={seed}")
    return seed
