"""The runtime's ledger on the SQL database: a job's plan, mini-batches and tries survive a crash of the server."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import islice
from typing import cast

from sqlalchemy import Update, bindparam, delete, insert, select, tuple_, update
from sqlalchemy.engine import Connection

from batchpoint.runtime.ledger import (
    FAILED,
    PENDING,
    SUCCEEDED,
    Attempt,
    AttemptOutcome,
    Ledger,
    MiniBatch,
    MiniBatchStatus,
    Success,
    TryEnd,
    TryStatus,
    storable,
)
from batchpoint.store.connections import Database
from batchpoint.store.leases import Fence
from batchpoint.store.rows import AttemptRow, JobPlanRow, MiniBatchRow
from batchpoint.store.sql_leases import hold

INSERT_CHUNK = 1000
READ_CHUNK = 1000


class SqlLedger(Ledger):
    def __init__(self, database: Database, fence: Fence | None = None) -> None:
        """With a fence, every write is refused (LeaseLost) once the lease has moved on."""
        self._db = database
        self._fence = fence

    @property
    def generation(self) -> int:
        return self._fence.epoch if self._fence is not None else 0

    def confirm_writer(self, job_id: str) -> None:
        with self._transaction():
            pass

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        with self._db.transaction(guarded=self._fence is None) as connection:
            if self._fence is not None:
                hold(connection, self._fence)
            yield connection

    def plan(self, job_id: str, mini_batches: Iterable[Sequence[str]]) -> bool:
        numbered = enumerate(mini_batches)
        count = 0
        with self._transaction() as connection:
            if connection.execute(select(JobPlanRow.job_id).where(JobPlanRow.job_id == job_id)).first():
                return False
            while chunk := list(islice(numbered, INSERT_CHUNK)):
                rows = [
                    {
                        "job_id": job_id,
                        "index": index,
                        "files": json.dumps(list(files)),
                        "status": PENDING,
                        "tries": 0,
                        "succeeded_items": 0,
                        "failed_items": 0,
                    }
                    for index, files in chunk
                ]
                connection.execute(insert(MiniBatchRow), rows)
                count += len(rows)
            connection.execute(insert(JobPlanRow).values(job_id=job_id, mini_batch_count=count))
        return True

    def mini_batches(self, job_id: str) -> list[MiniBatch] | None:
        with self._db.reading() as connection:
            if connection.execute(select(JobPlanRow.job_id).where(JobPlanRow.job_id == job_id)).first() is None:
                return None
            rows = connection.execute(
                select(*MINI_BATCH_COLUMNS).where(MiniBatchRow.job_id == job_id).order_by(MiniBatchRow.index)
            ).all()  # columns, not the row class, and all at once: a fifth of the time for many mini-batches
            return [
                MiniBatch(index, tuple(json.loads(files)), cast("MiniBatchStatus", status), tries, ok, bad, error)
                for index, files, status, tries, ok, bad, error in rows
            ]

    def record_tries(self, job_id: str, started: Sequence[Attempt], succeeded: Sequence[Success]) -> None:
        """One transaction of a few statements, each built once for the process and executed once for the whole
        group (executemany): SQLAlchemy's cost is per statement, not per row."""
        if not started and not succeeded:
            return
        with self._transaction() as connection:
            if started:
                started = list({(a.index, a.try_number): a for a in started}.values())  # the latest start of each try
                keys = [{"b_job": job_id, "b_index": a.index, "b_try": a.try_number} for a in started]
                connection.execute(FORGET_ATTEMPTS, keys)
                rows = [
                    {"job_id": job_id, "index": a.index, "try_number": a.try_number, "worker": a.worker,
                     "node": a.node, "process": a.process, "started": a.started}
                    for a in started
                ]  # fmt: skip
                connection.execute(START_ATTEMPTS, rows)
            if succeeded:
                values = [
                    {"b_job": job_id, "b_index": s.index, "b_try": s.try_number, "b_ok": s.succeeded_items,
                     "b_bad": s.failed_items, "b_outcome": SUCCEEDED, "b_error": None, **_end_values(s.end)}
                    for s in succeeded
                ]  # fmt: skip
                connection.execute(END_ATTEMPTS, values)
                connection.execute(SUCCEED_MINI_BATCHES, values)

    def record_failed_try(self, job_id: str, index: int, try_number: int, error: str, end: TryEnd) -> None:
        error = storable(error)
        with self._transaction() as connection:
            connection.execute(
                END_ATTEMPTS,
                {"b_job": job_id, "b_index": index, "b_try": try_number, "b_outcome": FAILED_TRY, "b_error": error,
                 **_end_values(end)},
            )  # fmt: skip
            connection.execute(self._mini_batch(job_id, index).values(tries=MiniBatchRow.tries + 1, last_error=error))

    def attempts(self, job_id: str) -> Iterator[Attempt]:
        """READ_CHUNK tries per query, each query starting past the last try of the one before."""
        after = (-1, 0)
        while True:
            with self._db.reading() as connection:
                rows = connection.execute(
                    select(*ATTEMPT_COLUMNS)
                    .where(AttemptRow.job_id == job_id, tuple_(AttemptRow.index, AttemptRow.try_number) > after)
                    .order_by(AttemptRow.index, AttemptRow.try_number)
                    .limit(READ_CHUNK)
                ).all()
            attempts = [_attempt(*row) for row in rows]
            yield from attempts
            if len(attempts) < READ_CHUNK:
                return
            after = (attempts[-1].index, attempts[-1].try_number)

    def mark_exhausted(self, job_id: str, index: int) -> None:
        files = select(MiniBatchRow.files).where(MiniBatchRow.job_id == job_id, MiniBatchRow.index == index)
        with self._transaction() as connection:
            count = len(json.loads(connection.execute(files).scalar_one()))
            connection.execute(
                self._mini_batch(job_id, index).values(status=FAILED, succeeded_items=0, failed_items=count)
            )

    def forget(self, job_id: str) -> None:
        with self._transaction() as connection:
            for row in (AttemptRow, MiniBatchRow, JobPlanRow):
                connection.execute(delete(row).where(row.job_id == job_id))

    @staticmethod
    def _mini_batch(job_id: str, index: int) -> Update:
        return update(MiniBatchRow).where(MiniBatchRow.job_id == job_id, MiniBatchRow.index == index)


