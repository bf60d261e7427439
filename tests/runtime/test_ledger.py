"""The ledger contract, run against every implementation in this package's tests.

A new implementation joins by adding a factory to LEDGERS."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from batchpoint.runtime.ledger import Attempt, InMemoryLedger, Ledger, MiniBatch, Success, TryEnd
from batchpoint.store import open_store
from tests.store.conftest import database_url

LEDGERS: dict[str, Callable[[Path], Ledger]] = {
    "in-memory": lambda path: InMemoryLedger(),
    "sqlite": lambda path: open_store(f"sqlite:///{path / 'ledger.db'}").ledger(),
    "postgresql": lambda path: open_store(database_url("postgresql", path)).ledger(),
}


DONE = TryEnd("RUN_DONE", 1700000000.5, 0.25, 0.125, 0.2)
RAISED = TryEnd("RUN_EXCEPTION", 1700000001.0, 0.5, 0.25, 0.5)
DIED = TryEnd("PROCESS_EXITED", 1700000002.0, 1.5)


@pytest.fixture(params=sorted(LEDGERS))
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Ledger:
    return LEDGERS[request.param](tmp_path)


def test_a_job_is_planned_once_in_the_order_given(ledger: Ledger) -> None:
    assert ledger.mini_batches("job") is None

    assert ledger.plan("job", iter([["/a", "/b"], ["/c"]]))
    assert not ledger.plan("job", iter([["/other"]]))

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


def test_a_forgotten_job_can_be_planned_afresh(ledger: Ledger) -> None:
    ledger.plan("job", iter([["/a"]]))
    ledger.plan("other job", iter([["/b"]]))
    ledger.record_tries("job", [Attempt(0, 1, "process000 (pid 1)")], [])

    ledger.forget("job")
    ledger.forget("never planned")

    assert ledger.mini_batches("job") is None
    assert ledger.mini_batches("other job") == [MiniBatch(0, ("/b",))]
    ledger.plan("job", iter([["/c"]]))
    assert ledger.mini_batches("job") == [MiniBatch(0, ("/c",))]


def test_tries_errors_and_outcomes_are_recorded(ledger: Ledger) -> None:
    ledger.plan("job", iter([["/a", "/b"], ["/c"], ["/d"]]))

    ledger.record_tries("job", [Attempt(0, 1, "process000 (pid 1)")], [])
    ledger.record_failed_try("job", 0, 1, "ValueError: first", RAISED)
    ledger.record_tries("job", [Attempt(0, 2, "process001 (pid 2)"), Attempt(1, 1, "process000 (pid 1)")], [])
    ledger.record_failed_try("job", 1, 1, "KeyError: c", RAISED)
    ledger.mark_exhausted("job", 1)
    ledger.record_tries("job", [Attempt(2, 1, "process000 (pid 1)")], [Success(0, 2, 1, 1, DONE)])

    assert ledger.mini_batches("job") == [
        MiniBatch(0, ("/a", "/b"), "succeeded", 2, 1, 1, "ValueError: first"),
        MiniBatch(1, ("/c",), "failed", 1, 0, 1, "KeyError: c"),
        MiniBatch(2, ("/d",), "pending", 0, 0, 0, None),
    ]


def test_an_error_quoting_a_file_name_that_is_not_utf_8_or_a_nul_is_kept_readable(ledger: Ledger) -> None:
    """What Pillow's or open()'s error says of a file named in Latin-1 (`caf\\xe9.png`, which Python carries as a
    surrogate), or of a file's NUL bytes: before, SQLite and PostgreSQL refused it, and the job failed "outside its
    scoring script" with the database's error."""
    ledger.plan("job", iter([["/in/caf\udce9.png"]]))
    ledger.record_tries("job", [Attempt(0, 1, "process000 (pid 1)")], [])

    ledger.record_failed_try(
        "job", 0, 1, "cannot identify image file '/in/caf\udce9.png'; header PK\x03\x04\x00", RAISED
    )

    (batch,) = ledger.mini_batches("job") or []
    assert batch.files == ("/in/caf\udce9.png",)
    assert batch.last_error == "cannot identify image file '/in/caf\\xe9.png'; header PK\x03\x04\\x00"
    assert [attempt.error for attempt in ledger.attempts("job")] == [batch.last_error]


def test_a_group_records_many_tries_in_one_write(ledger: Ledger) -> None:
    ledger.plan("job", iter([["/a"], ["/b"], ["/c"]]))

    ledger.record_tries(
        "job",
        [Attempt(0, 1, "process000 (pid 1)"), Attempt(1, 1, "process001 (pid 2)"), Attempt(2, 1, "process000 (pid 1)")],
        [Success(0, 1, 1, 0, DONE), Success(1, 1, 0, 1, DONE)],
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
    ledger.record_tries("job", started_again, [Success(0, 1, 1, 0, DONE)])

    assert [(batch.status, batch.tries) for batch in ledger.mini_batches("job") or []] == [
        ("succeeded", 1),
        ("pending", 0),
    ]


def test_tries_are_read_back_in_order_with_where_they_ran_and_how_they_ended(ledger: Ledger) -> None:
    ledger.plan("job", iter([["/a"], ["/b"]]))
    ledger.record_tries("job", [Attempt(1, 1, "process000 on node 0", "0", "process000")], [])
    ledger.record_failed_try("job", 1, 1, "boom", DIED)
    ledger.record_tries("job", [Attempt(0, 1, "process001 on node 1", "1", "process001")], [])
    retry = Attempt(1, 2, "process002 on node 0", "0", "process002", started=1700000003.0)
    ledger.record_tries("job", [retry], [Success(0, 1, 1, 0, DONE)])

    assert list(ledger.attempts("job")) == [
        Attempt(0, 1, "process001 on node 1", "1", "process001", "succeeded", None, DONE, DONE.started),
        Attempt(1, 1, "process000 on node 0", "0", "process000", "failed", "boom", DIED, DIED.started),
        retry,  # running: when it started, by the coordinator's clock
    ]
    assert list(ledger.attempts("other job")) == []


def test_a_job_of_many_tries_is_read_back_whole(ledger: Ledger) -> None:
    count = 2500  # more than one read of the SQL ledger
    ledger.plan("job", iter([f"/{index}"] for index in range(count)))
    ledger.record_tries("job", [Attempt(index, 1, "p", "0", "process000") for index in range(count)], [])

    assert [attempt.index for attempt in ledger.attempts("job")] == list(range(count))
