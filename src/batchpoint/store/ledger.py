"""The runtime's ledger on the SQL database: a job's plan, mini-batches and tries survive a crash of the server."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import islice

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from batchpoint.store.connections import Database

from batchpoint.runtime.ledger import FAILED, PENDING, SUCCEEDED, Ledger, MiniBatch
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
                    {"job_id": job_id, "index": index, "files": json.dumps(list(files)), "status": PENDING,
                     "tries": 0, "succeeded_items": 0, "failed_items": 0}
                    for index, files in chunk
                ]
                connection.execute(insert(MiniBatchRow), rows)
                count += len(rows)
            connection.execute(insert(JobPlanRow).values(job_id=job_id, mini_batch_count=count))

    def mini_batches(self, job_id: str) -> list[MiniBatch] | None:
        with self._db.engine.connect() as connection:
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

    def start_attempt(self, job_id: str, index: int, try_number: int, worker: str) -> None:
        key = {"job_id": job_id, "index": index, "try_number": try_number}
        with self._transaction() as connection:
            connection.execute(delete(AttemptRow).filter_by(**key))
            connection.execute(insert(AttemptRow).values(**key, worker=worker))

    def record_success(self, job_id: str, index: int, try_number: int, succeeded_items: int, failed_items: int) -> None:
        with self._transaction() as connection:
            self._end_try(connection, job_id, index, try_number, SUCCEEDED, None)
            connection.execute(
                self._mini_batch(job_id, index).values(
                    status=SUCCEEDED,
                    tries=MiniBatchRow.tries + 1,
                    succeeded_items=succeeded_items,
                    failed_items=failed_items,
                )
            )

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
