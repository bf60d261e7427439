"""Leases and cancel requests on the SQL database: claims are conditional updates; on PostgreSQL the rows to
claim are picked with `FOR UPDATE SKIP LOCKED`, so replicas claiming at once skip each other's picks instead of
waiting (SQLite has a single writer, which serializes claims on one host).

A fenced write (`SqlStore.fenced`) first locks its lease's row if it still has the fence's owner and epoch
(`hold`): a claim of that row waits for the write's transaction, or finds the lease moved on and the write is
refused; so no write of an earlier owner lands after a claim."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import ColumnElement, Update, and_, delete, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from batchpoint.store.connections import Database
from batchpoint.store.leases import Fence, LeaseKey, LeaseKind, LeaseLost, Leases
from batchpoint.store.rows import CancelRequestRow, LeaseRow

UNOWNED_EXPIRY = 0


class SqlLeases(Leases):
    """Its calls are never fenced themselves (they are how fences are got and given back), so a job's thread may
    give back another job's lease inside its own fenced block."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def add(self, key: LeaseKey, owner: str, until_us: int) -> Fence | None:
        try:
            with self._db.statement(guarded=False) as connection:
                connection.execute(
                    insert(LeaseRow).values(
                        kind=key.kind, subject=key.subject, owner=owner, expires_us=until_us, epoch=1
                    )
                )
        except IntegrityError:
            return None
        return Fence(key, owner, 1)

    def claim(self, key: LeaseKey, owner: str, now_us: int, until_us: int) -> Fence | None:
        claimable = or_(LeaseRow.expires_us < now_us, LeaseRow.owner == owner)
        claimed = _claimed(owner, until_us)
        with self._db.transaction(guarded=False) as connection:
            epoch = connection.execute(claimed.where(_is(key), claimable)).scalar()
        return Fence(key, owner, epoch) if epoch is not None else None

    def claim_free(self, kind: LeaseKind, owner: str, now_us: int, until_us: int, limit: int) -> list[Fence]:
        free = and_(LeaseRow.kind == kind, LeaseRow.expires_us < now_us)
        pick = select(LeaseRow.subject).where(free).order_by(LeaseRow.expires_us).limit(limit)
        claimed = _claimed(owner, until_us)
        fences = []
        with self._db.transaction(guarded=False) as connection:
            for subject in connection.scalars(pick.with_for_update(skip_locked=True)).all():
                epoch = connection.execute(claimed.where(free, LeaseRow.subject == subject)).scalar()
                if epoch is not None:
                    fences.append(Fence(LeaseKey(kind, subject), owner, epoch))
        return fences

    def renew(self, owner: str, until_us: int) -> dict[LeaseKey, int]:
        renewed = update(LeaseRow).where(LeaseRow.owner == owner).values(expires_us=until_us)
        with self._db.transaction(guarded=False) as connection:
            held = connection.execute(renewed.returning(LeaseRow.kind, LeaseRow.subject, LeaseRow.epoch))
            return {LeaseKey(kind, subject): epoch for kind, subject, epoch in held}

    def release(self, owner: str, fences: Iterable[Fence] | None = None) -> None:
        unowned = {"owner": None, "expires_us": UNOWNED_EXPIRY}
        with self._db.transaction(guarded=False) as connection:
            if fences is None:
                connection.execute(update(LeaseRow).where(LeaseRow.owner == owner).values(**unowned))
                return
            for fence in fences:
                connection.execute(update(LeaseRow).where(_holds(fence)).values(**unowned))

    def release_owners(self, owner_prefix: str, except_owner: str) -> int:
        stale = and_(LeaseRow.owner.startswith(owner_prefix, autoescape=True), LeaseRow.owner != except_owner)
        with self._db.transaction(guarded=False) as connection:
            result = connection.execute(update(LeaseRow).where(stale).values(owner=None, expires_us=UNOWNED_EXPIRY))
            return result.rowcount or 0

    def finish(self, fence: Fence) -> None:
        with self._db.transaction(guarded=False) as connection:
            if connection.execute(delete(LeaseRow).where(_holds(fence))).rowcount:
                connection.execute(delete(CancelRequestRow).where(CancelRequestRow.subject == fence.key.subject))

    def request_cancel(self, subject: str, now_us: int) -> None:
        try:
            with self._db.statement(guarded=False) as connection:
                connection.execute(insert(CancelRequestRow).values(subject=subject, requested_us=now_us))
        except IntegrityError:
            pass  # asked before

    def cancel_requested(self, subjects: Iterable[str]) -> set[str]:
        wanted = list(subjects)
        if not wanted:
            return set()
        with self._db.reading() as connection:
            return set(connection.scalars(select(CancelRequestRow.subject).where(CancelRequestRow.subject.in_(wanted))))


def hold(connection: Connection, fence: Fence) -> None:
    """Lock the fence's lease row for the rest of the transaction if the fence still holds, else raise LeaseLost
    (on SQLite the transaction holds the database's write lock already)."""
    held = select(LeaseRow.epoch).where(_holds(fence)).with_for_update()
    if connection.execute(held).first() is None:
        raise LeaseLost("a write was refused: the lease moved on (another process claimed it, or the work ended)")


def _claimed(owner: str, until_us: int) -> Update:
    """A claim: the lease is the owner's under the next epoch; returns that epoch."""
    return update(LeaseRow).values(owner=owner, expires_us=until_us, epoch=LeaseRow.epoch + 1).returning(LeaseRow.epoch)


def _is(key: LeaseKey) -> ColumnElement[bool]:
    return and_(LeaseRow.kind == key.kind, LeaseRow.subject == key.subject)


def _holds(fence: Fence) -> ColumnElement[bool]:
    return and_(_is(fence.key), LeaseRow.owner == fence.owner, LeaseRow.epoch == fence.epoch)
