"""Who works on what: one lease per job or long-running operation, and cancel requests, kept in the database so
that every replica sees them.

A lease names its owner (one server process) and when it expires. The owner renews its leases while it works;
a lease that expired, or that nobody owns (work not started yet, or given back by a server that stopped), may be
claimed by any process. Claims are conditional updates, so two processes never own the same lease.

Fencing: every claim counts the lease's epoch up, and the owner's writes of the work carry the `Fence` it got
(owner and epoch). A write under a fence that no longer holds (the lease expired and another process claimed it,
or the work ended) is refused in the transaction that would have made it, with `LeaseLost`; so a process that
was stopped (SIGSTOP, a paused VM, a long GC) past its lease's expiry and then resumes writes nothing.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from batchpoint.runtime.ledger import TakenOver

LeaseKind = Literal["job", "operation"]
JOB: LeaseKind = "job"
OPERATION: LeaseKind = "operation"


@dataclass(frozen=True, slots=True)
class LeaseKey:
    kind: LeaseKind
    subject: str
    """A job's lower-cased id, or an operation's id."""


@dataclass(frozen=True, slots=True)
class Fence:
    """A lease as one claim of it got it: writes made under it are refused once the lease has moved on."""

    key: LeaseKey
    owner: str
    epoch: int


class LeaseLost(TakenOver):
    """The lease of the work moved on (another process claimed it, or the work ended), or could not be renewed in
    time: this process stops the work at once and writes nothing more of it."""


class Leases(ABC):
    """Every time is in microseconds since the epoch (replicas' clocks are kept in sync, as with NTP)."""

    @abstractmethod
    def add(self, key: LeaseKey, owner: str, until_us: int) -> Fence | None:
        """Record new work, owned by `owner` until `until_us` (epoch 1); None if the lease exists already."""

    @abstractmethod
    def claim(self, key: LeaseKey, owner: str, now_us: int, until_us: int) -> Fence | None:
        """Own the lease until `until_us` if it is unowned, expired or already `owner`'s, under a new epoch; None
        if another process holds it or it does not exist (the work ended)."""

    @abstractmethod
    def claim_free(self, kind: LeaseKind, owner: str, now_us: int, until_us: int, limit: int) -> list[Fence]:
        """Own up to `limit` unowned or expired leases of one kind, oldest expiry first, each under a new epoch.
        Processes claiming at the same time never get the same lease and do not wait for each other."""

    @abstractmethod
    def renew(self, owner: str, until_us: int) -> dict[LeaseKey, int]:
        """Extend every lease `owner` holds; returns them with their epochs (a lease another process took over is
        not among them)."""

    @abstractmethod
    def release(self, owner: str, fences: Iterable[Fence] | None = None) -> None:
        """Give leases back (all of the owner's when `fences` is None; else those that still hold): any process may
        claim them at once."""

    @abstractmethod
    def release_owners(self, owner_prefix: str, except_owner: str) -> int:
        """Give back the leases of owners whose id starts with `owner_prefix` (an earlier, dead process of the
        same data directory), other than `except_owner`; returns how many."""

    @abstractmethod
    def finish(self, fence: Fence) -> None:
        """The work ended for good: drop its lease and any cancel request, if the fence still holds."""

    @abstractmethod
    def request_cancel(self, subject: str, now_us: int) -> None:
        """Ask whichever process owns the job to cancel it; kept until the job ends."""

    @abstractmethod
    def cancel_requested(self, subjects: Iterable[str]) -> set[str]:
        """Which of these jobs have a cancel request."""
