"""The small rules the coordinator and executors apply: item counting, retries, the error threshold, time limits."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

Key = TypeVar("Key", bound=Hashable)


@dataclass(frozen=True, slots=True)
class ItemCounts:
    succeeded: int
    failed: int


def count_items(returned: int, size: int) -> ItemCounts:
    """Decision 4: a result of `returned` rows for `size` inputs succeeds `min(returned, size)` items."""
    succeeded = min(returned, size)
    return ItemCounts(succeeded, size - succeeded)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Decision 3: a mini-batch is tried at most 1 + max_retries times."""

    max_retries: int

    @property
    def tries_allowed(self) -> int:
        return 1 + self.max_retries

    def exhausted(self, tries_used: int) -> bool:
        return tries_used >= self.tries_allowed


@dataclass(frozen=True, slots=True)
class ErrorThreshold:
    """Decision 4: the job fails as soon as its failed items exceed the threshold; -1 tolerates any number."""

    limit: int

    def exceeded(self, failed_items: int) -> bool:
        return self.limit >= 0 and failed_items > self.limit


class Deadlines(Generic[Key]):
    """Monotonic-clock deadlines by key: what an executor needs to enforce `retrySettings.timeout`."""

    def __init__(self) -> None:
        self._due: dict[Key, float] = {}

    def arm(self, key: Key, due: float) -> None:
        self._due[key] = due

    def disarm(self, key: Key) -> None:
        self._due.pop(key, None)

    def expired(self, now: float) -> list[Key]:
        return [key for key, due in self._due.items() if due <= now]

    def seconds_left(self, now: float, cap: float) -> float:
        """Time until the nearest deadline, at most `cap` and never negative."""
        nearest = min(self._due.values(), default=now + cap)
        return max(0.0, min(cap, nearest - now))
