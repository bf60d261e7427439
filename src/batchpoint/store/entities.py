"""Plain records the store hands out; no ORM state leaks past the store."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any

JOB_TYPE = "Microsoft.MachineLearningServices/workspaces/jobs"
"""The type the store indexes jobs by (store/indexes.py); here, so that naming it costs no SQLAlchemy import."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def to_micros(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


def from_micros(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1_000_000, UTC)


@dataclass
class Resource:
    """One ARM resource: its id keeps the caller's casing; lookups use ``key`` (the id lower-cased)."""

    id: str
    type: str
    body: dict[str, Any]
    private: dict[str, Any] = field(default_factory=dict)
    """What the server keeps with the resource and never shows: an endpoint's keys, a datastore's credentials, a
    job's run record (`jobs/run_record.py`), ..."""
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    version: int = 0
    """The stored version this copy was read at (0: not stored yet); an update must start from the latest."""

    @property
    def key(self) -> str:
        return self.id.lower()

    @property
    def name(self) -> str:
        return self.id.rsplit("/", 1)[-1]

    @property
    def parent_id(self) -> str:
        return parent_of(self.id)

    def body_json(self) -> str:
        return json.dumps(self.body, separators=(",", ":"))


def parent_of(resource_id: str) -> str:
    """The id of the ARM parent: drop the trailing ``/{type}/{name}`` pair, and a ``/providers/{namespace}``
    hop that is left bare (a workspace's parent is its resource group)."""
    parent = resource_id.rsplit("/", 2)[0]
    head, _, namespace = parent.rpartition("/")
    if head.lower().endswith("/providers"):
        return head.rsplit("/", 1)[0]
    return parent


class SortField(str, Enum):
    CREATED = "created"
    UPDATED = "updated"


@dataclass(frozen=True)
class SortOrder:
    field: SortField = SortField.CREATED
    descending: bool = False


@dataclass(frozen=True)
class JobFilter:
    """Which of an endpoint's jobs a list holds; a field left unset does not filter."""

    deployment: str | None = None
    """A deployment's name (any casing)."""
    status: str | None = None
    created_from_us: int | None = None
    """Created at or after this time (microseconds since the epoch)."""
    created_before_us: int | None = None
    """Created strictly before this time."""


@dataclass(frozen=True)
class Cursor:
    """Keyset position: the sort value and key of the last item of the previous page."""

    micros: int
    key: str


@dataclass(frozen=True)
class Listed:
    """One item of a listed page: its stored JSON as text (forwarded as is) and its keyset position."""

    id: str
    position: Cursor
    body_json: str


@dataclass(frozen=True)
class RoleGrant:
    """A role assignment as the permission checks need it: who, where, which role (and its resource id)."""

    id: str
    principal_id: str
    scope: str
    role_definition_id: str


class OperationStatus(str, Enum):
    IN_PROGRESS = "InProgress"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELED = "Canceled"

    @property
    def terminal(self) -> bool:
        return self is not OperationStatus.IN_PROGRESS


class OperationKind(str, Enum):
    PROVISION = "provision"
    UPDATE = "update"
    DELETE = "delete"


@dataclass
class Operation:
    """A long-running operation on one resource, as ARM's operation-status resource reports it."""

    id: str
    resource_id: str
    kind: OperationKind
    location: str
    status: OperationStatus = OperationStatus.IN_PROGRESS
    started_at: datetime = field(default_factory=utcnow)
    ended_at: datetime | None = None
    error_code: str | None = None
    error_message: str | None = None
    detail: dict[str, Any] | None = None
    """What the work reports while it runs (for example an environment build's last installer line)."""
