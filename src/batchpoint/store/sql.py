"""SQLAlchemy backend for SQLite (embedded default, WAL) and PostgreSQL (several API replicas)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from typing import Any

from sqlalchemy import Select, Table, bindparam, delete, func, insert, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.compiler import SQLCompiler

from batchpoint.runtime.status import TERMINAL
from batchpoint.store.base import AlreadyExists, FinalState, Store, VersionConflict
from batchpoint.store.connections import Database
from batchpoint.store.entities import (
    JOB_TYPE,
    Cursor,
    JobFilter,
    Listed,
    Operation,
    OperationKind,
    OperationStatus,
    Resource,
    RoleGrant,
    SortField,
    SortOrder,
    from_micros,
    to_micros,
)
from batchpoint.store.indexes import INDEXED, indexed_row
from batchpoint.store.leases import Fence
from batchpoint.store.ledger import SqlLedger
from batchpoint.store.migrate import upgrade_to_head
from batchpoint.store.rows import CodeHashRow, JobRow, OperationRow, ResourceRow, RoleAssignmentRow
from batchpoint.store.sql_leases import SqlLeases, hold

RESOURCES = ResourceRow.__table__
OPERATIONS = OperationRow.__table__
JOBS, ROLE_ASSIGNMENTS, CODE_HASHES = JobRow.__table__, RoleAssignmentRow.__table__, CodeHashRow.__table__
INDEXED_TABLES = tuple(indexed.table for indexed in INDEXED.values())
AFTER_SLASH = chr(ord("/") + 1)
"""Keys below ``k`` are exactly those in ``[k + "/", k + AFTER_SLASH)``: a range on the primary key (compared byte
by byte: the key column has the ``C`` collation on PostgreSQL, and SQLite compares bytes)."""
REWRITTEN = ("id", "type", "type_key", "body", "private", "updated_us")


def below(column: Any, key: str) -> Any:
    """The keys strictly below ``key`` in the id tree, as a range predicate the primary key index serves."""
    return (column >= key + "/") & (column < key + AFTER_SLASH)


class SqlStore(Store):
    def __init__(self, url: str) -> None:
        self._db = Database(url)
        self.engine = self._db.engine
        upgrade_to_head(self.engine)
        self._compiled_sql: dict[Select, tuple[SQLCompiler, tuple[str, ...] | None]] = {}
        self._own: Any = None
        """The connection of a `loop_reads` view, which only that view's thread uses."""

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._db.transaction():
            yield

    @contextmanager
    def fenced(self, fence: Fence) -> Iterator[None]:
        with self._db.guarded(lambda connection: hold(connection, fence)):
            yield

    def close(self) -> None:
        self._db.dispose()

    def ledger(self, fence: Fence | None = None) -> SqlLedger:
        return SqlLedger(self._db, fence)

    def leases(self) -> SqlLeases:
        return SqlLeases(self._db)

    def get(self, resource_id: str) -> Resource | None:
        rows = self._read(RESOURCE_BY_KEY, {"key": resource_id.lower()})
        return _resource(rows[0]) if rows else None

    def get_body_json(self, resource_id: str) -> str | None:
        rows = self._read(BODY_BY_KEY, {"key": resource_id.lower()})
        return rows[0][0] if rows else None

    def _read(self, statement: Select, parameters: dict[str, Any]) -> Sequence[Any]:
        """The hot read paths go straight to the driver with SQL compiled once per statement: SQLAlchemy's
        per-execution overhead is several times the cost of these primary-key and index reads. Inside a
        transaction they read on its connection, and so see what it wrote."""
        compiled, order = self._compiled(statement)
        values = compiled.construct_params(parameters)
        bound = tuple(values[name] for name in order) if order is not None else values
        current = self._db.current()
        if current is not None:
            return current.exec_driver_sql(compiled.string, bound).fetchall()
        if self._own is not None:
            cursor = self._own.cursor()
            try:
                return cursor.execute(compiled.string, bound).fetchall()
            finally:
                cursor.close()
        connection = self.engine.raw_connection()
        try:
            cursor = connection.cursor()
            cursor.execute(compiled.string, bound)
            rows = cursor.fetchall()
            cursor.close()
            connection.commit()
            return rows
        finally:
            connection.close()

    def loop_reads(self) -> SqlStore | None:
        """On SQLite: a read here is a B-tree lookup in a local file that takes tens of microseconds and, in WAL
        mode, never waits for a writer; the view's connection has no busy timeout, so the rare lock (a checkpoint)
        fails the read at once instead. On PostgreSQL every read is a network round trip: None."""
        if self.engine.dialect.name != "sqlite":
            return None
        view = copy.copy(self)
        pooled = self.engine.raw_connection()
        pooled.detach()  # the view's for good, never back to the pool
        view._own = pooled.dbapi_connection
        view._own.execute("PRAGMA busy_timeout=0")
        return view

    def _compiled(self, statement: Select) -> tuple[SQLCompiler, tuple[str, ...] | None]:
        cached = self._compiled_sql.get(statement)
        if cached is None:
            compiled = statement.compile(dialect=self.engine.dialect)
            assert isinstance(compiled, SQLCompiler)  # a SELECT compiles to SQL
            order = tuple(compiled.positiontup) if compiled.positional and compiled.positiontup else None
            cached = self._compiled_sql[statement] = (compiled, order)
        return cached

    def insert(self, resource: Resource) -> None:
        self.insert_many([resource])

    def insert_many(self, resources: Sequence[Resource]) -> None:
        """One multi-row statement per table (a job with its steps, a benchmark's 50,000 jobs)."""
        rows = [{**_resource_values(resource), "version": 1} for resource in resources]
        indexed: dict[Table, list[dict[str, Any]]] = {}
        for resource, row in zip(resources, rows, strict=True):
            derived = indexed_row(resource, row["created_us"])
            if derived is not None:
                indexed.setdefault(derived[0], []).append(derived[1])
        try:
            with self._db.statement() as connection:
                connection.execute(insert(RESOURCES), rows)
                for table, table_rows in indexed.items():
                    connection.execute(insert(table), table_rows)
        except IntegrityError as exc:
            raise AlreadyExists(", ".join(resource.id for resource in resources)) from exc
        for resource in resources:
            resource.version = 1

    def update(self, resource: Resource) -> None:
        values = {name: value for name, value in _resource_values(resource).items() if name in REWRITTEN}
        same_version = (RESOURCES.c.key == resource.key) & (RESOURCES.c.version == resource.version)
        indexed = indexed_row(resource, 0)
        if resource.type.lower() == JOB_TYPE_KEY:
            same_version &= ~ended_job(resource.key).exists()
        with self._db.statement() as connection:
            written = connection.execute(
                update(RESOURCES).where(same_version).values(**values, version=resource.version + 1)
            )
            if written.rowcount == 0:
                if connection.execute(ended_job(resource.key)).first():
                    raise FinalState(resource.id)
                if connection.execute(select(RESOURCES.c.key).where(RESOURCES.c.key == resource.key)).first():
                    raise VersionConflict(resource.id)
                return
            if indexed is not None:
                table, columns = indexed
                derived = {name: value for name, value in columns.items() if name not in ("key", "created_us")}
                connection.execute(update(table).where(table.c.key == resource.key).values(**derived))
        resource.version += 1

    def delete_tree(self, resource_id: str) -> int:
        key = resource_id.lower()
        with self._db.statement() as connection:
            for table in INDEXED_TABLES:
                connection.execute(delete(table).where((table.c.key == key) | below(table.c.key, key)))
            result = connection.execute(delete(RESOURCES).where((RESOURCES.c.key == key) | below(RESOURCES.c.key, key)))
            return result.rowcount or 0

    def list_children(
        self, parent_id: str, type_: str, order: SortOrder, after: Cursor | None, limit: int
    ) -> list[Listed]:
        parameters = {"parent": parent_id.lower(), "type": type_.lower(), "limit": limit}
        if after is not None:
            parameters |= {"micros": after.micros, "after_key": after.key}
        return [_listed(row) for row in self._read(_children_query(order, after is not None), parameters)]

    def list_below(self, ancestor_id: str, type_: str, after: Cursor | None, limit: int) -> list[Resource]:
        """Served by ``ix_resources_type`` (type, key): the type and the key range select the rows."""
        query = select(*RESOURCE_FIELDS).where(
            RESOURCES.c.type_key == type_.lower(), below(RESOURCES.c.key, ancestor_id.lower())
        )
        if after is not None:
            query = query.where(tuple_(RESOURCES.c.created_us, RESOURCES.c.key) > tuple_(after.micros, after.key))
        query = query.order_by(RESOURCES.c.created_us, RESOURCES.c.key).limit(limit)
        with self._db.reading() as connection:
            return [_resource(row) for row in connection.execute(query)]

    def list_jobs(
        self,
        workspace_id: str,
        endpoint: str,
        where: JobFilter,
        order: SortOrder,
        after: Cursor | None,
        limit: int,
    ) -> list[Listed]:
        parameters: dict[str, Any] = {"workspace": workspace_id.lower(), "endpoint": endpoint.lower(), "limit": limit}
        filters = {
            "deployment": where.deployment.lower() if where.deployment is not None else None,
            "status": where.status,
            "created_from": where.created_from_us,
            "created_before": where.created_before_us,
        }
        parameters |= {name: value for name, value in filters.items() if value is not None}
        if after is not None:
            parameters |= {"micros": after.micros, "after_key": after.key}
        used = frozenset(name for name, value in filters.items() if value is not None)
        query = _jobs_query(order.descending, used, after is not None)
        return [_listed(row) for row in self._read(query, parameters)]

    def jobs_by_status(self) -> dict[str, int]:
        query = select(JOBS.c.status, func.count()).group_by(JOBS.c.status)
        with self._db.reading() as connection:
            return {str(state): count for state, count in connection.execute(query)}

    def role_assignments(self) -> list[RoleGrant]:
        table = ROLE_ASSIGNMENTS
        query = select(RESOURCES.c.id, table.c.principal_id, table.c.scope, table.c.role_definition_id).join(
            RESOURCES, RESOURCES.c.key == table.c.key
        )
        with self._db.reading() as connection:
            return [RoleGrant(*row) for row in connection.execute(query.order_by(table.c.created_us, table.c.key))]

    def code_versions_with_hash(self, workspace_id: str, digest: str) -> list[Resource]:
        query = (
            select(*RESOURCE_FIELDS)
            .join(CODE_HASHES, CODE_HASHES.c.key == RESOURCES.c.key)
            .where(CODE_HASHES.c.workspace_key == workspace_id.lower(), CODE_HASHES.c.hash_sha256 == digest)
        )
        with self._db.reading() as connection:
            return [_resource(row) for row in connection.execute(query.order_by(CODE_HASHES.c.created_us))]

    def add_operation(self, operation: Operation) -> None:
        try:
            with self._db.statement() as connection:
                connection.execute(insert(OPERATIONS).values(**_operation_values(operation)))
        except IntegrityError as exc:
            raise AlreadyExists(operation.resource_id) from exc

    def get_operation(self, operation_id: str) -> Operation | None:
        with self._db.reading() as connection:
            row = connection.execute(select(OPERATIONS).where(OPERATIONS.c.id == operation_id)).first()
            return _operation(row) if row else None

    def save_operation(self, operation: Operation) -> None:
        values = _operation_values(operation)
        in_progress = (OPERATIONS.c.id == operation.id) & (OPERATIONS.c.status == OperationStatus.IN_PROGRESS.value)
        with self._db.statement() as connection:
            connection.execute(update(OPERATIONS).where(in_progress).values(**values))

    def running_operation(self, resource_id: str) -> Operation | None:
        query = select(OPERATIONS).where(
            OPERATIONS.c.resource_key == resource_id.lower(), OPERATIONS.c.status == OperationStatus.IN_PROGRESS.value
        )
        with self._db.reading() as connection:
            row = connection.execute(query.limit(1)).first()
            return _operation(row) if row else None


