"""The database connections the SQL store, the job ledger and the leases share, and their transactions.

A transaction belongs to the thread that opened it: every store call that thread makes inside the block runs on
the block's connection, so what belongs together commits (or rolls back) together without passing a handle
around. On SQLite a transaction takes the write lock when it begins (``BEGIN IMMEDIATE``): a transaction that
reads and then writes can then never fail half-way because another writer committed in between. The threads of one
process also queue for SQLite's single writer on a lock of their own first: SQLite's busy handler polls with
growing sleeps and is not fair, so under load a writer could wait past the busy timeout while others keep getting in.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import ConnectionPoolEntry

BEGIN_OPTION = "sqlite_begin"
BUSY_TIMEOUT_MS = 30_000
"""How long a SQLite writer waits for another process's transaction (this process's own writers queue on a lock)."""
IDLE_IN_TRANSACTION_MS = 10_000
"""PostgreSQL ends a session that sits this long inside a transaction: a replica frozen mid-transaction (SIGSTOP, a
paused VM) would otherwise hold its row locks, its leases' among them, and no other replica could take its work
over until it resumed. No transaction of batchpoint waits that long between two statements."""


def _private(database: Path) -> None:
    """A SQLite database only its owner reads (SQLite gives its -wal and -shm files the database file's mode):
    created so, or made so when an older server created it readable by all."""
    os.close(os.open(database, os.O_RDWR | os.O_CREAT, 0o600))
    for path in (database, database.with_name(database.name + "-wal"), database.with_name(database.name + "-shm")):
        with contextlib.suppress(OSError):  # absent, or another user's: left as it is
            if path.stat().st_uid == os.geteuid():
                os.chmod(path, 0o600)


def _configure_sqlite(engine: Engine) -> None:
    """WAL, a busy timeout, and transactions begun by SQLAlchemy rather than the driver (so savepoints and
    ``BEGIN IMMEDIATE`` work: the driver's own transaction handling knows neither)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN " + connection.get_execution_options().get(BEGIN_OPTION, "DEFERRED"))


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False}, pool_size=20, max_overflow=20)
        if engine.url.database and engine.url.database != ":memory:":
            _private(Path(engine.url.database))
        _configure_sqlite(engine)
        return engine
    options = f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_MS}"
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True, connect_args={"options": options})


class Database:
    """One engine, and the transaction each thread has open on it (if any)."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self._writer = self.engine.execution_options(**{BEGIN_OPTION: "IMMEDIATE"})
        self._local = threading.local()
        self._single_writer: contextlib.AbstractContextManager[object] = (
            threading.Lock() if self.engine.dialect.name == "sqlite" else contextlib.nullcontext()
        )

    def current(self) -> Connection | None:
        """The connection of this thread's open transaction."""
        return getattr(self._local, "connection", None)

    @contextmanager
    def guarded(self, guard: Callable[[Connection], None]) -> Iterator[None]:
        """Every transaction this thread opens inside the block first runs `guard` on its connection, which may
        refuse the transaction by raising (a fence: `SqlStore.fenced`). Reads are not guarded."""
        previous = getattr(self._local, "guard", None)
        self._local.guard = guard
        try:
            yield
        finally:
            self._local.guard = previous

    @contextmanager
    def transaction(self, guarded: bool = True) -> Iterator[Connection]:
        """Open a transaction for this thread, or join the one it has open (the outermost block commits).
        `guarded=False`: without this thread's guard (the leases' own calls)."""
        current = self.current()
        if current is not None:
            yield current
            return
        guard = getattr(self._local, "guard", None) if guarded else None
        with self._single_writer, self._writer.begin() as connection:
            self._local.connection = connection
            try:
                if guard is not None:
                    guard(connection)
                yield connection
            finally:
                self._local.connection = None

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """Where reads run: this thread's open transaction (to see what it wrote), else a connection of their own
        that takes no write lock."""
        current = self.current()
        if current is not None:
            yield current
            return
        with self.engine.connect() as connection:
            yield connection

    @contextmanager
    def statement(self, guarded: bool = True) -> Iterator[Connection]:
        """Where a write that may fail on a constraint runs: a savepoint inside this thread's open transaction
        (so the transaction stays usable after the failure, on PostgreSQL too), else a transaction of its own."""
        current = self.current()
        if current is None:
            with self.transaction(guarded) as connection:
                yield connection
            return
        with current.begin_nested():
            yield current

    def dispose(self) -> None:
        self.engine.dispose()
