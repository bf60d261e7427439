"""Decision 12: a coordinator killed with SIGKILL at any moment resumes from its finished mini-batches, its
workers die with it, and the output holds every item exactly once.

The coordinator runs on the production SQL ledger (SQLite). Kill points are drawn from a seed printed with every
failure; `BATCHPOINT_KILL_SEED=N` replays one. The test process is a child subreaper (tests/processes.py)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from batchpoint.runtime.coordinator import run_job
from batchpoint.runtime.ledger import Ledger
from batchpoint.runtime.output import JobAlreadyRunningError, JobLock
from tests.processes import processes_with, reap
from tests.runtime.conftest import Kit, check_completed_report, lines
from tests.runtime.crashable import JOB_ID, executor, resume_spec, sql_ledger

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

REPOSITORY = Path(__file__).resolve().parents[2]
FILES = [f"f{index:03d}.txt" for index in range(48)]
MINI_BATCHES = 16
KILLS = 3
SLOW_ECHO = """
    import os, random, time
    from pathlib import Path

    def init():
        Path(os.environ["MARKERS"], f"pid-{os.getpid()}").touch()

    def runs_so_far(markers):
        return len(Path(markers, "runs").read_text().split()) if Path(markers, "runs").exists() else 0

    def run(mini_batch):
        markers = os.environ["MARKERS"]
        stall_after = Path(markers, "stall-after")
        if stall_after.exists() and runs_so_far(markers) >= int(stall_after.read_text()):
            Path(markers, f"stalled-{os.getpid()}").touch()  # where the test kills the coordinator: mid-run()
            time.sleep(60)
        time.sleep(random.random() / 20)
        with open(Path(os.environ["MARKERS"], "runs"), "a") as runs:
            runs.write(os.path.basename(mini_batch[0]) + "\\n")
        return [os.path.basename(path) for path in mini_batch]
"""


def start_coordinator(root: Path) -> subprocess.Popen[bytes]:
    """The coordinator, whose workers have their folders in `root/tmp` (its TMPDIR): `worker_entry` finds them."""
    (root / "tmp").mkdir(exist_ok=True)
    environment = {**os.environ, "TMPDIR": str(root / "tmp")}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.runtime.crashable", str(root)], cwd=REPOSITORY, env=environment
    )


def worker_entry(root: Path) -> str:
    return f"HOME={root / 'tmp'}/"


def succeeded(ledger: Ledger) -> set[int]:
    return {batch.index for batch in ledger.mini_batches(JOB_ID) or [] if batch.status == "succeeded"}


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def runs(markers: Path) -> Counter[str]:
    return Counter((markers / "runs").read_text().split()) if (markers / "runs").exists() else Counter()


def kill_points(seed: int) -> list[tuple[int, float]]:
    """For each kill: how many more run() calls to let finish before workers stall, and how long to wait then."""
    draw = random.Random(seed)
    return [(draw.randrange(MINI_BATCHES // KILLS - 1), draw.uniform(0.0, 0.3)) for _ in range(KILLS)]


def test_a_coordinator_killed_at_any_moment_resumes_to_exactly_once_output(
    kit: Kit, subreaper: None, kill_seed: int
) -> None:
    kit.inputs(*FILES)
    kit.script(SLOW_ECHO)
    ledger = sql_ledger(kit.root)
    finished_runs: dict[str, int] = {}
    seen_workers: set[int] = set()
    for more_runs, then_wait in kill_points(kill_seed):
        (kit.markers / "stall-after").write_text(str(sum(runs(kit.markers).values()) + more_runs))
        coordinator = start_coordinator(kit.root)
        wait_for(lambda: any(kit.markers.glob("stalled-*")), 30, f"a worker inside run() (seed {kill_seed})")
        time.sleep(then_wait)
        seen_workers.update(processes_with(worker_entry(kit.root), prefix=True))
        coordinator.send_signal(signal.SIGKILL)
        coordinator.wait()
        wait_for(
            lambda: not processes_with(worker_entry(kit.root), prefix=True), 5, f"orphans to die (seed {kill_seed})"
        )
        reap(seen_workers)
        for marker in [kit.markers / "stall-after", *kit.markers.glob("stalled-*")]:
            marker.unlink()
        counts = runs(kit.markers)
        finished_runs.update({FILES[3 * index]: counts[FILES[3 * index]] for index in succeeded(ledger)})

    outcome = run_job(resume_spec(kit.root), ledger, executor(kit.root))

    assert outcome.status == "Completed", f"seed {kill_seed}: {outcome.message}"
    assert (outcome.counts.items_succeeded, outcome.counts.items_failed) == (48, 0)
    assert kit.predictions() == lines(*FILES), f"seed {kill_seed}"
    final_runs = runs(kit.markers)
    assert {name: final_runs[name] for name in finished_runs} == finished_runs, f"seed {kill_seed}: run again"
    assert not (kit.output_dir / ".batchpoint").exists()
    check_completed_report(kit.output_dir / "logs", MINI_BATCHES, 48)


def test_a_job_runs_in_one_coordinator_at_a_time(kit: Kit) -> None:
    kit.inputs("a.txt")
    kit.script("def run(mini_batch):\n    return mini_batch\n")

    with JobLock(kit.spec()), pytest.raises(JobAlreadyRunningError):
        kit.run()
