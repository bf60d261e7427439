"""What a job reports: live counts, its outcome, and the log files the coordinator writes under `output_dir/logs`
while the job runs (Decision 14; the layout is Azure's, `layout.py`), among them `user_logs/std_log.txt`, the log
`jobs.stream` prints: progress, failed tries and what the workers print."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from batchpoint.runtime.executor import TaskFailed, WorkerName, gist
from batchpoint.runtime.layout import (
    FAILED_ITEMS,
    JOB_RESULT,
    MASTER_ROLE,
    PROGRESS_STAMP,
    README,
    README_TEXT,
    STREAM_LOG,
    LogLayout,
    append_line,
    timestamp,
)
from batchpoint.runtime.ledger import MiniBatch
from batchpoint.runtime.logs import StreamLog
from batchpoint.runtime.spec import JobSpec
from batchpoint.runtime.status import JobStatus

FILES_NAMED = 3
FAILURES_LISTED = 10
INIT_FAILED_HEADER = " init() failed in "
"""In the header of a failed init()'s block in its process's error file (the process's only block: it exits)."""
SEE_JOB_ERROR = "See logs/job_error.txt."


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
    def exhausted(cls, batch: MiniBatch, details: str = "") -> Failure:
        """`details` names the file that holds every traceback of the last try's process, when known."""
        where = f" (every try's is in {details})" if details else ""
        return cls(
            f"Mini-batch {batch.index} ({name_files(batch.files)}) failed on all {batch.tries} tries; the last "
            f"error{where}:",
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
    if status == JobStatus.CANCELED:
        headline = "The job was canceled."
    elif status == JobStatus.FAILED:
        headline = (
            f"The number of failed items is {counts.items_failed}, which exceeds the error threshold "
            f"{error_threshold}. {SEE_JOB_ERROR}"
        )
    elif counts.items_total == 0:
        headline = "The input has no files; the job completed with an empty output."
    else:
        headline = (
            f"{counts.items_succeeded} of {counts.items_total} items succeeded and {counts.items_failed} failed "
            f"(error threshold {error_threshold})." + (f" {SEE_JOB_ERROR}" if counts.items_failed else "")
        )
    return f"{headline}\n{failures.first[0]}" if failures.first and status != JobStatus.CANCELED else headline


def stream_log(spec: JobSpec) -> StreamLog:
    """The job's `user_logs/std_log.txt`, collecting what the workers print (labelled `<node>/processNNN.stdout`)."""
    layout = LogLayout(spec.logs_dir)
    return StreamLog(layout.file(STREAM_LOG), layout.worker_outputs)


class JobLogs:
    """The files the coordinator writes while the job runs: `readme.txt`, the progress overview,
    `sys/master_role.txt`, each failed try's and init()'s traceback in its process's `user/error/<node>/<process>.txt`,
    `job_result.txt` and `failed_items.txt` at the end, and the lines of each in `user_logs/std_log.txt`."""

    def __init__(self, spec: JobSpec) -> None:
        self.layout = LogLayout(spec.logs_dir)
        self.layout.root.mkdir(parents=True, exist_ok=True)
        self._stream = StreamLog(self.layout.file(STREAM_LOG))
        self._overview = ProgressOverview(self.layout)
        if _read(self.layout.file(README)) != README_TEXT:
            self._write_whole(README, README_TEXT)

    def started(self, spec: JobSpec, counts: Counts, planned_seconds: float | None) -> None:
        """The job starts (it was planned `planned_seconds` ago) or resumes (None) with `counts` done."""
        if planned_seconds is not None:
            self._overview.write(
                f"Scheduling finished. Scheduled {counts.mini_batches_total} mini batches in {planned_seconds:.0f} "
                f"seconds. There are {counts.mini_batches_total} tasks with {counts.items_total} items."
            )
            self.role(
                f"The job started: {counts.mini_batches_total} mini-batches of up to {spec.mini_batch_size} files "
                f"({counts.items_total} items), on {spec.instance_count} node(s) of "
                f"{spec.max_concurrency_per_instance} process(es)."
            )
        else:
            self.role(
                f"The job resumed: {counts.mini_batches_done} of {counts.mini_batches_total} mini-batches had ended "
                "before (their rows are kept); the others run again."
            )
        self._overview.started(counts)
        for note in spec.notes:
            self.role(note)

    def role(self, text: str) -> None:
        """A line of the coordinator's own log, `sys/master_role.txt`."""
        append_line(self.layout.file(MASTER_ROLE), text)

    def try_failed(self, batch: MiniBatch, try_number: int, tries_allowed: int, failure: TaskFailed) -> None:
        """Append a failed try, with its mini-batch's files and the error, to its process's error file."""
        files = "\n".join(batch.files)
        path = self.error_file(failure.worker)
        self._append_error(
            path,
            f"=== {timestamp()} mini-batch {batch.index}, try {try_number} of {tries_allowed}: {failure.kind} in "
            f"{failure.worker}\nFiles:\n{files}\n{failure.error.rstrip()}\n\n",
        )
        self._stream.write(
            f"Mini-batch {batch.index} ({name_files(batch.files)}) failed on try {try_number} of {tries_allowed} "
            f"({failure.kind} in {failure.worker}): {gist(failure.error)} Details: {self.layout.relative(path)}"
        )

    def init_failed(self, failure: TaskFailed) -> None:
        """A failed `init()`: its process's error file holds the traceback, the job's logs say where."""
        path = self.error_file(failure.worker)
        self._append_error(path, f"=== {timestamp()}{INIT_FAILED_HEADER}{failure.worker}\n{failure.error.rstrip()}\n\n")
        line = f"init() failed in {failure.worker}: {gist(failure.error)} Details: {self.layout.relative(path)}"
        self.role(line)
        self._stream.write(line)

    def worker_lost(self, failure: TaskFailed) -> None:
        """A worker lost with its machine: the mini-batch runs again elsewhere, which the job's logs say."""
        line = f"{failure.error.rstrip()} Its mini-batch runs again on another worker."
        self.role(line)
        self._stream.write(line)

    def error_file(self, worker: WorkerName) -> Path:
        return self.layout.error(worker)

    def progress(self, counts: Counts) -> None:
        self._overview.progress(counts)
        self._stream.write(f"Progress: {describe_counts(counts)}")

    def result(self, outcome: JobOutcome, failures: Failures, pointers: str) -> None:
        """Write `job_result.txt` whole or not at all; `pointers` says which other files to read."""
        listed = "\n\n".join(str(failure) for failure in failures.first)
        more = (
            f"\n\n... and {failures.count - len(failures.first)} more" if failures.count > len(failures.first) else ""
        )
        text = (
            f"Status: {outcome.status}\n{outcome.message}\n\n{describe_counts(outcome.counts)}\n"
            f"Output: {outcome.output_file or 'none'}\n"
            + (f"\nFailures:\n{listed}{more}\n" if failures.count else "")
            + f"\n{pointers}\n"
        )
        self._write_whole(JOB_RESULT, text)
        ended = f"Job {outcome.status}: {outcome.message}"
        self._stream.write(ended)
        self.role(ended.splitlines()[0])
        self._overview.write(f"The job ended: {outcome.status}. See job_result.txt.")

    def failed_items(self, files: list[str]) -> None:
        """Write `failed_items.txt`: the files of the mini-batches that failed on every try or never ran, one a
        line (`failed_item_line`)."""
        self._write_whole(FAILED_ITEMS, "".join(map(failed_item_line, files)), errors="surrogateescape")

    def _append_error(self, path: Path, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8", errors="replace") as log:
            log.write(text)

    def _write_whole(self, name: str, text: str, errors: str = "replace") -> None:
        write_whole(self.layout.file(name), text, errors)


class ProgressOverview:
    """`job_progress_overview.<YYYYMMDDHH>.txt`, in Azure's words. A run of the coordinator goes on writing the
    file started the same UTC day (by an earlier run, before a restart of the server), else starts one; the
    file rotates when the UTC day changes."""

    def __init__(self, layout: LogLayout, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._layout = layout
        self._clock = clock
        self._path: Path | None = None
        self._day = ""
        self._began = time.monotonic()
        self._done_before = 0

    def started(self, counts: Counts) -> None:
        """The run's start, from which progress is timed and the remaining time estimated."""
        self._began, self._done_before = time.monotonic(), counts.mini_batches_done
        if counts.mini_batches_done == 0:
            self.write("No task has been processed yet.")

    def progress(self, counts: Counts) -> None:
        done, total = counts.mini_batches_done, counts.mini_batches_total
        elapsed = time.monotonic() - self._began
        line = f"Processed {done} of {total} mini batches in {_clock_time(elapsed)}."
        if done > self._done_before:
            line += f" Estimated remaining time {_clock_time(elapsed / (done - self._done_before) * (total - done))}."
        self.write(f"{line} {describe_counts(counts)}")

    def write(self, text: str) -> None:
        now = self._clock()
        day = now.strftime("%Y%m%d")
        if day != self._day:
            self._path, self._day = self._file_of(day, now), day
        assert self._path is not None
        with open(self._path, "a", encoding="utf-8") as overview:
            overview.write(f"{timestamp(now)} {text}\n")

    def _file_of(self, day: str, now: datetime) -> Path:
        started_today = sorted(self._layout.root.glob(self._layout.progress_overview(f"{day}[0-9][0-9]").name))
        return started_today[-1] if started_today else self._layout.progress_overview(now.strftime(PROGRESS_STAMP))


def _clock_time(seconds: float) -> str:
    return str(timedelta(seconds=round(seconds)))


def write_whole(path: Path, text: str, errors: str = "replace") -> None:
    """Write a log file whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8", errors=errors)
    os.replace(temporary, path)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


LINE_BREAKS = re.compile(r"[\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
"""What str.splitlines() splits on, which an editor or a terminal may show as a line break too."""
QUOTE = '"'
UNESCAPED_BREAKS = {0x85: "\\u0085", 0x2028: "\\u2028", 0x2029: "\\u2029"}
"""The line breaks json.dumps leaves as they are (it escapes only the ASCII control characters)."""


def failed_item_line(path: str) -> str:
    """One line of `failed_items.txt`: the path as it is; or, when it holds a line break or starts with a quote
    (which an absolute path never does), the path as a JSON string, so that no name spans lines or is misread."""
    if not LINE_BREAKS.search(path) and not path.startswith(QUOTE):
        return f"{path}\n"
    return f"{json.dumps(path, ensure_ascii=False).translate(UNESCAPED_BREAKS)}\n"


class FailedItemsError(ValueError):
    """`failed_items.txt` cannot be read back as `JobLogs.failed_items` writes it; the message says where."""


def read_failed_items(spec: JobSpec) -> list[str]:
    """The files `JobLogs.failed_items` wrote for an ended job, exactly; empty when none failed. The lines end
    with "\\n" only (no name holds a line break unquoted), and a line starting with a quote is a JSON string.

    The file lies in the job's output folder, which its scoring script may write: what it lists is not trusted
    (the rerun checks each path), and one it cannot read (a line that is not a JSON string, a folder in its
    place) raises FailedItemsError."""
    path = spec.logs_dir / FAILED_ITEMS
    try:
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
    except FileNotFoundError:
        return []
    except OSError as error:
        raise FailedItemsError(f"'{path}' cannot be read: {error.strerror or error}") from None
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [_failed_item(path, number, line) for number, line in enumerate(lines, start=1)]


def _failed_item(path: Path, number: int, line: str) -> str:
    if not line.startswith(QUOTE):
        return line
    try:
        item = json.loads(line)
    except ValueError as error:
        raise FailedItemsError(f"line {number} of '{path}' is not a JSON string: {error}") from None
    return str(item)  # a line starting with a quote that parses is a string


def describe_counts(counts: Counts) -> str:
    return (
        f"Mini-batches: {counts.mini_batches_total} total, {counts.mini_batches_succeeded} succeeded, "
        f"{counts.mini_batches_failed} failed, {counts.mini_batches_running} running. Items: {counts.items_total} "
        f"total, {counts.items_succeeded} succeeded, {counts.items_failed} failed."
    )