RESOURCE_FIELDS = tuple(
    RESOURCES.c[name] for name in ("id", "type", "body", "private", "created_us", "updated_us", "version")
)
JOB_TYPE_KEY = JOB_TYPE.lower()


def ended_job(key: str) -> Select:
    """The job of this key if its indexed status is terminal (a terminal state is final)."""
    return select(JOBS.c.key).where(JOBS.c.key == key, JOBS.c.status.in_(TERMINAL))


RESOURCE_BY_KEY = select(*RESOURCE_FIELDS).where(RESOURCES.c.key == bindparam("key"))
BODY_BY_KEY = select(RESOURCES.c.body).where(RESOURCES.c.key == bindparam("key"))


@cache
def _children_query(order: SortOrder, with_cursor: bool) -> Select:
    """Built once per shape: the read path of every list page."""
    sort_column = RESOURCES.c.created_us if order.field is SortField.CREATED else RESOURCES.c.updated_us
    query = select(RESOURCES.c.id, RESOURCES.c.key, sort_column, RESOURCES.c.body).where(
        RESOURCES.c.parent_key == bindparam("parent"), RESOURCES.c.type_key == bindparam("type")
    )
    if with_cursor:
        position, boundary = tuple_(sort_column, RESOURCES.c.key), tuple_(bindparam("micros"), bindparam("after_key"))
        query = query.where(position < boundary if order.descending else position > boundary)
    direction = (lambda column: column.desc()) if order.descending else (lambda column: column.asc())
    return query.order_by(direction(sort_column), direction(RESOURCES.c.key)).limit(bindparam("limit"))


