"""The files written from the job's ledger when the job ends: `sys/job_report/processed_mini-batches.csv`, one
row per ended try, and the error summaries `job_error.txt` and `user/error.txt`.

Each is written whole (a temporary file, then renamed) from what the ledger and the processes' error files hold,
not from the coordinator's memory, so it is exact whatever restarts of the server the job went through: a try
that a crash cut short was never recorded as ended, and its mini-batch ran again.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import groupby

from batchpoint.runtime.executor import WorkerName, gist
from batchpoint.runtime.layout import JOB_ERROR, PROCESSED_MINI_BATCHES, README, USER_ERROR_SUMMARY, LogLayout
from batchpoint.runtime.ledger import FAILED, PENDING, SUCCEEDED, Attempt, MiniBatch
from batchpoint.runtime.report import INIT_FAILED_HEADER, JobOutcome, name_files, write_whole
from batchpoint.runtime.status import JobStatus

COLUMNS = (
    "Mini-batch Id", "Picked Count", "Node Id", "Process", "Start Time", "Total", "Succeeded", "Failed",
    "Elapsed Seconds", "Process Seconds", "Run Method Seconds", "Status", "Error Category", "Error Message",
    "Mini-batch Detail",
)  # fmt: skip
"""Azure's columns (the ParallelRunStep tuning guide), with the node that Azure's troubleshooting page says the
table shows."""
NOT_PROCESSED = "NOT_PROCESSED"
MISSING = "N/A"
KINDS_LISTED = 20
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"
EXCEPTION_CLASS = re.compile(r"([A-Za-z_][\w.]*)(:|$)")
CATEGORY = {"RUN_TIMEOUT": "Timeout", "PROCESS_EXITED": "ProcessExited"}
"""The error category of failures that raised no exception."""
FAILED_TRY = FAILED


@dataclass
class ErrorKind:
    """One distinct error: the first time it happened, and how often."""

    title: str
    first: str
    details: str
    """The log file holding every traceback of the process where it first happened."""
    traceback: str
    count: int = 1


@dataclass
class ErrorSummary:
    kinds: dict[str, ErrorKind] = field(default_factory=dict)
    short_results: int = 0
    first_short: str = ""

    def add(self, key: str, make: ErrorKind) -> None:
        kind = self.kinds.get(key)
        if kind is not None:
            kind.count += 1
        elif len(self.kinds) < KINDS_LISTED:
            self.kinds[key] = make

    def __bool__(self) -> bool:
        return bool(self.kinds or self.short_results)


def write_job_report(
    layout: LogLayout, batches: list[MiniBatch] | None, attempts: Iterator[Attempt], outcome: JobOutcome
) -> str:
    """Write the report files of an ended job from its ledger's mini-batches (None: it has no plan) and tries;
    returns the sentence that points `job_result.txt` to them."""
    summary = ErrorSummary()
    if batches is not None:
        _write_csv(layout, _rows(layout, batches, attempts, summary))
    _add_init_failures(layout, summary)
    if not summary and outcome.status == JobStatus.COMPLETED:
        return f"See logs/{README} for the layout of the logs."
    script_errors = _describe(summary)
    if script_errors:
        write_whole(layout.file(USER_ERROR_SUMMARY), script_errors)
    headline, _, rest = outcome.message.partition("\n")
    body = script_errors or (f"{rest.strip()}\n" if rest.strip() else "")
    write_whole(
        layout.file(JOB_ERROR),
        f"The job ended {outcome.status}: {headline}\n\n{body}\nSee logs/{README} for the layout of the logs.\n",
    )
    return f"See logs/{JOB_ERROR} for a summary of the errors and logs/{README} for the layout of the logs."


def _write_csv(layout: LogLayout, rows: Iterator[list[str]]) -> None:
    path = layout.file(PROCESSED_MINI_BATCHES)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "w", encoding="utf-8", errors="surrogateescape", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    temporary.replace(path)


def _rows(
    layout: LogLayout, batches: list[MiniBatch], attempts: Iterator[Attempt], summary: ErrorSummary
) -> Iterator[list[str]]:
    """Each mini-batch's ended tries in order, and a NOT_PROCESSED row for one the job ended before."""
    tries = groupby(attempts, key=lambda attempt: attempt.index)
    group = next(tries, None)
    for batch in batches:
        ended: list[Attempt] = []
        while group is not None and group[0] <= batch.index:
            if group[0] == batch.index:
                ended = [attempt for attempt in group[1] if attempt.outcome is not None]
            group = next(tries, None)
        for attempt in ended:
            yield _try_row(batch, attempt)
            if attempt.outcome == FAILED_TRY:
                _add_try_error(layout, summary, batch, attempt)
        if batch.status == PENDING:
            yield [str(batch.index), MISSING, MISSING, MISSING, MISSING, str(len(batch.files)), "0",
                   str(len(batch.files)), MISSING, MISSING, MISSING, NOT_PROCESSED, MISSING,
                   "The job ended before this mini-batch did.", _detail(batch)]  # fmt: skip
        elif batch.status == SUCCEEDED and batch.failed_items:
            summary.short_results += 1
            summary.first_short = summary.first_short or (
                f"mini-batch {batch.index} ({name_files(batch.files)}): run() returned "
                f"{batch.succeeded_items} rows for {len(batch.files)} files"
            )


