"""What a model job's page shows of its mini-batches: every try (where it ran, when, how long, how it ended, its
files and error), the files that failed, and the first rows of its output.

The tries come from the ledger while the job runs (any replica reads the job's rows from the database), and from
the job's ``processed_mini-batches.csv`` once it ended: the coordinator writes that file from the ledger when the
job ends, then drops the job's rows (``runtime/job_report.py``). Both hold only what the ledger recorded, so the
page is exact after a crash of the server, whichever replica ran the job.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from itertools import groupby
from pathlib import Path

from batchpoint.runtime.executor import WorkerName, gist
from batchpoint.runtime.job_report import COLUMNS, MISSING, NOT_PROCESSED, TIME_FORMAT
from batchpoint.runtime.layout import PROCESSED_MINI_BATCHES, LogLayout
from batchpoint.runtime.ledger import PENDING, RUN_DONE, Attempt, Ledger, MiniBatch
from batchpoint.runtime.spec import APPEND_ROW, JobSpec

FAILURES_LISTED = 200
"""At most this many failed files in the page's table (the rest are in ``failed_items.txt``)."""
PREVIEW_ROWS = 20
PREVIEW_BYTES = 64 * 1024
PREVIEW_DELIMITERS = (",", "\t", " ")
"""How an output's rows may be split into columns, tried in this order (Decision 8: a DataFrame's rows are
space-delimited; a list's elements are written as they are)."""
TIMEOUT = "RUN_TIMEOUT"


