"""What this process's job runner is doing now (queue, busy workers, throughput), for the ``/metrics`` gauges."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from batchpoint.runtime.report import Counts


@dataclass
class _Running:
    started: float
    items_done_at_start: int
    counts: Counts


@dataclass
class RunnerActivity:
    """What the job runner of this process has queued and running, updated at each progress report."""

    _queued: set[str] = field(default_factory=set)
    _running: dict[str, _Running] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def queued(self, job_id: str) -> None:
        with self._lock:
            self._queued.add(job_id)

    def dequeued(self, job_id: str) -> None:
        with self._lock:
            self._queued.discard(job_id)

    def progress(self, job_id: str, counts: Counts) -> None:
        with self._lock:
            running = self._running.setdefault(job_id, _Running(time.monotonic(), counts.items_done, counts))
            running.counts = counts

    def ended(self, job_id: str) -> None:
        with self._lock:
            self._running.pop(job_id, None)

    def queue_depth(self) -> int:
        with self._lock:
            return len(self._queued)

    def busy_workers(self) -> int:
        with self._lock:
            return sum(running.counts.mini_batches_running for running in self._running.values())

    def items_per_second(self) -> float:
        """Items done per second by the running jobs, each since this process started running it."""
        now = time.monotonic()
        with self._lock:
            return sum(
                (running.counts.items_done - running.items_done_at_start) / (now - running.started)
                for running in self._running.values()
                if now > running.started
            )
