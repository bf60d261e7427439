"""Which failures are passing faults of the machinery (the job waits and tries again) and which end the work.

Transient: the database unreachable or its connection cut (a restart, `pg_terminate_backend`, SQLite busy), a
network connection reset or refused, a full disk or quota, a worker host lost (`TransientFault`). Anything else
that goes wrong outside the scoring script ends the job as Failed, as a script error or the error threshold do.
"""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Iterator

import psycopg
from sqlalchemy import exc as sql

from batchpoint.runtime.executor import DISK_FULL_ERRNOS, TransientFault
from batchpoint.runtime.output import JobAlreadyRunningError

TRANSIENT_ERRNOS = frozenset(
    {
        *DISK_FULL_ERRNOS,
        errno.ECONNRESET,
        errno.ECONNREFUSED,
        errno.ECONNABORTED,
        errno.ETIMEDOUT,
        errno.EPIPE,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ESTALE,
    }
)
DATABASE_TYPES: tuple[type[BaseException], ...] = (
    sql.OperationalError,
    sql.InterfaceError,
    sql.TimeoutError,
    psycopg.OperationalError,
    sqlite3.OperationalError,
)
"""The database unreachable, its connection cut, its pool exhausted, SQLite busy."""
DATABASE_ERRORS: tuple[type[Exception], ...] = (sql.SQLAlchemyError, psycopg.Error, sqlite3.Error)
"""Everything the database raises: the store's errors, and its drivers' own on the raw read path."""
TRANSIENT_TYPES: tuple[type[BaseException], ...] = (
    *DATABASE_TYPES,
    ConnectionError,
    TimeoutError,
    TransientFault,
    JobAlreadyRunningError,  # the process that ran it before has not let go yet
)
FIRST_DELAY_SECONDS = 0.5
MAX_DELAY_SECONDS = 10.0


def is_transient(error: BaseException) -> bool:
    """The error, or one it was raised from, is a passing fault."""
    return any(_transient(cause) for cause in _chain(error))


def _transient(error: BaseException) -> bool:
    if isinstance(error, OSError) and error.errno in TRANSIENT_ERRNOS:
        return True
    return _database_fault(error) or isinstance(error, TRANSIENT_TYPES)


def database_unavailable(error: BaseException) -> bool:
    """The error, or one it was raised from, is a passing fault of the database (a request meeting it is worth
    trying again in a moment)."""
    return any(_database_fault(cause) for cause in _chain(error))


def _database_fault(error: BaseException) -> bool:
    connection_cut = isinstance(error, sql.DBAPIError) and error.connection_invalidated
    return connection_cut or isinstance(error, DATABASE_TYPES)


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__


def describe(error: BaseException) -> str:
    """One line for the job's status message."""
    if isinstance(error, OSError) and error.errno in DISK_FULL_ERRNOS:
        return f"the disk is full ({error.filename or error})"
    if _database_fault(error):
        return "the database is unavailable"
    if isinstance(error, TransientFault):  # an executor's, written for this message
        return str(error)
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


class Backoff:
    """Delays between tries of work that met a transient fault: doubling from half a second up to ten."""

    def __init__(self) -> None:
        self._next = FIRST_DELAY_SECONDS

    def delay(self) -> float:
        current, self._next = self._next, min(self._next * 2, MAX_DELAY_SECONDS)
        return current