_JOB_FILTERS = {
    "deployment": lambda: JOBS.c.deployment == bindparam("deployment"),
    "status": lambda: JOBS.c.status == bindparam("status"),
    "created_from": lambda: JOBS.c.created_us >= bindparam("created_from"),
    "created_before": lambda: JOBS.c.created_us < bindparam("created_before"),
}
"""A job list's filters by the name of their bound parameter."""


@cache
def _jobs_query(descending: bool, filters: frozenset[str], with_cursor: bool) -> Select:
    """The jobs of an endpoint that pass ``filters`` (see ``_JOB_FILTERS``) in creation order: ``ix_jobs_endpoint``,
    ``ix_jobs_deployment`` and their ``_status`` twins serve the filter, the order and the keyset cursor alike."""
    query = (
        select(RESOURCES.c.id, JOBS.c.key, JOBS.c.created_us, RESOURCES.c.body)
        .join(RESOURCES, RESOURCES.c.key == JOBS.c.key)
        .where(JOBS.c.workspace_key == bindparam("workspace"), JOBS.c.endpoint == bindparam("endpoint"))
    )
    for name in sorted(filters):
        query = query.where(_JOB_FILTERS[name]())
    if with_cursor:
        position, boundary = tuple_(JOBS.c.created_us, JOBS.c.key), tuple_(bindparam("micros"), bindparam("after_key"))
        query = query.where(position < boundary if descending else position > boundary)
    direction = (lambda column: column.desc()) if descending else (lambda column: column.asc())
    return query.order_by(direction(JOBS.c.created_us), direction(JOBS.c.key)).limit(bindparam("limit"))


