"""Who works on what: one lease per job or long-running operation, and cancel requests, kept in the database so
that every replica sees them.

A lease names its owner (one server process) and when it expires. The owner renews its leases while it works;
a lease that expired, or that nobody owns (work not started yet, or given back by a server that stopped), may be
claimed by any process. Claims are conditional updates, so two processes never own the same lease.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

LeaseKind = Literal["job", "operation"]
JOB: LeaseKind = "job"
OPERATION: LeaseKind = "operation"


@dataclass(frozen=True, slots=True)
class LeaseKey:
    kind: LeaseKind
    subject: str
    """A job's lower-cased id, or an operation's id."""


class Leases(ABC):
    """Every time is in microseconds since the epoch (replicas' clocks are kept in sync, as with NTP)."""

    @abstractmethod
    def add(self, key: LeaseKey, owner: str, until_us: int) -> bool:
        """Record new work, owned by `owner` until `until_us`; False if the lease exists already."""

    @abstractmethod
    def claim(self, key: LeaseKey, owner: str, now_us: int, until_us: int) -> bool:
        """Own the lease until `until_us` if it is unowned, expired or already `owner`'s; False if another
        process holds it or it does not exist (the work ended)."""

    @abstractmethod
    def claim_free(self, kind: LeaseKind, owner: str, now_us: int, until_us: int, limit: int) -> list[str]:
        """Own up to `limit` unowned or expired leases of one kind, oldest expiry first; returns their subjects.
        Processes claiming at the same time never get the same lease and do not wait for each other."""

    @abstractmethod
    def renew(self, owner: str, until_us: int) -> set[LeaseKey]:
        """Extend every lease `owner` holds; returns them (a lease another process took over is not among them)."""

    @abstractmethod
    def release(self, owner: str, keys: Iterable[LeaseKey] | None = None) -> None:
        """Give leases back (all of the owner's when `keys` is None): any process may claim them at once."""

    @abstractmethod
    def release_owners(self, owner_prefix: str, except_owner: str) -> int:
        """Give back the leases of owners whose id starts with `owner_prefix` (an earlier, dead process of the
        same data directory), other than `except_owner`; returns how many."""

    @abstractmethod
    def finish(self, key: LeaseKey) -> None:
        """The work ended for good: drop its lease and any cancel request."""

    @abstractmethod
    def request_cancel(self, subject: str, now_us: int) -> None:
        """Ask whichever process owns the job to cancel it; kept until the job ends."""

    @abstractmethod
    def cancel_requested(self, subjects: Iterable[str]) -> set[str]:
        """Which of these jobs have a cancel request."""
