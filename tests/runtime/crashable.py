"""A coordinator in its own process, with a ledger kept in a file, for tests that SIGKILL the "server".

`python -m tests.runtime.crashable ROOT` runs the job `resume_spec(ROOT)` with `FileLedger(ROOT / "ledger")`.
"""

from __future__ import annotations

import os
import pickle
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from batchpoint.runtime.coordinator import run_job
from batchpoint.runtime.ledger import InMemoryLedger
from batchpoint.runtime.local import LocalProcessExecutor
from batchpoint.runtime.spec import JobSpec


class FileLedger(InMemoryLedger):
    """An InMemoryLedger whose mini-batches are saved to a file (atomically) on each write that must be durable;
    attempts are not saved, as the contract allows."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._path = path
        if path.exists():
            self._plans = pickle.loads(path.read_bytes())
            self.attempts = {job_id: {} for job_id in self._plans}

    def plan(self, job_id: str, mini_batches: Iterable[Sequence[str]]) -> None:
        super().plan(job_id, mini_batches)
        self._save()

    def record_success(self, job_id: str, index: int, try_number: int, succeeded_items: int, failed_items: int) -> None:
        super().record_success(job_id, index, try_number, succeeded_items, failed_items)
        self._save()

    def record_failed_try(self, job_id: str, index: int, try_number: int, error: str) -> None:
        super().record_failed_try(job_id, index, try_number, error)
        self._save()

    def mark_exhausted(self, job_id: str, index: int) -> None:
        super().mark_exhausted(job_id, index)
        self._save()

    def _save(self) -> None:
        with self._lock:
            data = pickle.dumps(self._plans)
        temporary = self._path.with_suffix(".tmp")
        temporary.write_bytes(data)
        os.replace(temporary, self._path)


def resume_spec(root: Path) -> JobSpec:
    return JobSpec(
        job_id="resumable",
        input_paths=[root / "in"],
        output_dir=root / "out",
        code_dir=root / "code",
        scoring_script="score.py",
        mini_batch_size=3,
        max_concurrency_per_instance=2,
        environment_variables={"MARKERS": str(root / "markers")},
    )


if __name__ == "__main__":
    root = Path(sys.argv[1])
    outcome = run_job(resume_spec(root), FileLedger(root / "ledger"), LocalProcessExecutor())
    print(outcome.status)
