"""A coordinator in its own process, on the production SQL ledger, for tests that SIGKILL the "server".

`python -m tests.runtime.crashable ROOT` runs the job `resume_spec(ROOT)` with the ledger of the SQLite database
`ledger_url(ROOT)`, exactly the ledger `batchpoint serve` keeps by default.
"""

from __future__ import annotations

import sys
from pathlib import Path

from batchpoint.runtime.coordinator import run_job
from batchpoint.runtime.ledger import Ledger
from batchpoint.runtime.local import LocalProcessExecutor
from batchpoint.runtime.sandbox.policy import WorkerSandbox
from batchpoint.runtime.spec import JobSpec
from batchpoint.store import open_store

JOB_ID = "resumable"


def ledger_url(root: Path) -> str:
    return f"sqlite:///{root / 'ledger.db'}"


def sql_ledger(root: Path) -> Ledger:
    return open_store(ledger_url(root)).ledger()


def resume_spec(root: Path) -> JobSpec:
    return JobSpec(
        job_id=JOB_ID,
        input_paths=[root / "in"],
        output_dir=root / "out",
        code_dir=root / "code",
        scoring_script="score.py",
        mini_batch_size=3,
        max_concurrency_per_instance=2,
        environment_variables={"MARKERS": str(root / "markers")},
    )


def executor(root: Path) -> LocalProcessExecutor:
    """Workers allowed (test-only) to leave their marks in `root/markers`, outside their job."""
    return LocalProcessExecutor(sandbox=WorkerSandbox(read_write=(str(root / "markers"),)))


if __name__ == "__main__":
    root = Path(sys.argv[1])
    outcome = run_job(resume_spec(root), sql_ledger(root), executor(root))
    print(outcome.status)
