"""The durable record of a job's mini-batches and tries, and its in-memory implementation.

The coordinator is the only writer and calls a ledger from the one thread that runs the job; different jobs may
use one ledger from different threads at once. A try that was started but never ended (the server died during
it) is not counted: on resume the mini-batch is simply pending again.

A ledger may be *fenced*: bound to one writer of the job (a server process that claimed it), it refuses that
writer's writes once another has taken the job over, by raising `TakenOver`. The coordinator then stops its
workers at once and writes nothing more, neither to the ledger nor to the job's folder.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

MiniBatchStatus = Literal["pending", "succeeded", "failed"]
AttemptOutcome = Literal["succeeded", "failed"]
PENDING: MiniBatchStatus = "pending"
SUCCEEDED: MiniBatchStatus = "succeeded"
FAILED: MiniBatchStatus = "failed"

TryStatus = Literal["RUN_DONE", "RUN_EXCEPTION", "RUN_TIMEOUT", "PROCESS_EXITED"]
"""How a try ended, in the words of Azure's `processed_mini-batches.csv` (`PROCESS_EXITED` is ours: the worker
died during `run()`)."""
RUN_DONE: TryStatus = "RUN_DONE"


class TakenOver(Exception):
    """Another writer took the job over (a newer claim of its lease, or of its folder): this one must stop its
    workers at once and write nothing more of the job."""


@dataclass(frozen=True, slots=True)
class MiniBatch:
    """One planned mini-batch as the ledger knows it.

    `succeeded` means its try returned a result (whose short count may still fail items); `failed` means it
    used all its tries, and then all its items count as failed."""

    index: int
    files: tuple[str, ...]
    status: MiniBatchStatus = PENDING
    tries: int = 0
    """Tries that ended, failed or successful."""
    succeeded_items: int = 0
    failed_items: int = 0
    last_error: str | None = None


def new_plan(mini_batches: Iterable[Sequence[str]]) -> list[MiniBatch]:
    """A new plan's mini-batches, as `Ledger.plan` stores them: numbered from 0 in the order given, all pending."""
    return [MiniBatch(index, tuple(files)) for index, files in enumerate(mini_batches)]


def storable(text: str) -> str:
    """`text` as every ledger keeps it: UTF-8 a database takes, without NUL (PostgreSQL refuses it). The bytes of
    a file name that is not UTF-8 (which Python carries as surrogates, and a script's error quotes) read `\\xe9`;
    a NUL reads `\\x00`. Before, such an error failed the job "outside its scoring script"."""
    try:
        data = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate no file name's byte gives
        data = text.encode("utf-8", "backslashreplace")
    return data.decode("utf-8", "backslashreplace").replace("\0", "\\x00")


