"""Jobs wait for their compute's nodes: ``maxNodeCount`` caps the nodes a compute's running jobs hold at once,
and jobs that do not fit wait (status ``Queued``) in the order they arrived."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Placement:
    """What a job asks of its compute: ``nodes`` of ``compute_id``, which caps them unless ``capped`` is false
    (the built-in compute)."""

    compute_id: str
    nodes: int
    capped: bool

    @classmethod
    def of(cls, record: dict[str, Any] | None) -> Placement | None:
        return cls(**record) if record else None

    def record(self) -> dict[str, Any]:
        return {"compute_id": self.compute_id, "nodes": self.nodes, "capped": self.capped}


class ComputeQueue:
    """The nodes this server's running jobs hold, per compute, and the jobs waiting for them (first come, first
    served: a waiting job never lets a later one overtake it). Jobs are known by their key (the id in lower case),
    whichever way the caller spells the id."""

    def __init__(self, capacity_of: Callable[[str], int | None]) -> None:
        self._capacity_of = capacity_of
        """The compute's current ``maxNodeCount`` (read at each try, so a compute scaled up takes more)."""
        self._lock = threading.Lock()
        self._held: dict[str, tuple[str, int]] = {}
        self._used: dict[str, int] = {}
        self._waiting: dict[str, deque[str]] = {}

    def take(self, job_id: str, placement: Placement) -> bool:
        """Hold the job's nodes if they are free and no job is waiting before it; else queue it and say False."""
        job_id, compute = job_id.lower(), placement.compute_id.lower()
        with self._lock:
            waiting = self._waiting.setdefault(compute, deque())
            if waiting and waiting[0] != job_id:
                if job_id not in waiting:
                    waiting.append(job_id)
                return False
            capacity = self._capacity_of(placement.compute_id) if placement.capped else None
            used = self._used.get(compute, 0)
            if capacity is not None and used > 0 and used + placement.nodes > capacity:
                if not waiting:
                    waiting.append(job_id)
                return False
            if waiting:
                waiting.popleft()
            self._used[compute] = used + placement.nodes
            self._held[job_id] = (compute, placement.nodes)
            return True

    def release(self, job_id: str) -> str | None:
        """Free the job's nodes; returns the first job waiting on that compute, to try again."""
        with self._lock:
            compute, nodes = self._held.pop(job_id.lower(), (None, 0))
            if compute is None:
                return None
            self._used[compute] -= nodes
            return self.next_waiting(compute)

    def next_waiting(self, compute: str) -> str | None:
        waiting = self._waiting.get(compute.lower())
        return waiting[0] if waiting else None

    def withdraw(self, job_id: str) -> str | None:
        """Take a waiting job out of its queue: it was canceled, or it no longer waits here (it ended, or went to
        another process). Returns the compute it waited for (whose next waiting job may start now), None when it
        was not waiting: a job left behind at the head of a queue would hold every later one back for good."""
        job_id = job_id.lower()
        with self._lock:
            for compute, waiting in self._waiting.items():
                if job_id in waiting:
                    waiting.remove(job_id)
                    return compute
        return None