FAILED_TRY = "failed"


def _end_values(end: TryEnd) -> dict[str, object]:
    return {
        "b_status": end.status,
        "b_started": end.started,
        "b_elapsed": end.elapsed_seconds,
        "b_cpu": end.process_seconds,
        "b_run": end.run_seconds,
    }


MINI_BATCH_COLUMNS = (
    MiniBatchRow.index, MiniBatchRow.files, MiniBatchRow.status, MiniBatchRow.tries, MiniBatchRow.succeeded_items,
    MiniBatchRow.failed_items, MiniBatchRow.last_error,
)  # fmt: skip
"""What `mini_batches` reads, in the order of MiniBatch's fields."""
ATTEMPT_COLUMNS = (
    AttemptRow.index, AttemptRow.try_number, AttemptRow.worker, AttemptRow.node, AttemptRow.process,
    AttemptRow.outcome, AttemptRow.error, AttemptRow.status, AttemptRow.started, AttemptRow.elapsed_seconds,
    AttemptRow.process_seconds, AttemptRow.run_seconds,
)  # fmt: skip
"""What `attempts` reads, in the order `_attempt` takes it."""


def _attempt(
    index: int, try_number: int, worker: str, node: str | None, process: str | None, outcome: str | None,
    error: str | None, status: str | None, *times: float | None,
) -> Attempt:  # fmt: skip
    """A try as the ledger records it; one recorded before its end was kept (migration 0008) has no `end`."""
    started, elapsed, cpu, run = times
    end = None if status is None else TryEnd(cast("TryStatus", status), started or 0.0, elapsed or 0.0, cpu, run)
    return Attempt(
        index,
        try_number,
        worker,
        node or "",
        process or "",
        cast("AttemptOutcome | None", outcome),
        error,
        end,
        started,
    )


_ATTEMPT_KEY = (
    AttemptRow.job_id == bindparam("b_job"),
    AttemptRow.index == bindparam("b_index"),
    AttemptRow.try_number == bindparam("b_try"),
)
"""The WHERE clause of one attempt, bound per row of an executemany."""
FORGET_ATTEMPTS = delete(AttemptRow).where(*_ATTEMPT_KEY)
START_ATTEMPTS = insert(AttemptRow)
END_ATTEMPTS = (
    update(AttemptRow)
    .where(*_ATTEMPT_KEY)
    .values(
        outcome=bindparam("b_outcome"),
        error=bindparam("b_error"),
        status=bindparam("b_status"),
        started=bindparam("b_started"),
        elapsed_seconds=bindparam("b_elapsed"),
        process_seconds=bindparam("b_cpu"),
        run_seconds=bindparam("b_run"),
    )
)
SUCCEED_MINI_BATCHES = (
    update(MiniBatchRow)
    .where(MiniBatchRow.job_id == bindparam("b_job"), MiniBatchRow.index == bindparam("b_index"))
    .values(
        status=SUCCEEDED,
        tries=MiniBatchRow.tries + 1,
        succeeded_items=bindparam("b_ok"),
        failed_items=bindparam("b_bad"),
    )
)
