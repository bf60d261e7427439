"""The one narrow contract every storage backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager

from batchpoint.runtime.ledger import Ledger
from batchpoint.store.entities import Cursor, JobFilter, Listed, Operation, Resource, RoleGrant, SortOrder
from batchpoint.store.leases import Fence, Leases


class AlreadyExists(Exception):
    """A resource with the same (case-insensitive) id is already stored."""


class VersionConflict(Exception):
    """The resource changed since it was read: the update started from an older version and was not applied."""


class FinalState(Exception):
    """The job has reached a terminal state (Completed, Failed, Canceled), which is final: it is not rewritten."""


class Store(ABC):
    """Resources, long-running operations and the job ledger.

    Each call is atomic on its own; ``transaction()`` makes several calls of one thread one atomic unit."""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[None]:
        """Every call this thread makes to the store inside the block commits together when the block ends, or
        not at all if it raises. A call that raises ``AlreadyExists`` or ``VersionConflict`` inside the block
        changes nothing, and the block may go on. Blocks nest: the outermost one commits."""

    @abstractmethod
    def fenced(self, fence: Fence) -> AbstractContextManager[None]:
        """Every transaction this thread opens inside the block (every store and ledger write, on its own or in
        ``transaction()``) is refused when ``fence`` no longer holds: it raises ``LeaseLost`` and keeps nothing.
        The check and the writes are one transaction, and a claim of the lease waits for it, so no write of an
        earlier owner lands after a claim. Reads and the leases' own calls are not fenced."""

    @abstractmethod
    def get(self, resource_id: str) -> Resource | None: ...

    @abstractmethod
    def get_body_json(self, resource_id: str) -> str | None:
        """The stored JSON body as text, for read paths that only forward it."""

    @abstractmethod
    def insert(self, resource: Resource) -> None:
        """Store a new resource (its ``version`` becomes 1); raise AlreadyExists when the id is taken."""

    @abstractmethod
    def insert_many(self, resources: Sequence[Resource]) -> None:
        """Store several new resources at once, all or none; raise AlreadyExists when an id is taken."""

    @abstractmethod
    def update(self, resource: Resource) -> None:
        """Rewrite a stored resource if it is still at ``resource.version`` (which then advances), else raise
        VersionConflict (optimistic concurrency). One deleted meanwhile stays deleted: late background work must
        not bring back what a DELETE removed. A job whose stored status is terminal is never rewritten: raise
        FinalState (checked by the update itself, on the indexed status)."""

    @abstractmethod
    def delete_tree(self, resource_id: str) -> int:
        """Delete a resource and everything below it; return how many rows went."""

    @abstractmethod
    def list_children(
        self, parent_id: str, type_: str, order: SortOrder, after: Cursor | None, limit: int
    ) -> list[Listed]:
        """Direct children of one type in the given order, strictly after a keyset cursor."""

    @abstractmethod
    def list_below(self, ancestor_id: str, type_: str, after: Cursor | None, limit: int) -> list[Resource]:
        """Resources of one type anywhere below an ancestor, oldest first, after a keyset cursor."""

    @abstractmethod
    def list_jobs(
        self,
        workspace_id: str,
        endpoint: str,
        where: JobFilter,
        order: SortOrder,
        after: Cursor | None,
        limit: int,
    ) -> list[Listed]:
        """Jobs an endpoint ran that pass ``where`` (one deployment's, a status, a creation period), in creation
        order, strictly after a cursor."""

    @abstractmethod
    def jobs_by_status(self) -> dict[str, int]:
        """How many jobs there are in each status, in one query."""

    @abstractmethod
    def role_assignments(self) -> list[RoleGrant]:
        """Every role assignment, without their bodies."""

    @abstractmethod
    def code_versions_with_hash(self, workspace_id: str, digest: str) -> list[Resource]:
        """The code versions of a workspace whose recorded content hash (``hash_sha256``) is ``digest``."""

    @abstractmethod
    def add_operation(self, operation: Operation) -> None:
        """Record a new operation; raise AlreadyExists when one is already running on that resource."""

    @abstractmethod
    def get_operation(self, operation_id: str) -> Operation | None: ...

    @abstractmethod
    def save_operation(self, operation: Operation) -> None:
        """Record the operation's progress or outcome while it is in progress; one that ended stays as it ended."""

    @abstractmethod
    def running_operation(self, resource_id: str) -> Operation | None:
        """The operation in progress on this resource, if any."""

    @abstractmethod
    def ledger(self, fence: Fence | None = None) -> Ledger:
        """The runtime's durable record of job mini-batches, kept in this store; with a fence, its writes are
        refused (LeaseLost) once the lease has moved on, and its `generation` is the fence's epoch."""

    @abstractmethod
    def leases(self) -> Leases:
        """Which server process owns each job and operation, and the cancel requests, kept in this store."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""

    def loop_reads(self) -> Store | None:
        """A view of this store for the one thread that must never wait (the server's event loop), or None when
        this backend cannot promise that: its `get`, `get_body_json` and `list_children` read on a connection of
        the view's own (never waiting for a connection of a pool) and give up at once rather than wait for a
        lock. Only for reads known to be cheap: the caller bounds them (api/fastpath.py)."""
        return None
