"""SQLAlchemy backend for SQLite (embedded default, WAL) and PostgreSQL (several API replicas)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

from sqlalchemy import JSON, Select, bindparam, cast, create_engine, delete, event, func, select, tuple_, type_coerce, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Compiled, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from batchpoint.store.base import AlreadyExists, Store
from batchpoint.store.entities import (
    Cursor,
    Listed,
    Operation,
    OperationKind,
    OperationStatus,
    Resource,
    SortField,
    SortOrder,
    from_micros,
    to_micros,
)
from batchpoint.store.ledger import SqlLedger
from batchpoint.store.migrate import upgrade_to_head
from batchpoint.store.rows import OperationRow, ResourceRow


def _enable_sqlite_wal(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False}, pool_size=20, max_overflow=20)
        _enable_sqlite_wal(engine)
        return engine
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


class SqlStore(Store):
    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        upgrade_to_head(self.engine)
        self._compiled_sql: dict[Select, tuple[Compiled, tuple[str, ...] | None]] = {}
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    def close(self) -> None:
        self.engine.dispose()

    def ledger(self) -> SqlLedger:
        return SqlLedger(self.engine)

    def get(self, resource_id: str) -> Resource | None:
        with self._session() as session:
            row = session.get(ResourceRow, resource_id.lower())
            return _resource(row) if row else None

    def get_body_json(self, resource_id: str) -> str | None:
        rows = self._read(BODY_BY_KEY, {"key": resource_id.lower()})
        return rows[0][0] if rows else None

    def _read(self, statement: Select, parameters: dict[str, Any]) -> list[tuple[Any, ...]]:
        """The hot read paths go straight to the driver with SQL compiled once per statement: SQLAlchemy's
        per-execution overhead is several times the cost of these primary-key and index reads."""
        compiled, order = self._compiled(statement)
        values = compiled.construct_params(parameters)
        bound = tuple(values[name] for name in order) if order is not None else values
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

    def _compiled(self, statement: Select) -> tuple[Compiled, tuple[str, ...] | None]:
        cached = self._compiled_sql.get(statement)
        if cached is None:
            compiled = statement.compile(dialect=self.engine.dialect)
            order = tuple(compiled.positiontup) if compiled.positional and compiled.positiontup else None
            cached = self._compiled_sql[statement] = (compiled, order)
        return cached

    def insert(self, resource: Resource) -> None:
        try:
            with self._session() as session:
                session.add(_resource_row(resource))
        except IntegrityError as exc:
            raise AlreadyExists(resource.id) from exc

    def update(self, resource: Resource) -> None:
        row = _resource_row(resource)
        values = {column: getattr(row, column) for column in ("id", "type", "type_key", "body", "secrets", "updated_us")}
        with self._session() as session:
            session.execute(update(ResourceRow).where(ResourceRow.key == row.key).values(**values))

    def delete_tree(self, resource_id: str) -> int:
        key = resource_id.lower()
        with self._session() as session:
            below = ResourceRow.key.startswith(key + "/", autoescape=True)
            result = session.execute(delete(ResourceRow).where((ResourceRow.key == key) | below))
            return result.rowcount or 0

    def list_children(
        self, parent_id: str, type_: str, order: SortOrder, after: Cursor | None, limit: int
    ) -> list[Listed]:
        parameters = {"parent": parent_id.lower(), "type": type_.lower(), "limit": limit}
        if after is not None:
            parameters |= {"micros": after.micros, "after_key": after.key}
        rows = self._read(_children_query(order, after is not None), parameters)
        return [Listed(id=row[0], position=Cursor(micros=row[2], key=row[1]), body_json=row[3]) for row in rows]

    def list_below(self, ancestor_id: str, type_: str, after: Cursor | None, limit: int) -> list[Resource]:
        key = ancestor_id.lower()
        query = select(ResourceRow).where(
            ResourceRow.key.startswith(key + "/", autoescape=True), ResourceRow.type_key == type_.lower()
        )
        if after is not None:
            query = query.where(tuple_(ResourceRow.created_us, ResourceRow.key) > tuple_(after.micros, after.key))
        query = query.order_by(ResourceRow.created_us, ResourceRow.key).limit(limit)
        with self._session() as session:
            return [_resource(row) for row in session.scalars(query)]

    def count_by_status(self, type_: str) -> dict[str, int]:
        body = cast(ResourceRow.body, JSONB) if self.engine.dialect.name == "postgresql" else type_coerce(ResourceRow.body, JSON)
        status = body[("properties", "status")].as_string()
        query = select(status, func.count()).where(ResourceRow.type_key == type_.lower()).group_by(status)
        with self._session() as session:
            return {str(state): count for state, count in session.execute(query)}

    def add_operation(self, operation: Operation) -> None:
        try:
            with self._session() as session:
                session.add(_operation_row(operation))
        except IntegrityError as exc:
            raise AlreadyExists(operation.resource_id) from exc

    def get_operation(self, operation_id: str) -> Operation | None:
        with self._session() as session:
            row = session.get(OperationRow, operation_id)
            return _operation(row) if row else None

    def save_operation(self, operation: Operation) -> None:
        with self._session() as session:
            session.merge(_operation_row(operation))

    def running_operation(self, resource_id: str) -> Operation | None:
        query = select(OperationRow).where(
            OperationRow.resource_key == resource_id.lower(),
            OperationRow.status == OperationStatus.IN_PROGRESS.value,
        )
        with self._session() as session:
            row = session.scalars(query.limit(1)).first()
            return _operation(row) if row else None

    def running_operations(self) -> list[Operation]:
        query = select(OperationRow).where(OperationRow.status == OperationStatus.IN_PROGRESS.value)
        with self._session() as session:
            return [_operation(row) for row in session.scalars(query.order_by(OperationRow.started_us))]


BODY_BY_KEY = select(ResourceRow.body).where(ResourceRow.key == bindparam("key"))


@cache
def _children_query(order: SortOrder, with_cursor: bool) -> Select:
    """Built once per shape: the read path of every list page."""
    sort_column = ResourceRow.created_us if order.field is SortField.CREATED else ResourceRow.updated_us
    query = select(ResourceRow.id, ResourceRow.key, sort_column, ResourceRow.body).where(
        ResourceRow.parent_key == bindparam("parent"), ResourceRow.type_key == bindparam("type")
    )
    if with_cursor:
        position, boundary = tuple_(sort_column, ResourceRow.key), tuple_(bindparam("micros"), bindparam("after_key"))
        query = query.where(position < boundary if order.descending else position > boundary)
    direction = (lambda column: column.desc()) if order.descending else (lambda column: column.asc())
    return query.order_by(direction(sort_column), direction(ResourceRow.key)).limit(bindparam("limit"))


def _resource_row(resource: Resource) -> ResourceRow:
    return ResourceRow(
        key=resource.key,
        id=resource.id,
        parent_key=resource.parent_id.lower(),
        type_key=resource.type.lower(),
        type=resource.type,
        body=resource.body_json(),
        secrets=json.dumps(resource.secrets),
        created_us=to_micros(resource.created_at),
        updated_us=to_micros(resource.updated_at),
    )


def _resource(row: ResourceRow) -> Resource:
    return Resource(
        id=row.id,
        type=row.type,
        body=json.loads(row.body),
        secrets=json.loads(row.secrets or "{}"),
        created_at=from_micros(row.created_us),
        updated_at=from_micros(row.updated_us),
    )


def _operation_row(operation: Operation) -> OperationRow:
    return OperationRow(
        id=operation.id,
        resource_id=operation.resource_id,
        resource_key=operation.resource_id.lower(),
        kind=operation.kind.value,
        location=operation.location,
        status=operation.status.value,
        started_us=to_micros(operation.started_at),
        ended_us=to_micros(operation.ended_at) if operation.ended_at else None,
        error_code=operation.error_code,
        error_message=operation.error_message,
        detail=json.dumps(operation.detail) if operation.detail is not None else None,
    )


def _operation(row: OperationRow) -> Operation:
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
