"""The leases contract on every backend: one owner at a time, takeover after expiry, claims that never overlap, and
fences: a write under a claim that no longer holds is refused in its own transaction, and keeps nothing."""

from __future__ import annotations

import threading
import time

import pytest

from batchpoint.runtime.ledger import RUN_DONE, Attempt, Success, TryEnd
from batchpoint.store import Store
from batchpoint.store.entities import Operation, OperationKind, OperationStatus, Resource
from batchpoint.store.leases import JOB, OPERATION, Fence, LeaseKey, LeaseLost
from tests.store.test_store_contract import WORKSPACE, job

NOW = 1_000_000_000
LATER = NOW + 30_000_000
JOB_A = LeaseKey(JOB, "/jobs/a")


def test_a_lease_has_one_owner_until_it_expires_and_each_claim_is_a_new_epoch(store: Store) -> None:
    leases = store.leases()
    assert leases.add(JOB_A, "one", LATER) == Fence(JOB_A, "one", 1)
    assert leases.add(JOB_A, "two", LATER) is None

    assert leases.claim(JOB_A, "two", NOW, LATER) is None
    assert leases.claim(JOB_A, "one", NOW, LATER) == Fence(JOB_A, "one", 2)  # its owner may claim it again
    assert leases.claim(JOB_A, "two", LATER + 1, LATER + 30_000_000) == Fence(JOB_A, "two", 3)  # expired
    assert leases.renew("one", LATER * 2) == {}
    assert leases.renew("two", LATER * 2) == {JOB_A: 3}


def test_given_back_leases_are_free_at_once(store: Store) -> None:
    leases = store.leases()
    leases.add(JOB_A, "dead/1", LATER)
    leases.add(LeaseKey(OPERATION, "op"), "dead/1", LATER)
    other = leases.add(LeaseKey(JOB, "/jobs/b"), "other/1", LATER)
    assert other is not None

    assert leases.release_owners("dead/", "dead/2") == 2
    leases.release("other/1", [other])

    assert sorted(fence.key.subject for fence in leases.claim_free(JOB, "new", NOW, LATER, 10)) == [
        "/jobs/a",
        "/jobs/b",
    ]
    assert leases.claim_free(OPERATION, "new", NOW, LATER, 10) == [Fence(LeaseKey(OPERATION, "op"), "new", 2)]
    assert leases.claim_free(JOB, "newer", NOW, LATER, 10) == []


def test_a_fence_that_no_longer_holds_neither_gives_back_nor_ends_the_lease(store: Store) -> None:
    leases = store.leases()
    stale = leases.add(JOB_A, "one", NOW)
    assert stale is not None
    current = leases.claim(JOB_A, "one", NOW, LATER)  # the same owner, claimed again: the old claim is stale too

    leases.release("one", [stale])
    leases.finish(stale)

    assert leases.renew("one", LATER) == {JOB_A: 2}
    assert current is not None
    leases.finish(current)
    assert leases.renew("one", LATER) == {}


