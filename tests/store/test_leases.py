"""The leases contract on every backend: one owner at a time, takeover after expiry, claims that never overlap."""

from __future__ import annotations

import threading

from batchpoint.store import Store
from batchpoint.store.leases import JOB, OPERATION, LeaseKey

NOW = 1_000_000_000
LATER = NOW + 30_000_000
JOB_A = LeaseKey(JOB, "/jobs/a")


def test_a_lease_has_one_owner_until_it_expires(store: Store) -> None:
    leases = store.leases()
    assert leases.add(JOB_A, "one", LATER)
    assert not leases.add(JOB_A, "two", LATER)

    assert not leases.claim(JOB_A, "two", NOW, LATER)
    assert leases.claim(JOB_A, "one", NOW, LATER)  # its owner may claim it again
    assert leases.claim(JOB_A, "two", LATER + 1, LATER + 30_000_000)  # expired: anyone may take it over
    assert leases.renew("one", LATER * 2) == set()
    assert leases.renew("two", LATER * 2) == {JOB_A}


def test_given_back_leases_are_free_at_once(store: Store) -> None:
    leases = store.leases()
    leases.add(JOB_A, "dead/1", LATER)
    leases.add(LeaseKey(OPERATION, "op"), "dead/1", LATER)
    leases.add(LeaseKey(JOB, "/jobs/b"), "other/1", LATER)

    assert leases.release_owners("dead/", "dead/2") == 2
    leases.release("other/1", [LeaseKey(JOB, "/jobs/b")])

    assert sorted(leases.claim_free(JOB, "new", NOW, LATER, 10)) == ["/jobs/a", "/jobs/b"]
    assert leases.claim_free(OPERATION, "new", NOW, LATER, 10) == ["op"]
    assert leases.claim_free(JOB, "newer", NOW, LATER, 10) == []


def test_racing_claims_never_share_a_lease(store: Store) -> None:
    leases = store.leases()
    subjects = [f"/jobs/{index:03d}" for index in range(60)]
    for subject in subjects:
        leases.add(LeaseKey(JOB, subject), "dead", NOW - 1)
    claimed: dict[str, list[str]] = {}

    def claim(owner: str) -> None:
        mine: list[str] = []
        while batch := leases.claim_free(JOB, owner, NOW, LATER, 5):
            mine += batch
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
    leases.add(JOB_A, "one", LATER)
    leases.request_cancel(JOB_A.subject, NOW)
    leases.request_cancel(JOB_A.subject, NOW)

    assert leases.cancel_requested([JOB_A.subject, "/jobs/other"]) == {JOB_A.subject}
    leases.finish(JOB_A)
    assert leases.cancel_requested([JOB_A.subject]) == set()
    assert not leases.claim(JOB_A, "one", LATER * 2, LATER * 3)
