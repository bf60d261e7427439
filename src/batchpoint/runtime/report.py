"""What a job reports: live counts, its outcome, and the log files under `output_dir/logs` (Decision 14), among
them `user_logs/std_log.txt`, the log `jobs.stream` prints: progress, failed tries and what the workers print."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from batchpoint.runtime.executor import TaskFailed
from batchpoint.runtime.layout import FAILED_ITEMS, STREAM_LOG, LogLayout
from batchpoint.runtime.ledger import MiniBatch
from batchpoint.runtime.logs import StreamLog
from batchpoint.runtime.spec import JobSpec

JobStatus = Literal["Completed", "Failed", "Canceled"]
COMPLETED: JobStatus = "Completed"
FAILED: JobStatus = "Failed"
CANCELED: JobStatus = "Canceled"

FILES_NAMED = 3
FAILURES_LISTED = 10


@dataclass(slots=True)
class Counts:
    mini_batches_total: int = 0
    mini_batches_succeeded: int = 0
    mini_batches_failed: int = 0
    mini_batches_running: int = 0
    items_total: int = 0
    items_succeeded: int = 0
    items_failed: int = 0
    mini_batches_retried: int = 0
    """Failed tries that were tried again (in this run of the coordinator)."""

    @property
    def mini_batches_done(self) -> int:
        return self.mini_batches_succeeded + self.mini_batches_failed

    @property
    def items_done(self) -> int:
        return self.items_succeeded + self.items_failed


@dataclass(frozen=True, slots=True)
class JobOutcome:
    status: JobStatus
    message: str
    """For a failure: the first failing file(s), the exception and the traceback."""
    counts: Counts
    output_file: Path | None
    """The predictions file of a completed append_row job."""


@dataclass(frozen=True, slots=True)
class Failure:
    """Why some items failed: a mini-batch that used all its tries, or a result shorter than its mini-batch."""

    summary: str
    detail: str = ""

    @classmethod
    def exhausted(cls, batch: MiniBatch) -> Failure:
        return cls(
            f"Mini-batch {batch.index} ({name_files(batch.files)}) failed on all {batch.tries} tries; the last error:",
            batch.last_error or "",
        )

    @classmethod
    def short_result(cls, batch: MiniBatch, returned: int) -> Failure:
        missing = len(batch.files) - returned
        return cls(
            f"run() returned {returned} rows for the {len(batch.files)} files of mini-batch {batch.index} "
            f"({name_files(batch.files)}); {missing} items count as failed."
        )

    def __str__(self) -> str:
        return f"{self.summary}\n{self.detail}".rstrip()


@dataclass(slots=True)
class Failures:
    """The first FAILURES_LISTED failures and how many there were: a job where a million files fail keeps ten
    tracebacks in memory, not a million."""

    first: list[Failure] = field(default_factory=list)
    count: int = 0

    def add(self, failure: Failure) -> None:
        self.count += 1
        if len(self.first) < FAILURES_LISTED:
            self.first.append(failure)


def name_files(files: tuple[str, ...]) -> str:
    named = ", ".join(files[:FILES_NAMED])
    return named if len(files) <= FILES_NAMED else f"{named} and {len(files) - FILES_NAMED} more"


def outcome_message(status: JobStatus, counts: Counts, error_threshold: int, failures: Failures) -> str:
    if status == CANCELED:
        headline = "The job was canceled."
    elif status == FAILED:
        headline = (
            f"The number of failed items is {counts.items_failed}, which exceeds the error threshold {error_threshold}."
        )
    elif counts.items_total == 0:
        headline = "The input has no files; the job completed with an empty output."
    else:
        headline = (
            f"{counts.items_succeeded} of {counts.items_total} items succeeded and {counts.items_failed} failed "
            f"(error threshold {error_threshold})."
        )
    return f"{headline}\n{failures.first[0]}" if failures.first and status != CANCELED else headline


def stream_log(spec: JobSpec) -> StreamLog:
    """The job's `user_logs/std_log.txt`, collecting what the workers print (labelled `<node>/processNNN.stdout`)."""
    return StreamLog(spec.logs_dir / STREAM_LOG, LogLayout(spec.logs_dir).worker_outputs)