class TryState(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    RETRIED = "retried"
    """Failed, and the mini-batch was (or will be) tried again."""
    FAILED = "failed"
    """Failed, the mini-batch's last try."""
    TIMED_OUT = "timed-out"
    """Ran out of the deployment's timeout (retried or not)."""


FAILED_STATES = frozenset({TryState.RETRIED, TryState.FAILED, TryState.TIMED_OUT})


@dataclass(slots=True)
class TryView:
    """One try of a mini-batch as the page shows it."""

    index: int
    try_number: int
    node: str
    process: str
    state: TryState
    files: tuple[str, ...]
    started: float | None
    """UTC seconds since the epoch; None when the ledger did not record it."""
    seconds: float | None
    """How long it took; None while it runs."""
    error: str = ""
    """The error's last line."""
    final: bool = False
    """It ended its mini-batch: succeeded, or failed with no try left (or the job ended after it)."""

    @property
    def lane(self) -> str:
        return f"node {self.node} {self.process}" if self.node or self.process else "unknown worker"

    @property
    def failed(self) -> bool:
        return self.state in FAILED_STATES


def _failed_state(status: str | None, final: bool) -> TryState:
    if status == TIMEOUT:
        return TryState.TIMED_OUT
    return TryState.FAILED if final else TryState.RETRIED


def ledger_tries(ledger: Ledger, job_id: str) -> list[TryView] | None:
    """The tries of a running job as its ledger holds them; None when it has no plan yet."""
    batches = ledger.mini_batches(job_id)
    if batches is None:
        return None
    return [_from_attempt(attempt, batches[attempt.index]) for attempt in ledger.attempts(job_id)]


def _from_attempt(attempt: Attempt, batch: MiniBatch) -> TryView:
    end = attempt.end
    final = attempt.outcome is not None and batch.status != PENDING and attempt.try_number >= batch.tries
    if attempt.outcome is None:
        state = TryState.RUNNING
    elif attempt.outcome == "succeeded":
        state = TryState.SUCCEEDED
    else:
        state = _failed_state(end.status if end else None, final)
    return TryView(
        attempt.index,
        attempt.try_number,
        attempt.node,
        attempt.process,
        state,
        batch.files,
        attempt.started,
        end.elapsed_seconds if end else None,
        gist(attempt.error) if attempt.error else "",
        final,
    )


def report_tries(logs_dir: Path) -> list[TryView] | None:
    """The tries of an ended job, from its ``processed_mini-batches.csv``; None when it has none (it never
    planned its mini-batches) or one of other columns (written by another version)."""
    try:
        with open(logs_dir / PROCESSED_MINI_BATCHES, encoding="utf-8", errors="surrogateescape", newline="") as file:
            header, *rows = csv.reader(file)
    except (OSError, ValueError):
        return None
    if tuple(header) != COLUMNS:
        return None
    tries = []
    for _, group in groupby((row for row in rows if row[11] != NOT_PROCESSED), key=lambda row: row[0]):
        batch = list(group)
        for position, row in enumerate(batch):
            tries.append(_from_row(row, final=position == len(batch) - 1))
    return tries


def _from_row(row: list[str], final: bool) -> TryView:
    index, try_number, node, process, start, _, _, _, elapsed, _, _, status, _, error, detail = row
    state = TryState.SUCCEEDED if status == RUN_DONE else _failed_state(status, final)
    started = None if start == MISSING else datetime.strptime(start, TIME_FORMAT).replace(tzinfo=UTC).timestamp()
    return TryView(
        int(index),
        int(try_number),
        "" if node == MISSING else node,
        "" if process == MISSING else process,
        state,
        tuple(json.loads(detail)["files"]),
        started,
        None if elapsed == MISSING else float(elapsed),
        error,
        final,
    )


@dataclass(frozen=True, slots=True)
class FailedFile:
    """A file of a mini-batch that failed for good: its error, how many tries it had, the log of the worker of
    its last try."""

    file: str
    error: str
    tries: int
    log: str
    """A log name of the job (``user/error/<node>/<process>.txt``, else that worker's stdout), or ""."""


def failed_files(tries: Sequence[TryView], spec: JobSpec, log_names: Iterable[str]) -> tuple[list[FailedFile], int]:
    """Each file of the mini-batches whose last try failed, once (at most FAILURES_LISTED), and how many there
    are in all."""
    known = set(log_names)
    layout = LogLayout(spec.logs_dir)
    listed: dict[str, FailedFile] = {}
    total = 0
    for _, group in groupby(tries, key=lambda attempt: attempt.index):
        batch = list(group)
        last = batch[-1]
        if not (last.final and last.failed):
            continue
        log = _worker_log(layout, known, WorkerName(last.node, last.process))
        for file in last.files:
            shown = shown_file(file, spec.input_paths)
            if shown in listed:
                continue
            total += 1
            if len(listed) < FAILURES_LISTED:
                listed[shown] = FailedFile(shown, last.error or last.state.value, len(batch), log)
    return list(listed.values()), total


def _worker_log(layout: LogLayout, known: set[str], worker: WorkerName) -> str:
    for path in (layout.error(worker), layout.stdout(worker)):
        name = path.relative_to(layout.root).as_posix()
        if name in known:
            return name
    return ""


def shown_file(file: str, inputs: Sequence[Path]) -> str:
    """A mini-batch's file as the page names it: relative to the job's input folder it is in, else its name.
    (String operations: the page names thousands of files, and pathlib's are slow.)"""
    for folder in inputs:
        prefix = str(folder).rstrip("/") + "/"
        if file.startswith(prefix) and len(file) > len(prefix):
            return file[len(prefix) :]
    return file.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Preview:
    """The first rows of an append_row output file, split into columns when every row splits alike."""

    file: str
    columns: int
    rows: list[list[str]]
    more: bool
    """The file has more rows than shown."""


def preview(spec: JobSpec, folder: Path | None, files: Sequence[str]) -> Preview | None:
    """The first rows of the job's ``output_file_name`` in ``folder``; None for a summary_only job or a job
    without that file."""
    if folder is None or spec.output_action != APPEND_ROW or spec.output_file_name not in files:
        return None
    try:
        with open(folder / spec.output_file_name, "rb") as file:
            head = file.read(PREVIEW_BYTES + 1)
    except OSError:
        return None
    lines = head[:PREVIEW_BYTES].decode("utf-8", errors="replace").splitlines()
    more = len(lines) > PREVIEW_ROWS or len(head) > PREVIEW_BYTES
    lines = lines[:PREVIEW_ROWS]
    rows = _columns(lines)
    return Preview(spec.output_file_name, max((len(row) for row in rows), default=1), rows, more)


def _columns(lines: list[str]) -> list[list[str]]:
    for delimiter in PREVIEW_DELIMITERS:
        rows = list(csv.reader(lines, delimiter=delimiter))
        widths = {len(row) for row in rows}
        if len(widths) == 1 and widths.pop() > 1:
            return rows
    return [[line] for line in lines]


def by_lane(tries: Iterable[TryView]) -> Iterator[tuple[str, list[TryView]]]:
    """The tries of each worker, workers in order of node and process, each worker's tries in order of start."""
    ordered = sorted(tries, key=lambda attempt: (attempt.node, attempt.process, attempt.started or 0.0))
    for lane, group in groupby(ordered, key=lambda attempt: attempt.lane):
        yield lane, list(group)
