"""Test-only: a server process stops itself (SIGSTOP) at a named point of a job's work, so that a test can freeze
a replica exactly before one of its writes, let another replica take the job over, and resume it (SIGCONT).

`BATCHPOINT_TEST_STOP_AT=point@job[,point@job...]` in a server's environment (nothing else reads it, and unset it
costs one lookup per point): the process stops the first time it reaches `point` for a job whose name `job` is
part of where the point names (a job's name, or its output folder). The points:

- `ledger-group`: before a group of tries holding a success is written to the ledger;
- `output-commit`: after the output's last check, right before the output file is put in place;
- `terminal-write`: before a job's terminal state is written;
- `child-write`: before a pipeline step's (a child job's) terminal state is written;
- `scoring-child-write`: before a model job's scoring step (its child job) is written with its terminal state,
  inside the transaction that writes the job's: the process freezes holding its lease's row lock.
"""

from __future__ import annotations

import os
import signal
import threading

VARIABLE = "BATCHPOINT_TEST_STOP_AT"
_reached: set[str] = set()


def stop_point(point: str, where: str) -> None:
    """Stop this process here if the test asked for `point` of a job named in `where` (once per entry).

    The signal goes to this thread: sent to the process (``os.kill(os.getpid(), ...)``) it is taken by the main
    thread, which stops the others once it runs, and on a loaded machine this thread ran on meanwhile, for up to
    milliseconds: enough to commit the very write it was to stop before."""
    asked = os.environ.get(VARIABLE)
    if not asked:
        return
    for entry in asked.split(","):
        name, _, job = entry.strip().partition("@")
        if name == point and job and job in where and entry not in _reached:
            _reached.add(entry)
            signal.pthread_kill(threading.get_ident(), signal.SIGSTOP)
