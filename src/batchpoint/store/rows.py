"""SQLAlchemy ORM rows. Only the SQL backend sees these; callers get entities."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from sqlalchemy import BigInteger, Double, Index, String, Table, Text, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from batchpoint.store.leases import LeaseKind


class Base(DeclarativeBase):
    if TYPE_CHECKING:
        # Each row class maps one plain Table (DeclarativeBase allows any FromClause, a join or a subquery too).
        __table__: ClassVar[Table]


def byte_ordered(length: int) -> String:
    """A string column compared byte by byte, so that ``'/'`` sorts before ``'0'`` and a prefix is a range:
    SQLite compares bytes already; PostgreSQL needs the ``C`` collation (a database's own may be ``en_US``)."""
    return String(length).with_variant(String(length, collation="C"), "postgresql")


class ResourceRow(Base):
    __tablename__ = "resources"

    key: Mapped[str] = mapped_column(byte_ordered(1024), primary_key=True)
    id: Mapped[str] = mapped_column(String(1024))
    parent_key: Mapped[str] = mapped_column(String(1024))
    type_key: Mapped[str] = mapped_column(String(256))
    type: Mapped[str] = mapped_column(String(256))
    body: Mapped[str] = mapped_column(Text)
    private: Mapped[str] = mapped_column(Text, default="{}")
    created_us: Mapped[int] = mapped_column(BigInteger)
    updated_us: Mapped[int] = mapped_column(BigInteger)
    version: Mapped[int] = mapped_column(BigInteger, default=1)

    __table_args__ = (
        Index("ix_resources_children_created", "parent_key", "type_key", "created_us", "key"),
        Index("ix_resources_children_updated", "parent_key", "type_key", "updated_us", "key"),
        Index("ix_resources_type", "type_key", "key"),
    )


class JobRow(Base):
    """A job's queried columns (its body is in ``resources``; see ``store/indexes.py``)."""

    __tablename__ = "jobs"

    key: Mapped[str] = mapped_column(byte_ordered(1024), primary_key=True)
    workspace_key: Mapped[str] = mapped_column(byte_ordered(1024))
    endpoint: Mapped[str | None] = mapped_column(String(256), nullable=True)
    deployment: Mapped[str | None] = mapped_column(String(256), nullable=True)
    status: Mapped[str] = mapped_column(String(32))
    created_us: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        Index("ix_jobs_endpoint", "workspace_key", "endpoint", "created_us", "key"),
        Index("ix_jobs_deployment", "workspace_key", "endpoint", "deployment", "created_us", "key"),
        Index("ix_jobs_endpoint_status", "workspace_key", "endpoint", "status", "created_us", "key"),
        Index("ix_jobs_deployment_status", "workspace_key", "endpoint", "deployment", "status", "created_us", "key"),
        Index("ix_jobs_status", "status"),
    )


class RoleAssignmentRow(Base):
    """A role assignment's columns: the permission checks load them all, without reading any JSON."""

    __tablename__ = "role_assignments"

    key: Mapped[str] = mapped_column(byte_ordered(1024), primary_key=True)
    principal_id: Mapped[str] = mapped_column(String(256))
    scope: Mapped[str] = mapped_column(String(1024))
    role_definition_id: Mapped[str] = mapped_column(String(1024))
    created_us: Mapped[int] = mapped_column(BigInteger)


class CodeHashRow(Base):
    """A code version's content hash: ``azure-ai-ml`` looks an unchanged folder up by it before every upload."""

    __tablename__ = "code_hashes"

    key: Mapped[str] = mapped_column(byte_ordered(1024), primary_key=True)
    workspace_key: Mapped[str] = mapped_column(byte_ordered(1024))
    hash_sha256: Mapped[str | None] = mapped_column(String(128), nullable=True)
    hash_version: Mapped[str] = mapped_column(String(32))
    created_us: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_code_hashes_hash", "workspace_key", "hash_sha256"),)


class OperationRow(Base):
    __tablename__ = "operations"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    resource_id: Mapped[str] = mapped_column(String(1024))
    resource_key: Mapped[str] = mapped_column(String(1024))
    kind: Mapped[str] = mapped_column(String(32))
    location: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(32), index=True)
    started_us: Mapped[int] = mapped_column(BigInteger)
    ended_us: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(256), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (
        # At most one operation in progress per resource: the database arbitrates racing writers.
        Index(
            "uq_operations_running",
            "resource_key",
            unique=True,
            sqlite_where=text("status = 'InProgress'"),
            postgresql_where=text("status = 'InProgress'"),
        ),
    )


class JobPlanRow(Base):
    """That a job's input was listed and cut into mini-batches (an empty plan is a plan too)."""

    __tablename__ = "job_plans"

    job_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    mini_batch_count: Mapped[int] = mapped_column(BigInteger)


class MiniBatchRow(Base):
    __tablename__ = "job_mini_batches"

    job_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    index: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    files: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    tries: Mapped[int] = mapped_column(BigInteger, default=0)
    succeeded_items: Mapped[int] = mapped_column(BigInteger, default=0)
    failed_items: Mapped[int] = mapped_column(BigInteger, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)


class AttemptRow(Base):
    __tablename__ = "job_attempts"

    job_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    index: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    try_number: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    worker: Mapped[str] = mapped_column(String(256))
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    node: Mapped[str | None] = mapped_column(String(32), nullable=True)
    process: Mapped[str | None] = mapped_column(String(32), nullable=True)
    status: Mapped[str | None] = mapped_column(String(24), nullable=True)
    started: Mapped[float | None] = mapped_column(Double, nullable=True)
    elapsed_seconds: Mapped[float | None] = mapped_column(Double, nullable=True)
    process_seconds: Mapped[float | None] = mapped_column(Double, nullable=True)
    run_seconds: Mapped[float | None] = mapped_column(Double, nullable=True)


class LeaseRow(Base):
    """Which server process owns a job or an operation, and until when (see `store/leases.py`)."""

    __tablename__ = "leases"

    kind: Mapped[LeaseKind] = mapped_column(String(16), primary_key=True)
    subject: Mapped[str] = mapped_column(String(1024), primary_key=True)
    owner: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)
    expires_us: Mapped[int] = mapped_column(BigInteger)
    epoch: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    """How many times the lease was claimed: a write under an earlier claim is refused (`store/leases.py`)."""

    __table_args__ = (Index("ix_leases_kind_expires", "kind", "expires_us"),)


class CancelRequestRow(Base):
    __tablename__ = "cancel_requests"

    subject: Mapped[str] = mapped_column(String(1024), primary_key=True)
    requested_us: Mapped[int] = mapped_column(BigInteger)
