"""The runtime's ledger on the SQL database: a job's plan, mini-batches and tries survive a crash of the server."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import islice

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.engine import Connection

from batchpoint.runtime.ledger import FAILED, PENDING, SUCCEEDED, Attempt, Ledger, MiniBatch, Success
from batchpoint.store.connections import Database
from batchpoint.store.rows import AttemptRow, JobPlanRow, MiniBatchRow

INSERT_CHUNK = 1000


class SqlLedger(Ledger):
    def __init__(self, database: Database) -> None:
        self._db = database

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        with self._db.transaction() as connection:
            yield connection

    def plan(self, job_id: str, mini_batches: Iterable[Sequence[str]]) -> None:
        numbered = enumerate(mini_batches)
        count = 0
        with self._transaction() as connection:
            if connection.execute(select(JobPlanRow.job_id).where(JobPlanRow.job_id == job_id)).first():
                return
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

    def mini_batches(self, job_id: str) -> list[MiniBatch] | None:
        with self._db.reading() as connection:
            if connection.execute(select(JobPlanRow.job_id).where(JobPlanRow.job_id == job_id)).first() is None:
                return None
            rows = connection.execute(
                select(MiniBatchRow).where(MiniBatchRow.job_id == job_id).order_by(MiniBatchRow.index)
            )
            return [
                MiniBatch(
                    index=row.index,
                    files=tuple(json.loads(row.files)),
                    status=row.status,
                    tries=row.tries,
                    succeeded_items=row.succeeded_items,
                    failed_items=row.failed_items,
                    last_error=row.last_error,
                )
                for row in rows
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
                    {"job_id": job_id, "index": a.index, "try_number": a.try_number, "worker": a.worker}
                    for a in started
                ]
                connection.execute(START_ATTEMPTS, rows)
            if succeeded:
                values = [
                    {"b_job": job_id, "b_index": s.index, "b_try": s.try_number, "b_ok": s.succeeded_items, "b_bad": s.failed_items}
                    for s in succeeded
                ]  # fmt: skip
                connection.execute(END_ATTEMPTS, values)
                connection.execute(SUCCEED_MINI_BATCHES, values)

    def record_failed_try(self, job_id: str, index: int, try_number: int, error: str) -> None:
        with self._transaction() as connection:
            self._end_try(connection, job_id, index, try_number, "failed", error)
            connection.execute(self._mini_batch(job_id, index).values(tries=MiniBatchRow.tries + 1, last_error=error))

    def mark_exhausted(self, job_id: str, index: int) -> None:
        files = select(MiniBatchRow.files).where(MiniBatchRow.job_id == job_id, MiniBatchRow.index == index)
        with self._transaction() as connection:
            count = len(json.loads(connection.execute(files).scalar_one()))
            connection.execute(
                self._mini_batch(job_id, index).values(status=FAILED, succeeded_items=0, failed_items=count)
            )

    def forget(self, job_id: str) -> None:
        """Drop a finished job's ledger (its outcome lives on in the job resource)."""
        with self._transaction() as connection:
            for row in (AttemptRow, MiniBatchRow, JobPlanRow):
                connection.execute(delete(row).where(row.job_id == job_id))

    @staticmethod
    def _mini_batch(job_id: str, index: int):  # type: ignore[no-untyped-def]
        return update(MiniBatchRow).where(MiniBatchRow.job_id == job_id, MiniBatchRow.index == index)

    @staticmethod
    def _end_try(
        connection: Connection, job_id: str, index: int, try_number: int, outcome: str, error: str | None
    ) -> None:
        connection.execute(
            update(AttemptRow)
            .filter_by(job_id=job_id, index=index, try_number=try_number)
            .values(outcome=outcome, error=error)
        )


_ATTEMPT_KEY = (
    AttemptRow.job_id == bindparam("b_job"),
    AttemptRow.index == bindparam("b_index"),
    AttemptRow.try_number == bindparam("b_try"),
)
"""The WHERE clause of one attempt, bound per row of an executemany."""
FORGET_ATTEMPTS = delete(AttemptRow).where(*_ATTEMPT_KEY)
START_ATTEMPTS = insert(AttemptRow)
END_ATTEMPTS = update(AttemptRow).where(*_ATTEMPT_KEY).values(outcome=SUCCEEDED, error=None)
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
