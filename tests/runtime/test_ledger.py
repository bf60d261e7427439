"""The ledger contract, run against every implementation in this package's tests.

A new implementation joins by adding a factory to LEDGERS."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from batchpoint.runtime.ledger import Attempt, InMemoryLedger, Ledger, MiniBatch, Success
from batchpoint.store import open_store
from tests.store.conftest import database_url

LEDGERS: dict[str, Callable[[Path], Ledger]] = {
    "in-memory": lambda path: InMemoryLedger(),
    "sqlite": lambda path: open_store(f"sqlite:///{path / 'ledger.db'}").ledger(),
    "postgresql": lambda path: open_store(database_url("postgresql", path)).ledger(),
}


@pytest.fixture(params=sorted(LEDGERS))
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Ledger:
    return LEDGERS[request.param](tmp_path)


def test_a_job_is_planned_once_in_the_order_given(ledger: Ledger) -> None:
    assert ledger.mini_batches("job") is None

    ledger.plan("job", iter([["/a", "/b"], ["/c"]]))
    ledger.plan("job", iter([["/other"]]))

    assert ledger.mini_batches("job") == [MiniBatch(0, ("/a", "/b")), MiniBatch(1, ("/c",))]
    assert ledger.mini_batches("other job") is None


def test_an_empty_plan_is_a_plan(ledger: Ledger) -> None:
    ledger.plan("job", iter([]))

    assert ledger.mini_batches("job") == []


def test_a_plan_whose_listing_fails_stores_nothing(ledger: Ledger) -> None:
    def listing() -> Iterator[list[str]]:
        yield ["/a"]
        raise FileNotFoundError("/gone")

    with pytest.raises(FileNotFoundError):
        ledger.plan("job", listing())

    assert ledger.mini_batches("job") is None


def test_tries_errors_and_outcomes_are_recorded(ledger: Ledger) -> None:
    ledger.plan("job", iter([["/a", "/b"], ["/c"], ["/d"]]))

    ledger.record_tries("job", [Attempt(0, 1, "process000 (pid 1)")], [])
    ledger.record_failed_try("job", 0, 1, "ValueError: first")
    ledger.record_tries("job", [Attempt(0, 2, "process001 (pid 2)"), Attempt(1, 1, "process000 (pid 1)")], [])
    ledger.record_failed_try("job", 1, 1, "KeyError: c")
    ledger.mark_exhausted("job", 1)
    ledger.record_tries("job", [Attempt(2, 1, "process000 (pid 1)")], [Success(0, 2, 1, 1)])

    assert ledger.mini_batches("job") == [
        MiniBatch(0, ("/a", "/b"), "succeeded", 2, 1, 1, "ValueError: first"),
        MiniBatch(1, ("/c",), "failed", 1, 0, 1, "KeyError: c"),
        MiniBatch(2, ("/d",), "pending", 0, 0, 0, None),
    ]


def test_a_group_records_many_tries_in_one_write(ledger: Ledger) -> None:
    ledger.plan("job", iter([["/a"], ["/b"], ["/c"]]))

    ledger.record_tries(
        "job",
        [Attempt(0, 1, "process000 (pid 1)"), Attempt(1, 1, "process001 (pid 2)"), Attempt(2, 1, "process000 (pid 1)")],
        [Success(0, 1, 1, 0), Success(1, 1, 0, 1)],
    )
    ledger.record_tries("job", [Attempt(2, 1, "process001 (pid 3)")], [])  # started again after a crash

    assert [
        (batch.status, batch.tries, batch.succeeded_items, batch.failed_items)
        for batch in ledger.mini_batches("job") or []
    ] == [
        ("succeeded", 1, 1, 0),
        ("succeeded", 1, 0, 1),
        ("pending", 0, 0, 0),
    ]


def test_a_try_started_again_within_one_group_is_recorded_once(ledger: Ledger) -> None:
    ledger.plan("job", iter([["/a"], ["/b"]]))

    started_again = [Attempt(0, 1, "process000 (pid 1)"), Attempt(0, 1, "process000 (pid 2)")]  # init() failed on pid 1
    ledger.record_tries("job", started_again, [Success(0, 1, 1, 0)])

    assert [(batch.status, batch.tries) for batch in ledger.mini_batches("job") or []] == [
        ("succeeded", 1),
        ("pending", 0),
    ]


def test_the_in_memory_ledger_keeps_attempts() -> None:
    ledger = InMemoryLedger()
    ledger.plan("job", iter([["/a"]]))
    ledger.record_tries("job", [Attempt(0, 1, "process000 (pid 1)")], [])
    ledger.record_failed_try("job", 0, 1, "boom")
    ledger.record_tries("job", [Attempt(0, 2, "process000 (pid 2)")], [])

    assert [(attempt.try_number, attempt.outcome, attempt.error) for attempt in ledger.attempts["job"].values()] == [
        (1, "failed", "boom"),
        (2, None, None),
    ]
