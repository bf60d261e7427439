"""This process's share of the work: the jobs and operations it owns through leases (`store/leases.py`).

A heartbeat thread renews the leases while the work runs, takes over work whose owner died or stopped (its
lease expired or was given back) when this process has room, and passes cancel requests to the jobs it owns.
Work asks `holds()` as it goes and stops when the answer is no: a process that could not renew in time (the
database was unreachable) stops before any other process may take its work over. And it writes under the
`Fence` of its claim (`store/leases.py`), so a process that was frozen past its lease's expiry (and so could
not ask) has its first write refused when it resumes, and stops then (`lost`).
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from batchpoint.config import DEFAULT_LEASE_SECONDS
from batchpoint.store.leases import JOB, Fence, LeaseKey, LeaseKind, Leases

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0
"""At most this long between looks for free work and for cancel requests."""
RENEWALS_PER_LEASE = 3


def now_us() -> int:
    return time.time_ns() // 1000


@dataclass(frozen=True)
class Claimant:
    """Who runs claimed work of one kind: how much more it takes now, and how to start one piece."""

    capacity: Callable[[], int]
    start: Callable[[str], None]


class Ownership:
    def __init__(self, leases: Leases, home: Path, seconds: float = DEFAULT_LEASE_SECONDS) -> None:
        """`home` is the data directory: a lease of an earlier process on it is given back at start (that process
        is gone: this one holds the directory's lock), so a restarted server resumes its work at once."""
        self._leases = leases
        self._home = home
        self.seconds = seconds
        self._instance = _instance_id(home)
        self.owner = f"{self._instance}/{uuid.uuid4().hex}"
        self._held: dict[LeaseKey, tuple[Fence, float]] = {}
        """Owned leases: the fence of our claim, and until when (monotonic clock) it surely still holds."""
        self._cancels: set[str] = set()
        self._on_cancel: Callable[[str], None] | None = None
        self._claimants: dict[LeaseKind, Claimant] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._home_lock: int | None = None
        self._next_renewal = 0.0

    def register(self, kind: LeaseKind, claimant: Claimant) -> None:
        self._claimants[kind] = claimant

    def on_cancel(self, callback: Callable[[str], None]) -> None:
        """Call `callback(subject)` when the heartbeat sees a cancel asked (of another process) of owned work."""
        self._on_cancel = callback

    def start(self) -> None:
        if self._lock_home():
            released = self._leases.release_owners(f"{self._instance}/", self.owner)
            if released:
                log.info("took back %d leases of the previous server process on %s", released, self._home)
        self._thread = threading.Thread(target=self._heartbeat, name="leases", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the heartbeat and give back every lease still held (call once the work has stopped)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            self._leases.release(self.owner)
        except Exception:  # the leases expire instead
            log.warning("could not give back the leases at stop; they expire in %g s", self.seconds, exc_info=True)
        with self._lock:
            self._held.clear()
        if self._home_lock is not None:
            os.close(self._home_lock)

    # --- one piece of work --------------------------------------------------------------------------

    def add(self, key: LeaseKey) -> bool:
        """Own new work from the start; False when a lease for it exists already."""
        started = time.monotonic()
        fence = self._leases.add(key, self.owner, now_us() + self._micros())
        if fence is None:
            return False
        self._hold(fence, started)
        return True

    def fence(self, key: LeaseKey) -> Fence | None:
        """The fence to write the work under, while this process surely holds its lease; else None."""
        with self._lock:
            fence, until = self._held.get(key, (None, 0.0))
            return fence if time.monotonic() < until else None

    def holds(self, fence: Fence) -> bool:
        """Whether the lease is surely still held under this fence (not lost, not claimed again since)."""
        return self.fence(fence.key) == fence

    def release(self, fence: Fence) -> None:
        """Hand unfinished work back: any process may claim it at once."""
        self._forget(fence)
        self._leases.release(self.owner, [fence])

    def finish(self, fence: Fence) -> None:
        """The work ended for good."""
        self._leases.finish(fence)
        self._forget(fence)

    def let_go(self, fence: Fence, ended: bool) -> None:
        """`finish` work that ended, else `release` it; best effort: a lease not let go is given back by the
        heartbeat (it renews only the leases it knows of), or expires."""
        try:
            if ended:
                self.finish(fence)
            else:
                self.release(fence)
        except Exception:
            key = fence.key
            log.warning("could not let go of %s %s; it is given back later", key.kind, key.subject, exc_info=True)

    def lost(self, fence: Fence, error: BaseException) -> None:
        """The work's write was refused, or its lease could not be renewed in time: another process may own it now.
        The work has stopped; this process lets go of it without writing anything more."""
        key = fence.key
        log.warning("%s %s: lost the lease (epoch %d): %s; stopped here", key.kind, key.subject, fence.epoch, error)
        self._forget(fence)

    def request_cancel(self, subject: str) -> None:
        self._leases.request_cancel(subject, now_us())
        with self._lock:
            self._cancels.add(subject)

    def cancel_requested(self, subject: str, ask: bool = False) -> bool:
        """Whether the job was asked to cancel: as the heartbeat last saw it, or (`ask`) from the database now."""
        if ask and self._leases.cancel_requested([subject]):
            with self._lock:
                self._cancels.add(subject)
        with self._lock:
            return subject in self._cancels

    # --- the heartbeat ------------------------------------------------------------------------------

    def _heartbeat(self) -> None:
        while True:
            for step in (self._renew, self._poll_cancels, self._take_free_work):
                try:
                    step()
                except Exception:  # the database may be unreachable for a while: try again at the next beat
                    log.warning("lease heartbeat: %s failed", step.__name__, exc_info=True)
            if self._stop.wait(min(POLL_SECONDS, self.seconds / 4)):
                return

    def _renew(self) -> None:
        if time.monotonic() < self._next_renewal:
            return
        started = time.monotonic()
        with self._lock:
            before = {fence for fence, _ in self._held.values()}
        held = self._leases.renew(self.owner, now_us() + self._micros())
        with self._lock:
            lost = {fence for fence in before if held.get(fence.key) != fence.epoch}
            for fence in lost:
                self._drop(fence)
            for fence, _ in list(self._held.values()):
                if fence not in before:
                    continue  # added while renewing: kept as it is
                self._held[fence.key] = (fence, self._valid_until(started))
            known = {fence.key for fence, _ in self._held.values()}
        orphans = [Fence(key, self.owner, epoch) for key, epoch in held.items() if key not in known]
        if lost:
            log.warning("leases taken over by another process: %s", sorted(fence.key.subject for fence in lost))
        if orphans:  # let go of earlier, whose giving back failed: renewed, nobody would ever run them
            self._leases.release(self.owner, orphans)
        self._next_renewal = started + self.seconds / RENEWALS_PER_LEASE

    def _poll_cancels(self) -> None:
        with self._lock:
            jobs = [key.subject for key in self._held if key.kind == JOB]
        requested = self._leases.cancel_requested(jobs)
        with self._lock:
            new = requested - self._cancels
            self._cancels |= requested
        for subject in sorted(new):
            if self._on_cancel is not None:
                self._on_cancel(subject)

    def _take_free_work(self) -> None:
        for kind, claimant in self._claimants.items():
            room = claimant.capacity()
            if room <= 0 or self._stop.is_set():
                continue
            started = time.monotonic()
            now = now_us()
            for fence in self._leases.claim_free(kind, self.owner, now, now + self._micros(), room):
                self._hold(fence, started)
                claimant.start(fence.key.subject)

    # --- helpers ------------------------------------------------------------------------------------

    def _micros(self) -> int:
        return int(self.seconds * 1_000_000)

    def _valid_until(self, started: float) -> float:
        """A margin below the lease's length, so that this process stops before another may take over."""
        return started + self.seconds * 0.9

    def _hold(self, fence: Fence, started: float) -> None:
        with self._lock:
            self._held[fence.key] = (fence, self._valid_until(started))

    def _forget(self, fence: Fence) -> None:
        with self._lock:
            self._drop(fence)

    def _drop(self, fence: Fence) -> None:
        """Forget the lease if it is still held under this fence (not claimed again since); call with the lock."""
        held = self._held.get(fence.key)
        if held is not None and held[0] == fence:
            del self._held[fence.key]
            self._cancels.discard(fence.key.subject)

    def _lock_home(self) -> bool:
        """Hold the data directory's lock for the life of the process; False if another live process holds it."""
        fd = os.open(self._home / "serve.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._home_lock = fd
        return True


def _instance_id(home: Path) -> str:
    """A data directory's own id, made once: the leases of every process started on it begin with it."""
    path = home / "instance-id"
    if not path.exists():
        temporary = path.with_name(f".instance-id.{os.getpid()}")
        temporary.write_text(uuid.uuid4().hex)
        try:
            os.link(temporary, path)  # whole or absent; the first of two processes starting at once wins
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    return path.read_text().strip()


class OwnedWorkPool:
    """A few threads that run owned work of one kind: `run(subject)` for each piece started here (`start`) or
    claimed by the heartbeat while there is room. Once `stopping` is set it takes nothing more."""

    def __init__(
        self, ownership: Ownership, kind: LeaseKind, size: int, stopping: threading.Event, run: Callable[[str], None]
    ) -> None:
        self._size = size
        self._stopping = stopping
        self._run = run
        self._active: set[str] = set()
        self._again: set[str] = set()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix=kind)
        ownership.register(kind, Claimant(self.room, self.start))

    def room(self) -> int:
        if self._stopping.is_set():
            return 0
        with self._lock:
            return self._size - len(self._active)

    def running(self, subject: str) -> bool:
        with self._lock:
            return subject in self._active

    def start(self, subject: str) -> None:
        """Run `subject`; if it runs already, run it once more when that run returns."""
        with self._lock:
            if subject in self._active:
                self._again.add(subject)
                return
            self._active.add(subject)
        self._pool.submit(self._run_one, subject)

    def shutdown(self) -> None:
        """Stop taking work and wait for the running work, which sees `stopping` and stops."""
        self._stopping.set()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _run_one(self, subject: str) -> None:
        try:
            self._run(subject)
        except Exception:  # the pool would swallow it
            log.exception("%s failed", subject)
        finally:
            with self._lock:
                self._active.discard(subject)
                again = subject in self._again
                self._again.discard(subject)
            if again and not self._stopping.is_set():
                self.start(subject)