def _resource_values(resource: Resource) -> dict[str, Any]:
    return {
        "key": resource.key,
        "id": resource.id,
        "parent_key": resource.parent_id.lower(),
        "type_key": resource.type.lower(),
        "type": resource.type,
        "body": resource.body_json(),
        "private": json.dumps(resource.private),
        "created_us": to_micros(resource.created_at),
        "updated_us": to_micros(resource.updated_at),
    }


def _listed(row: Sequence[Any]) -> Listed:
    """A row of the list queries: (id, key, created_us, body)."""
    return Listed(id=row[0], position=Cursor(micros=row[2], key=row[1]), body_json=row[3])


def _resource(row: Sequence[Any]) -> Resource:
    """A resource from a row of ``RESOURCE_FIELDS``."""
    id_, type_, body, private, created_us, updated_us, version = row
    return Resource(
        id=id_,
        type=type_,
        body=json.loads(body),
        private=json.loads(private or "{}"),
        created_at=from_micros(created_us),
        updated_at=from_micros(updated_us),
        version=version,
    )


def _operation_values(operation: Operation) -> dict[str, Any]:
    return {
        "id": operation.id,
        "resource_id": operation.resource_id,
        "resource_key": operation.resource_id.lower(),
        "kind": operation.kind.value,
        "location": operation.location,
        "status": operation.status.value,
        "started_us": to_micros(operation.started_at),
        "ended_us": to_micros(operation.ended_at) if operation.ended_at else None,
        "error_code": operation.error_code,
        "error_message": operation.error_message,
        "detail": json.dumps(operation.detail) if operation.detail is not None else None,
    }


def _operation(row: Any) -> Operation:
    return Operation(
        id=row.id,
        resource_id=row.resource_id,
        kind=OperationKind(row.kind),
        location=row.location,
        status=OperationStatus(row.status),
        started_at=from_micros(row.started_us),
        ended_at=from_micros(row.ended_us) if row.ended_us is not None else None,
        error_code=row.error_code,
        error_message=row.error_message,
        detail=json.loads(row.detail) if row.detail is not None else None,
    )
