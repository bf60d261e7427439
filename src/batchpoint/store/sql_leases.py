"""Leases and cancel requests on the SQL database: claims are conditional updates; on PostgreSQL the rows to
claim are picked with `FOR UPDATE SKIP LOCKED`, so replicas claiming at once skip each other's picks instead of
waiting (SQLite has a single writer, which serializes claims on one host)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import ColumnElement, and_, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from batchpoint.store.connections import Database
from batchpoint.store.leases import LeaseKey, LeaseKind, Leases
from batchpoint.store.rows import CancelRequestRow, LeaseRow

UNOWNED_EXPIRY = 0


class SqlLeases(Leases):
    def __init__(self, database: Database) -> None:
        self._db = database

    def add(self, key: LeaseKey, owner: str, until_us: int) -> bool:
        try:
            with self._db.statement() as connection:
                connection.execute(
                    insert(LeaseRow).values(kind=key.kind, subject=key.subject, owner=owner, expires_us=until_us)
                )
        except IntegrityError:
            return False
        return True

    def claim(self, key: LeaseKey, owner: str, now_us: int, until_us: int) -> bool:
        claimable = or_(LeaseRow.expires_us < now_us, LeaseRow.owner == owner)
        with self._db.transaction() as connection:
            result = connection.execute(
                update(LeaseRow).where(_is(key), claimable).values(owner=owner, expires_us=until_us)
            )
            return result.rowcount == 1

    def claim_free(self, kind: LeaseKind, owner: str, now_us: int, until_us: int, limit: int) -> list[str]:
        free = and_(LeaseRow.kind == kind, LeaseRow.expires_us < now_us)
        pick = select(LeaseRow.subject).where(free).order_by(LeaseRow.expires_us).limit(limit)
        claimed = []
        with self._db.transaction() as connection:
            for subject in connection.scalars(pick.with_for_update(skip_locked=True)).all():
                result = connection.execute(
                    update(LeaseRow).where(free, LeaseRow.subject == subject).values(owner=owner, expires_us=until_us)
                )
                if result.rowcount == 1:
                    claimed.append(subject)
        return claimed

    def renew(self, owner: str, until_us: int) -> set[LeaseKey]:
        with self._db.transaction() as connection:
            connection.execute(update(LeaseRow).where(LeaseRow.owner == owner).values(expires_us=until_us))
            held = connection.execute(select(LeaseRow.kind, LeaseRow.subject).where(LeaseRow.owner == owner))
            return {LeaseKey(kind, subject) for kind, subject in held}

    def release(self, owner: str, keys: Iterable[LeaseKey] | None = None) -> None:
        mine = LeaseRow.owner == owner
        with self._db.transaction() as connection:
            if keys is None:
                connection.execute(update(LeaseRow).where(mine).values(owner=None, expires_us=UNOWNED_EXPIRY))
                return
            for key in keys:
                connection.execute(update(LeaseRow).where(mine, _is(key)).values(owner=None, expires_us=UNOWNED_EXPIRY))

    def release_owners(self, owner_prefix: str, except_owner: str) -> int:
        stale = and_(LeaseRow.owner.startswith(owner_prefix, autoescape=True), LeaseRow.owner != except_owner)
        with self._db.transaction() as connection:
            result = connection.execute(update(LeaseRow).where(stale).values(owner=None, expires_us=UNOWNED_EXPIRY))
            return result.rowcount or 0

    def finish(self, key: LeaseKey) -> None:
        with self._db.transaction() as connection:
            connection.execute(delete(LeaseRow).where(_is(key)))
            connection.execute(delete(CancelRequestRow).where(CancelRequestRow.subject == key.subject))

    def request_cancel(self, subject: str, now_us: int) -> None:
        try:
            with self._db.statement() as connection:
                connection.execute(insert(CancelRequestRow).values(subject=subject, requested_us=now_us))
        except IntegrityError:
            pass  # asked before

    def cancel_requested(self, subjects: Iterable[str]) -> set[str]:
        wanted = list(subjects)
        if not wanted:
            return set()
        with self._db.reading() as connection:
            return set(connection.scalars(select(CancelRequestRow.subject).where(CancelRequestRow.subject.in_(wanted))))


def _is(key: LeaseKey) -> ColumnElement[bool]:
    return and_(LeaseRow.kind == key.kind, LeaseRow.subject == key.subject)