class JobLogs:
    """`logs/job_result.txt`, `logs/job_progress_overview.txt`, `logs/user/error/<mini-batch>.txt`, and the lines
    of each in `logs/user_logs/std_log.txt`."""

    def __init__(self, spec: JobSpec) -> None:
        self._dir = spec.logs_dir
        self._errors = spec.logs_dir / "user" / "error"
        self._errors.mkdir(parents=True, exist_ok=True)
        self._stream = StreamLog(spec.logs_dir / STREAM_LOG)

    def try_failed(self, batch: MiniBatch, try_number: int, tries_allowed: int, failure: TaskFailed) -> None:
        """Append a failed try, with the files of its mini-batch and the error, to the mini-batch's error file."""
        files = "\n".join(batch.files)
        with open(self._errors / f"mini_batch_{batch.index:09d}.txt", "a", encoding="utf-8", errors="replace") as log:
            log.write(
                f"=== {_now()} mini-batch {batch.index}, try {try_number} of {tries_allowed}, {failure.kind} on "
                f"{failure.worker}\nFiles:\n{files}\n{failure.error.rstrip()}\n\n"
            )
        last_line = (failure.error.strip().splitlines() or [""])[-1]
        self._stream.write(
            f"Mini-batch {batch.index} ({name_files(batch.files)}) failed on try {try_number} of {tries_allowed} "
            f"({failure.kind} on {failure.worker}): {last_line}"
        )

    def init_failed(self, failure: TaskFailed) -> None:
        """Append a failed `init()` to `user/error/init.txt`."""
        with open(self._errors / "init.txt", "a", encoding="utf-8", errors="replace") as log:
            log.write(f"=== {_now()} init() failed on {failure.worker}\n{failure.error.rstrip()}\n\n")

    def worker_lost(self, failure: TaskFailed) -> None:
        """A worker lost with its machine: the mini-batch runs again elsewhere, which the job's log says."""
        self._stream.write(f"{failure.error.rstrip()} Its mini-batch runs again on another worker.")

    def progress(self, counts: Counts) -> None:
        with open(self._dir / "job_progress_overview.txt", "a", encoding="utf-8") as log:
            log.write(f"{_now()} {describe_counts(counts)}\n")
        self._stream.write(f"Progress: {describe_counts(counts)}")

    def result(self, outcome: JobOutcome, failures: Failures) -> None:
        """Write `job_result.txt` whole or not at all."""
        listed = "\n\n".join(str(failure) for failure in failures.first)
        more = (
            f"\n\n... and {failures.count - len(failures.first)} more" if failures.count > len(failures.first) else ""
        )
        text = (
            f"Status: {outcome.status}\n{outcome.message}\n\n{describe_counts(outcome.counts)}\n"
            f"Output: {outcome.output_file or 'none'}\n" + (f"\nFailures:\n{listed}{more}\n" if failures.count else "")
        )
        self._write_whole("job_result.txt", text)
        self._stream.write(f"Job {outcome.status}: {outcome.message}")

    def failed_items(self, files: list[str]) -> None:
        """Write `failed_items.txt`: the files of the mini-batches that failed on every try or never ran."""
        self._write_whole(FAILED_ITEMS, "".join(f"{path}\n" for path in files), errors="surrogateescape")

    def _write_whole(self, name: str, text: str, errors: str = "replace") -> None:
        """Write a log file whole or not at all."""
        path = self._dir / name
        temporary = path.with_name(f".{name}.tmp")
        temporary.write_text(text, encoding="utf-8", errors=errors)
        os.replace(temporary, path)


def read_failed_items(spec: JobSpec) -> list[str]:
    """The files `JobLogs.failed_items` wrote for an ended job; empty when none failed."""
    try:
        text = (spec.logs_dir / FAILED_ITEMS).read_text(encoding="utf-8", errors="surrogateescape")
    except FileNotFoundError:
        return []
    return text.splitlines()


def describe_counts(counts: Counts) -> str:
    return (
        f"Mini-batches: {counts.mini_batches_total} total, {counts.mini_batches_succeeded} succeeded, "
        f"{counts.mini_batches_failed} failed, {counts.mini_batches_running} running. Items: {counts.items_total} "
        f"total, {counts.items_succeeded} succeeded, {counts.items_failed} failed."
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