def _try_row(batch: MiniBatch, attempt: Attempt) -> list[str]:
    total = len(batch.files)
    succeeded = batch.succeeded_items if attempt.outcome == SUCCEEDED else 0
    end = attempt.end
    status = end.status if end is not None else ("RUN_DONE" if attempt.outcome == SUCCEEDED else MISSING)
    error = attempt.error or ""
    return [
        str(batch.index),
        str(attempt.try_number),
        attempt.node or MISSING,
        attempt.process or MISSING,
        datetime.fromtimestamp(end.started, UTC).strftime(TIME_FORMAT) if end is not None else MISSING,
        str(total),
        str(succeeded),
        str(total - succeeded),
        _seconds(end.elapsed_seconds if end else None),
        _seconds(end.process_seconds if end else None),
        _seconds(end.run_seconds if end else None),
        status,
        _category(status, error) if error else "",
        gist(error) if error else "",
        _detail(batch),
    ]


def _seconds(value: float | None) -> str:
    return MISSING if value is None else f"{value:.6f}"


def _category(status: str, error: str) -> str:
    """The exception's class, from the last line of its traceback; else what the status says happened."""
    if status in CATEGORY:
        return CATEGORY[status]
    match = EXCEPTION_CLASS.match(gist(error))
    return match.group(1) if match else MISSING


def _detail(batch: MiniBatch) -> str:
    return json.dumps({"files": list(batch.files)}, ensure_ascii=False)


def _add_try_error(layout: LogLayout, summary: ErrorSummary, batch: MiniBatch, attempt: Attempt) -> None:
    error = attempt.error or ""
    status = attempt.end.status if attempt.end is not None else MISSING
    title = f"{status}: {gist(error)}"
    summary.add(
        title,
        ErrorKind(
            title,
            f"mini-batch {batch.index}, try {attempt.try_number}, in {attempt.worker}; "
            f"files: {name_files(batch.files)}",
            layout.relative(layout.error(WorkerName(attempt.node, attempt.process))),
            error.strip(),
        ),
    )


def _add_init_failures(layout: LogLayout, summary: ErrorSummary) -> None:
    """Failed init() calls, from the processes' error files: a process whose init() failed wrote that one block
    and exited, so each such file is one failure, whatever restarts the job went through."""
    for path in sorted(layout.root.glob("user/error/*/process*.txt")):
        header, _, error = path.read_text(encoding="utf-8", errors="replace").partition("\n")
        if INIT_FAILED_HEADER not in header:
            continue
        title = f"init() failed: {gist(error)}"
        worker = header.split(INIT_FAILED_HEADER, 1)[1]
        summary.add(title, ErrorKind(title, f"in {worker}", layout.relative(path), error.strip()))


def _describe(summary: ErrorSummary) -> str:
    """The errors of the scoring script, each kind once, with its first occurrence."""
    if not summary:
        return ""
    out = io.StringIO()
    out.write(
        "Errors of the scoring script, each kind once with where it first happened (every occurrence's traceback "
        "is in the processes' files under logs/user/error/):\n"
    )
    for number, kind in enumerate(summary.kinds.values(), start=1):
        times = "once" if kind.count == 1 else f"{kind.count} times"
        out.write(f"\n{number}. {kind.title}\n   {times}; first {kind.first}\n   Details: {kind.details}\n")
        out.write("".join(f"   {line}\n" for line in kind.traceback.splitlines()))
    if len(summary.kinds) >= KINDS_LISTED:
        out.write(f"\n(The first {KINDS_LISTED} kinds of error are listed.)\n")
    if summary.short_results:
        out.write(
            f"\nShort results: {summary.short_results} mini-batch(es) returned fewer rows than files, whose missing "
            f"items count as failed; first {summary.first_short}.\n"
        )
    return out.getvalue()
