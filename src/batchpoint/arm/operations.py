"""Long-running operations: record them, run their work in the background, report ARM operation status.

Work is keyed by operation kind and resource type, so every replica can take over an operation that was left
in progress (by a crash or a stop): each piece of work is idempotent on its resource.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from batchpoint.arm.errors import ArmError, conflict
from batchpoint.arm.ids import PROVIDER, ArmPath, type_of
from batchpoint.cluster.faults import is_transient
from batchpoint.cluster.ownership import OwnedWorkPool, Ownership
from batchpoint.runtime.ledger import TakenOver
from batchpoint.store import AlreadyExists, Store
from batchpoint.store.entities import Operation, OperationKind, OperationStatus, Resource, utcnow
from batchpoint.store.leases import OPERATION, LeaseKey

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
    """Runs operation work on a small thread pool and records the outcome in the store.

    Each operation is owned through a lease (`cluster/ownership.py`): the process that accepted the request
    runs it; when that process dies or stops, another one (or the same after a restart) takes it over and runs
    its (idempotent) work again."""

    def __init__(
        self,
        store: Store,
        ownership: Ownership,
        stopping: threading.Event,
        delay_seconds: float = 0.0,
        workers: int = 4,
    ) -> None:
        self._store = store
        self._ownership = ownership
        self._stopping = stopping
        self._delay = delay_seconds
        self._pool = OwnedWorkPool(ownership, OPERATION, workers, stopping, self._run)
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
            self._ownership.add(LeaseKey(OPERATION, operation.id))
            yield operation
        self._pool.start(operation.id)

    def shutdown(self) -> None:
        """Stop taking work and wait for the running work (environment builds are stopped by their cache)."""
        self._pool.shutdown()

    def _run(self, operation_id: str) -> None:
        """Run the operation under the fence of this process's claim: its writes (the operation's state, the
        resource's) are refused once another process has taken it over, and it stops here then."""
        fence = self._ownership.fence(LeaseKey(OPERATION, operation_id))
        if fence is None:
            return  # lost before it started here: whoever claims it next runs it
        try:
            with self._store.fenced(fence):
                ended = self._run_owned(operation_id)
        except TakenOver as error:
            self._ownership.lost(fence, error)
            return
        except Exception as error:
            ended = not is_transient(error)
            log.warning(
                "operation %s was interrupted (%s)",
                operation_id,
                "dropped" if ended else "it runs again",
                exc_info=True,
            )
        self._ownership.let_go(fence, ended)

    def _run_owned(self, operation_id: str) -> bool:
        """Run the work; False when it was interrupted (a stop, a transient fault) and must run again."""
        operation = self._store.get_operation(operation_id)
        if operation is None or operation.status.terminal:
            return True
        if self._delay and self._stopping.wait(self._delay):
            return False
        work = self._work.get((operation.kind, type_of(operation.resource_id).lower()))
        try:
            if work is not None:
                work(self._store.get(operation.resource_id), lambda detail: self._report(operation, detail))
        except ArmError as exc:
            self._finish(operation, exc)
        except TakenOver:
            raise
        except Exception as error:  # the operation must end, whatever its work raised, unless it was interrupted
            if self.runs_again(error):
                return False
            log.exception("operation %s failed", operation_id)
            self._finish(operation, ArmError(500, "InternalError", "The operation failed; see the server's log."))
        else:
            self._finish(operation, None)
        return True

    def runs_again(self, error: Exception) -> bool:
        """Whether work that raised `error` was interrupted (the server stopping, a transient fault, another
        process taking it over) and will run again; else its operation ends Failed with the error (an ArmError's,
        or InternalError)."""
        if isinstance(error, ArmError):
            return False
        return isinstance(error, TakenOver) or self._stopping.is_set() or is_transient(error)

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
