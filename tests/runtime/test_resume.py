"""Decision 12: a coordinator killed with SIGKILL at any moment resumes from its finished mini-batches, its
workers die with it, and the output holds every item exactly once."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from batchpoint.runtime.coordinator import run_job
from batchpoint.runtime.local import LocalProcessExecutor
from batchpoint.runtime.output import JobAlreadyRunningError, JobLock
from tests.runtime.conftest import Kit, lines
from tests.runtime.crashable import FileLedger, resume_spec

REPOSITORY = Path(__file__).resolve().parents[2]
FILES = [f"f{index:03d}.txt" for index in range(48)]
SLOW_ECHO = """
    import os, random, time
    from pathlib import Path

    def init():
        Path(os.environ["MARKERS"], f"pid-{os.getpid()}").touch()

    def run(mini_batch):
        time.sleep(random.random() / 10)
        with open(Path(os.environ["MARKERS"], "runs"), "a") as runs:
            runs.write(os.path.basename(mini_batch[0]) + "\\n")
        return [os.path.basename(path) for path in mini_batch]
"""


def start_coordinator(root: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "tests.runtime.crashable", str(root)], cwd=REPOSITORY)


def succeeded(root: Path) -> set[int]:
    batches = FileLedger(root / "ledger").mini_batches("resumable") if (root / "ledger").exists() else None
    return {batch.index for batch in batches or [] if batch.status == "succeeded"}


def at_least_succeeded(root: Path, minimum: int) -> Callable[[], bool]:
    return lambda: len(succeeded(root)) >= minimum


def wait_for(condition: Callable[[], bool], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def alive(pid: int) -> bool:
    """Running, as opposed to gone or a zombie nobody has reaped yet."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def worker_pids(markers: Path) -> list[int]:
    return [int(path.name.removeprefix("pid-")) for path in markers.glob("pid-*")]


def runs(markers: Path) -> Counter[str]:
    return Counter((markers / "runs").read_text().split())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_coordinator_killed_at_any_moment_resumes_to_exactly_once_output(kit: Kit) -> None:
    kit.inputs(*FILES)
    kit.script(SLOW_ECHO)
    finished_runs: dict[str, int] = {}
    for minimum, then_wait in ((0, 0.3), (3, 0.0), (8, 0.0)):
        coordinator = start_coordinator(kit.root)
        wait_for(at_least_succeeded(kit.root, minimum))
        time.sleep(then_wait)
        coordinator.send_signal(signal.SIGKILL)
        coordinator.wait()
        wait_for(lambda: not any(alive(pid) for pid in worker_pids(kit.markers)), seconds=5)
        done = succeeded(kit.root)
        counts = runs(kit.markers) if (kit.markers / "runs").exists() else Counter()
        finished_runs.update({FILES[3 * index]: counts[FILES[3 * index]] for index in done})

    outcome = run_job(resume_spec(kit.root), FileLedger(kit.root / "ledger"), LocalProcessExecutor())

    assert outcome.status == "Completed"
    assert (outcome.counts.items_succeeded, outcome.counts.items_failed) == (48, 0)
    assert kit.predictions() == lines(*FILES)
    assert len(finished_runs) >= 8
    final_runs = runs(kit.markers)
    assert {name: final_runs[name] for name in finished_runs} == finished_runs  # never run again
    assert not (kit.output_dir / ".batchpoint").exists()


def test_a_job_runs_in_one_coordinator_at_a_time(kit: Kit) -> None:
    kit.inputs("a.txt")
    kit.script("def run(mini_batch):\n    return mini_batch\n")

    with JobLock(kit.spec()), pytest.raises(JobAlreadyRunningError):
        kit.run()