def test_racing_claims_never_share_a_lease(store: Store) -> None:
    leases = store.leases()
    subjects = [f"/jobs/{index:03d}" for index in range(60)]
    for subject in subjects:
        leases.add(LeaseKey(JOB, subject), "dead", NOW - 1)
    claimed: dict[str, list[str]] = {}

    def claim(owner: str) -> None:
        mine: list[str] = []
        while batch := leases.claim_free(JOB, owner, NOW, LATER, 5):
            mine += [fence.key.subject for fence in batch]
        claimed[owner] = mine

    threads = [threading.Thread(target=claim, args=(f"owner-{index}",)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    everything = [subject for mine in claimed.values() for subject in mine]
    assert sorted(everything) == subjects


def test_a_cancel_request_lasts_until_the_work_ends(store: Store) -> None:
    leases = store.leases()
    fence = leases.add(JOB_A, "one", LATER)
    assert fence is not None
    leases.request_cancel(JOB_A.subject, NOW)
    leases.request_cancel(JOB_A.subject, NOW)

    assert leases.cancel_requested([JOB_A.subject, "/jobs/other"]) == {JOB_A.subject}
    leases.finish(fence)
    assert leases.cancel_requested([JOB_A.subject]) == set()
    assert leases.claim(JOB_A, "one", LATER * 2, LATER * 3) is None


JOB_ID = f"{WORKSPACE}/jobs/a"


def owned_job(store: Store) -> tuple[Fence, Resource]:
    """A running job (and an operation) and the fence of its owner's claim, which has expired: any process may
    claim it now."""
    store.insert(job("a", "ep", "d", "Running"))
    store.add_operation(Operation(id="op", resource_id=JOB_ID, kind=OperationKind.PROVISION, location="local"))
    fence = store.leases().add(LeaseKey(JOB, JOB_ID.lower()), "stuck", NOW)
    found = store.get(JOB_ID)
    assert fence is not None and found is not None
    return fence, found


def every_write(store: Store, fence: Fence, resource: Resource) -> None:
    """The writes a job's owner makes: its status, a child job, a ledger group, the operation it runs."""
    ledger = store.ledger(fence)
    with store.fenced(fence):
        resource.body["properties"]["status"] = "Completed"
        store.update(resource)
        store.insert(job("a-step", None, None, "NotStarted"))
        ledger.plan("j", [["f0"], ["f1"]])
        ledger.record_tries("j", [Attempt(0, 1, "w")], [Success(0, 1, 1, 0, TryEnd(RUN_DONE, 0.0, 0.1))])
        operation = store.get_operation("op")
        assert operation is not None
        operation.detail = {"step": "written"}
        store.save_operation(operation)


def test_the_owners_writes_go_while_its_fence_holds(store: Store) -> None:
    fence, resource = owned_job(store)

    every_write(store, fence, resource)
    store.ledger(fence).confirm_writer("j")

    assert store.get(JOB_ID).body["properties"]["status"] == "Completed"  # type: ignore[union-attr]
    assert store.get(f"{WORKSPACE}/jobs/a-step") is not None and store.ledger().mini_batches("j") is not None
    assert store.ledger(fence).generation == 1


@pytest.mark.parametrize("moved_on", ["claimed by another", "ended"])
def test_no_write_of_an_owner_whose_lease_moved_on_lands(store: Store, moved_on: str) -> None:
    fence, resource = owned_job(store)
    if moved_on == "ended":
        store.leases().finish(fence)
    else:
        assert store.leases().claim(fence.key, "other", NOW + 1, LATER) is not None

    with pytest.raises(LeaseLost):
        every_write(store, fence, resource)
    for ledger_write in (lambda ledger: ledger.plan("j", [["f0"]]), lambda ledger: ledger.confirm_writer("j")):
        with pytest.raises(LeaseLost):
            ledger_write(store.ledger(fence))  # refused whether or not the thread writes fenced

    assert store.get(JOB_ID).body["properties"]["status"] == "Running"  # type: ignore[union-attr]
    assert store.get(f"{WORKSPACE}/jobs/a-step") is None and store.ledger().mini_batches("j") is None
    assert store.get_operation("op").detail is None  # type: ignore[union-attr]
    store.leases().release("stuck")  # the leases' own calls are not fenced


def test_a_claim_waits_for_the_owners_write_in_flight_then_its_next_write_is_refused(store: Store) -> None:
    fence, resource = owned_job(store)
    claimed: list[Fence | None] = []
    claimer = threading.Thread(target=lambda: claimed.append(store.leases().claim(fence.key, "other", NOW + 1, LATER)))

    with store.fenced(fence), store.transaction():
        resource.body["properties"]["statusMessage"] = "written under the old claim"
        store.update(resource)
        claimer.start()
        time.sleep(0.3)
        assert not claimed, "the claim did not wait for the transaction that checked the fence"
    claimer.join()

    assert claimed[0] is not None and claimed[0].epoch == 2
    with pytest.raises(LeaseLost), store.fenced(fence):
        store.update(resource)


def test_an_operation_that_ended_stays_as_it_ended(store: Store) -> None:
    operation = Operation(id="op", resource_id=JOB_ID, kind=OperationKind.PROVISION, location="local")
    store.add_operation(operation)
    operation.status = OperationStatus.SUCCEEDED
    store.save_operation(operation)

    operation.status, operation.error_code = OperationStatus.FAILED, "Late"
    store.save_operation(operation)

    saved = store.get_operation("op")
    assert saved is not None and (saved.status, saved.error_code) == (OperationStatus.SUCCEEDED, None)