@dataclass(frozen=True, slots=True)
class TryEnd:
    """How a try ended and how long it took, for the job's report: `started` is UTC seconds since the epoch;
    the CPU and `run()` times are None when the worker could not measure them (it died or was stopped)."""

    status: TryStatus
    started: float
    elapsed_seconds: float
    process_seconds: float | None = None
    run_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try of a mini-batch on the worker `process` of `node` (`worker` names it in messages); `outcome`
    and `end` stay None while it runs (or when the server died during it)."""

    index: int
    try_number: int
    worker: str
    node: str = ""
    process: str = ""
    outcome: AttemptOutcome | None = None
    error: str | None = None
    end: TryEnd | None = None
    started: float | None = None
    """When the try started, UTC seconds since the epoch: the coordinator's clock while it runs (so that the job
    page shows how long a running try has taken), the worker's own (`end.started`) once it ended; None when not
    recorded."""


@dataclass(frozen=True, slots=True)
class Success:
    """A try that returned a result whose rows are committed."""

    index: int
    try_number: int
    succeeded_items: int
    failed_items: int
    end: TryEnd


class Ledger(ABC):
    """What the coordinator needs to remember across a crash of the server.

    Each write's docstring states what must be durable when it returns."""

    @abstractmethod
    def plan(self, job_id: str, mini_batches: Iterable[Sequence[str]]) -> bool:
        """Store the job's mini-batches, numbered from 0 in the order given, all pending; False when the job had a
        plan already (another coordinator's, stored meanwhile), which stays as it is.

        Durable and all-or-nothing: if the iterable raises, nothing is stored and the error propagates. Called
        only for a job that `mini_batches` reports as unplanned, so the input is listed once per job."""

    @abstractmethod
    def mini_batches(self, job_id: str) -> list[MiniBatch] | None:
        """The job's mini-batches by index, or None when the job has no plan yet (an empty list is a plan)."""

    @abstractmethod
    def record_tries(self, job_id: str, started: Sequence[Attempt], succeeded: Sequence[Success]) -> None:
        """A group of tries in one write (one transaction), so that the ledger costs one write per group rather
        than two per mini-batch.

        `started`: tries that began on a worker (for progress and forensics; nothing is decided from them). A try
        number may be started again (after a crash, or on another worker when `init()` failed before the try ran,
        even within one group), which replaces the earlier record. `succeeded`: tries whose
        rows are committed: status `succeeded`, one more try, the item counts; a try in both lists is started
        first. Must be durable on return: those mini-batches are never run again, and their committed rows are
        the ones the output will hold. (A success lost in a crash before it was recorded only runs its
        mini-batch again.)"""

    @abstractmethod
    def record_failed_try(self, job_id: str, index: int, try_number: int, error: str, end: TryEnd) -> None:
        """The try failed (exception, timeout, dead worker): one more try, `last_error` = `storable(error)`.

        Should be durable on return; if lost in a crash the mini-batch gets that try again."""

    @abstractmethod
    def attempts(self, job_id: str) -> Iterator[Attempt]:
        """The job's recorded tries, by mini-batch index and try number; read a part at a time, so that a job
        of a million mini-batches is never in memory at once."""

    @abstractmethod
    def mark_exhausted(self, job_id: str, index: int) -> None:
        """The mini-batch used all its tries: status `failed`, all its items failed, no succeeded items.

        Should be durable on return; if lost, the coordinator marks it again on resume from its try count."""

    @abstractmethod
    def forget(self, job_id: str) -> None:
        """Drop a finished job's plan and tries (its outcome lives on in the job resource); a later `plan` starts
        it afresh."""

    @property
    def generation(self) -> int:
        """Which writer of its jobs this ledger is: a newer writer (one that took a job over) has a greater
        number. The coordinator keeps its rows and its claim on the job's folder under it (`output.py`), so a
        newer writer can take the folder over from an older one that is stuck rather than dead. 0 when unfenced."""
        return 0

    def confirm_writer(self, job_id: str) -> None:  # noqa: B027 - unfenced ledgers have nothing to check
        """Raise TakenOver if this ledger's writes of the job would now be refused: asked right before the
        coordinator commits the job's output or removes its private folder. Unfenced ledgers always may write."""


class InMemoryLedger(Ledger):
    """The ledger of a server without a database, and the test double."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._plans: dict[str, list[MiniBatch]] = {}
        self._attempts: dict[str, dict[tuple[int, int], Attempt]] = {}
        """Per job, by (mini-batch index, try number)."""

    def plan(self, job_id: str, mini_batches: Iterable[Sequence[str]]) -> bool:
        planned = new_plan(mini_batches)
        with self._lock:
            self._attempts.setdefault(job_id, {})
            return self._plans.setdefault(job_id, planned) is planned

    def mini_batches(self, job_id: str) -> list[MiniBatch] | None:
        with self._lock:
            plan = self._plans.get(job_id)
            return None if plan is None else list(plan)

    def record_tries(self, job_id: str, started: Sequence[Attempt], succeeded: Sequence[Success]) -> None:
        with self._lock:
            for attempt in started:
                self._attempts[job_id][(attempt.index, attempt.try_number)] = attempt
        for success in succeeded:
            self._end_try(job_id, success.index, success.try_number, "succeeded", None, success.end)
            self._update(
                job_id,
                success.index,
                status=SUCCEEDED,
                succeeded_items=success.succeeded_items,
                failed_items=success.failed_items,
            )

    def record_failed_try(self, job_id: str, index: int, try_number: int, error: str, end: TryEnd) -> None:
        error = storable(error)
        self._end_try(job_id, index, try_number, "failed", error, end)
        self._update(job_id, index, last_error=error)

    def attempts(self, job_id: str) -> Iterator[Attempt]:
        with self._lock:
            recorded = sorted(self._attempts.get(job_id, {}).items())
        return iter([attempt for _, attempt in recorded])

    def mark_exhausted(self, job_id: str, index: int) -> None:
        with self._lock:
            batch = self._plans[job_id][index]
            self._plans[job_id][index] = replace(batch, status=FAILED, succeeded_items=0, failed_items=len(batch.files))

    def forget(self, job_id: str) -> None:
        with self._lock:
            self._plans.pop(job_id, None)
            self._attempts.pop(job_id, None)

    def _update(self, job_id: str, index: int, **changes: Any) -> None:
        with self._lock:
            batch = self._plans[job_id][index]
            self._plans[job_id][index] = replace(batch, tries=batch.tries + 1, **changes)

    def _end_try(
        self, job_id: str, index: int, try_number: int, outcome: AttemptOutcome, error: str | None, end: TryEnd
    ) -> None:
        with self._lock:
            attempts = self._attempts[job_id]
            key = (index, try_number)
            if key in attempts:
                attempts[key] = replace(attempts[key], outcome=outcome, error=error, end=end, started=end.started)
