"""Long-running operations: record them, run their work in the background, report ARM operation status.

Work is keyed by operation kind and resource type, so every replica can pick up an operation that was left
in progress (by a crash or a stop) when it starts: each piece of work is idempotent on its resource.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from batchpoint.services.errors import ArmError, conflict
from batchpoint.services.ids import PROVIDER, ArmPath, type_of
from batchpoint.store import AlreadyExists, Store
from batchpoint.store.entities import Operation, OperationKind, OperationStatus, Resource, utcnow

log = logging.getLogger(__name__)

Progress = Callable[[dict[str, Any]], None]
"""Work reports what it is doing; the operation status shows it under ``properties``."""
Work = Callable[[Resource | None, Progress], None]


def iso(moment: Any) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z" if moment else None


@dataclass(frozen=True)
class PollingUrls:
    async_operation: str
    location: str


class OperationRunner:
    """Runs operation work on a small thread pool and records the outcome in the store."""

    def __init__(self, store: Store, delay_seconds: float = 0.0, workers: int = 4) -> None:
        self._store = store
        self._delay = delay_seconds
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="operation")
        self._work: dict[tuple[OperationKind, str], Work] = {}

    def register(self, kind: OperationKind, resource_type: str, work: Work) -> None:
        self._work[(kind, resource_type.lower())] = work

    @contextmanager
    def claim(self, resource_id: str, kind: OperationKind, location: str) -> Iterator[Operation]:
        """Claim the resource for a new operation (409 if one is running), in one transaction with what the block
        reads and writes: the block reads the resource after the claim, so no other writer slips in between, and
        if it raises, neither the operation nor its writes are kept. The work starts once the transaction commits.
        """
        operation = Operation(id=str(uuid.uuid4()), resource_id=resource_id, kind=kind, location=location or "local")
        with self._store.transaction():
            try:
                self._store.add_operation(operation)
            except AlreadyExists:
                raise conflict(
                    f"There is already an operation in progress on '{resource_id}'. Wait for it to finish and retry."
                ) from None
            yield operation
        self._pool.submit(self._run, operation.id)

    def resume(self) -> int:
        """Schedule again every operation still in progress (after a restart)."""
        pending = self._store.running_operations()
        for operation in pending:
            self._pool.submit(self._run, operation.id)
        return len(pending)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)

    def _run(self, operation_id: str) -> None:
        operation = self._store.get_operation(operation_id)
        if operation is None or operation.status.terminal:
            return
        if self._delay:
            time.sleep(self._delay)
        work = self._work.get((operation.kind, type_of(operation.resource_id).lower()))
        try:
            if work is not None:
                work(self._store.get(operation.resource_id), lambda detail: self._report(operation, detail))
            self._finish(operation, None)
        except ArmError as exc:
            self._finish(operation, exc)
        except Exception:  # the operation must end, whatever its work raised
            log.exception("operation %s failed", operation_id)
            self._finish(operation, ArmError(500, "InternalError", "The operation failed; see the server's log."))

    def _report(self, operation: Operation, detail: dict[str, Any]) -> None:
        operation.detail = detail
        self._store.save_operation(operation)

    def _finish(self, operation: Operation, error: ArmError | None) -> None:
        operation.ended_at = utcnow()
        if error is None:
            operation.status = OperationStatus.SUCCEEDED
        else:
            operation.status = OperationStatus.FAILED
            operation.error_code, operation.error_message = error.code, error.message
        self._store.save_operation(operation)


def polling_urls(base_url: str, operation: Operation, api_version: str) -> PollingUrls:
    subscription = ArmPath.parse(operation.resource_id).subscription
    prefix = f"{base_url}/subscriptions/{subscription}/providers/{PROVIDER}/locations/{quote(operation.location)}"
    query = f"?api-version={quote(api_version)}"
    return PollingUrls(
        async_operation=f"{prefix}/mfeOperationsStatus/{operation.id}{query}",
        location=f"{prefix}/mfeOperationResults/{operation.id}{query}",
    )


def status_body(operation: Operation, status_url: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": status_url,
        "name": operation.id,
        "status": operation.status.value,
        "startTime": iso(operation.started_at),
        "percentComplete": 100.0 if operation.status.terminal else 0.0,
    }
    if operation.detail:
        body["properties"] = operation.detail
    if operation.ended_at:
        body["endTime"] = iso(operation.ended_at)
    if operation.error_code:
        body["error"] = {"code": operation.error_code, "message": operation.error_message or ""}
    return body
