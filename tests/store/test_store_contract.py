"""The store contract (``store/base.py``), on SQLite and PostgreSQL (with byte and with ICU English collation)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest

from batchpoint.store import AlreadyExists, FinalState, Store, VersionConflict
from batchpoint.store.entities import (
    Cursor,
    JobFilter,
    Listed,
    Operation,
    OperationKind,
    OperationStatus,
    Resource,
    RoleGrant,
    SortField,
    SortOrder,
    utcnow,
)
from batchpoint.store.indexes import CODE_VERSION_TYPE, JOB_TYPE, ROLE_ASSIGNMENT_TYPE

GROUP = "/subscriptions/s/resourceGroups/g"
WORKSPACE = f"{GROUP}/providers/Microsoft.MachineLearningServices/workspaces/ws"
ENDPOINTS = f"{WORKSPACE}/batchEndpoints"
ENDPOINT_TYPE = "Microsoft.MachineLearningServices/workspaces/batchEndpoints"
DEPLOYMENT_TYPE = f"{ENDPOINT_TYPE}/deployments"


def resource(resource_id: str, type_: str = ENDPOINT_TYPE, seconds: int = 0, **body: object) -> Resource:
    moment = utcnow() + timedelta(seconds=seconds)
    return Resource(id=resource_id, type=type_, body={"properties": body}, created_at=moment, updated_at=moment)


def test_a_resource_reads_back_under_any_casing(store: Store) -> None:
    stored = resource(f"{ENDPOINTS}/MyEndpoint", state="Creating")
    stored.private = {"primaryKey": "k"}
    store.insert(stored)

    found = store.get(f"{ENDPOINTS}/myendpoint")

    assert found is not None
    assert (found.id, found.body, found.private, found.version) == (stored.id, stored.body, stored.private, 1)
    assert store.get_body_json(f"{ENDPOINTS}/MYENDPOINT") == stored.body_json()
    assert store.get(f"{ENDPOINTS}/other") is None


def test_an_id_is_taken_whatever_its_casing(store: Store) -> None:
    store.insert(resource(f"{ENDPOINTS}/ep"))

    with pytest.raises(AlreadyExists):
        store.insert(resource(f"{ENDPOINTS}/EP"))


def test_several_resources_are_inserted_all_or_none(store: Store) -> None:
    store.insert(resource(f"{ENDPOINTS}/taken"))

    with pytest.raises(AlreadyExists):
        store.insert_many([resource(f"{ENDPOINTS}/new"), resource(f"{ENDPOINTS}/taken")])
    store.insert_many([resource(f"{ENDPOINTS}/new"), resource(f"{ENDPOINTS}/other")])

    assert [store.get(f"{ENDPOINTS}/{name}") is not None for name in ("new", "other")] == [True, True]


def test_an_update_from_an_old_version_is_refused(store: Store) -> None:
    store.insert(resource(f"{ENDPOINTS}/ep", state="Creating"))
    first, second = store.get(f"{ENDPOINTS}/ep"), store.get(f"{ENDPOINTS}/ep")
    assert first is not None and second is not None

    first.body["properties"]["state"] = "Succeeded"
    store.update(first)
    second.body["properties"]["state"] = "Failed"
    with pytest.raises(VersionConflict):
        store.update(second)

    found = store.get(f"{ENDPOINTS}/ep")
    assert found is not None
    assert (found.body["properties"]["state"], found.version, first.version) == ("Succeeded", 2, 2)


def test_an_update_never_brings_back_a_deleted_resource(store: Store) -> None:
    store.insert(resource(f"{ENDPOINTS}/ep"))
    read = store.get(f"{ENDPOINTS}/ep")
    assert read is not None
    store.delete_tree(read.id)

    store.update(read)

    assert store.get(read.id) is None


def test_delete_tree_takes_the_resource_and_what_is_below_it_only(store: Store) -> None:
    kept = [f"{ENDPOINTS}/ep{suffix}" for suffix in ("0", "-x", "_x", ".x", "$x", "+x", "a")]
    gone = [f"{ENDPOINTS}/ep", f"{ENDPOINTS}/ep/deployments/d", f"{ENDPOINTS}/ep/deployments/d/x/y"]
    for resource_id in kept + gone:
        store.insert(resource(resource_id))

    assert store.delete_tree(f"{ENDPOINTS}/EP") == len(gone)

    assert [resource_id for resource_id in kept + gone if store.get(resource_id)] == kept


def test_children_are_paged_in_order_after_a_cursor(store: Store) -> None:
    for index in range(7):
        store.insert(resource(f"{ENDPOINTS}/ep{index}", seconds=index))
    store.insert(resource(f"{ENDPOINTS}/ep3/deployments/d", DEPLOYMENT_TYPE))
    newest_first = SortOrder(SortField.CREATED, descending=True)

    pages, after = [], None
    while page := store.list_children(WORKSPACE, ENDPOINT_TYPE, newest_first, after, 3):
        pages.append([item.id.rsplit("/", 1)[-1] for item in page])
        after = page[-1].position

    assert pages == [["ep6", "ep5", "ep4"], ["ep3", "ep2", "ep1"], ["ep0"]]


def test_resources_below_an_ancestor_are_listed_by_range(store: Store) -> None:
    for name in ("ep", "ep$x"):
        store.insert(resource(f"{ENDPOINTS}/{name}"))
        store.insert(resource(f"{ENDPOINTS}/{name}/deployments/d", DEPLOYMENT_TYPE))

    found = store.list_below(f"{ENDPOINTS}/ep", DEPLOYMENT_TYPE, None, 10)

    assert [item.id for item in found] == [f"{ENDPOINTS}/ep/deployments/d"]


def job(
    name: str, endpoint: str | None, deployment: str | None, status: str, seconds: int = 0, workspace: str = WORKSPACE
) -> Resource:
    tags = {"azureml.endpointname": endpoint, "azureml.deploymentname": deployment} if endpoint else {}
    return resource(f"{workspace}/jobs/{name}", JOB_TYPE, seconds, status=status, properties=tags)


def names(page: list[Listed]) -> list[str]:
    return [item.id.rsplit("/", 1)[-1] for item in page]


def test_jobs_are_listed_per_endpoint_and_deployment_in_pages(store: Store) -> None:
    for index in range(5):
        store.insert(job(f"blue{index}", "Ep", "Blue", "Completed", seconds=index))
        store.insert(job(f"green{index}", "ep", "green", "Running", seconds=index))
    store.insert(job("step", None, None, "Running"))
    store.insert(job("elsewhere", "ep", "blue", "Running", workspace=f"{WORKSPACE}2"))

    first = store.list_jobs(WORKSPACE, "EP", JobFilter(deployment="BLUE"), SortOrder(), None, 3)
    second = store.list_jobs(WORKSPACE, "EP", JobFilter(deployment="BLUE"), SortOrder(), first[-1].position, 3)
    newest = store.list_jobs(WORKSPACE, "ep", JobFilter(), SortOrder(descending=True), None, 3)
    everything = store.list_jobs(WORKSPACE, "ep", JobFilter(), SortOrder(), None, 100)

    assert (names(first), names(second)) == (["blue0", "blue1", "blue2"], ["blue3", "blue4"])
    assert names(newest) == ["green4", "blue4", "green3"]
    assert sorted(names(everything)) == sorted([f"{color}{index}" for color in ("blue", "green") for index in range(5)])


def test_jobs_are_listed_by_status_and_creation_period(store: Store) -> None:
    for index in range(6):
        store.insert(
            job(f"j{index}", "ep", "blue" if index % 2 else "green", ("Failed", "Completed")[index % 3 > 0], index)
        )
    start = store.get(f"{WORKSPACE}/jobs/j1")
    assert start is not None
    second = int(start.created_at.timestamp() * 1_000_000)

    def listed(where: JobFilter, after: Cursor | None = None, limit: int = 10) -> list[Listed]:
        return store.list_jobs(WORKSPACE, "ep", where, SortOrder(descending=True), after, limit)

    assert names(listed(JobFilter(status="Failed"))) == ["j3", "j0"]
    assert names(listed(JobFilter(deployment="BLUE", status="Completed"))) == ["j5", "j1"]
    period = JobFilter(created_from_us=second, created_before_us=second + 3_000_000)
    assert names(listed(period)) == ["j3", "j2", "j1"]
    first = listed(JobFilter(status="Completed"), limit=2)
    assert names(first + listed(JobFilter(status="Completed"), first[-1].position)) == ["j5", "j4", "j2", "j1"]


def test_job_columns_follow_every_update(store: Store) -> None:
    for name, status in (("done", "Completed"), ("waiting", "NotStarted"), ("running", "Running")):
        store.insert(job(name, "ep", "d", status))
    running = store.get(f"{WORKSPACE}/jobs/running")
    assert running is not None
    running.body["properties"]["status"] = "Failed"
    store.update(running)

    assert store.jobs_by_status() == {"Completed": 1, "NotStarted": 1, "Failed": 1}
    store.delete_tree(WORKSPACE)
    assert store.jobs_by_status() == {} and store.list_jobs(WORKSPACE, "ep", JobFilter(), SortOrder(), None, 10) == []


def test_role_assignments_and_code_hashes_are_read_from_their_columns(store: Store) -> None:
    assignment = f"{WORKSPACE}/providers/Microsoft.Authorization/roleAssignments/a1"
    store.insert(resource(assignment, ROLE_ASSIGNMENT_TYPE, principalId="p1", scope=WORKSPACE, roleDefinitionId="r1"))
    for version, digest in (("1", "aaa"), ("2", "bbb")):
        code = resource(f"{WORKSPACE}/codes/c/versions/{version}", CODE_VERSION_TYPE)
        code.body["properties"]["properties"] = {"hash_sha256": digest, "hash_version": "202208"}
        store.insert(code)

    assert store.role_assignments() == [RoleGrant(assignment, "p1", WORKSPACE, "r1")]
    assert [found.name for found in store.code_versions_with_hash(WORKSPACE, "bbb")] == ["2"]
    assert store.code_versions_with_hash(f"{WORKSPACE}2", "bbb") == []
    store.delete_tree(assignment)
    assert store.role_assignments() == []


def test_a_transaction_keeps_all_or_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        store.insert(resource(f"{ENDPOINTS}/a"))
        assert store.get(f"{ENDPOINTS}/a") is not None  # the transaction reads its own writes
        store.insert(resource(f"{ENDPOINTS}/b"))
        raise RuntimeError("the request failed half-way")

    assert store.get(f"{ENDPOINTS}/a") is None and store.get(f"{ENDPOINTS}/b") is None

    with store.transaction():
        store.insert(resource(f"{ENDPOINTS}/a"))
        store.insert(resource(f"{ENDPOINTS}/b"))
    assert store.get(f"{ENDPOINTS}/a") is not None and store.get(f"{ENDPOINTS}/b") is not None


def test_a_refused_write_inside_a_transaction_leaves_it_usable(store: Store) -> None:
    store.insert(resource(f"{ENDPOINTS}/taken"))

    with store.transaction():
        store.insert(resource(f"{ENDPOINTS}/a"))
        with pytest.raises(AlreadyExists):
            store.insert(resource(f"{ENDPOINTS}/taken"))
        store.insert(resource(f"{ENDPOINTS}/b"))

    assert store.get(f"{ENDPOINTS}/a") is not None and store.get(f"{ENDPOINTS}/b") is not None


def test_one_operation_runs_on_a_resource_at_a_time(store: Store) -> None:
    first = Operation(id="op-1", resource_id=f"{ENDPOINTS}/ep", kind=OperationKind.PROVISION, location="local")
    store.add_operation(first)

    with pytest.raises(AlreadyExists):
        store.add_operation(
            Operation(id="op-2", resource_id=f"{ENDPOINTS}/EP", kind=OperationKind.DELETE, location="local")
        )
    assert store.running_operation(f"{ENDPOINTS}/ep").id == "op-1"

    first.status, first.ended_at, first.detail = OperationStatus.SUCCEEDED, utcnow(), {"step": "done"}
    store.save_operation(first)
    store.add_operation(
        Operation(id="op-3", resource_id=f"{ENDPOINTS}/ep", kind=OperationKind.DELETE, location="local")
    )

    saved = store.get_operation("op-1")
    assert saved is not None and (saved.status, saved.detail) == (OperationStatus.SUCCEEDED, {"step": "done"})
    running = store.running_operation(f"{ENDPOINTS}/Ep")
    assert running is not None and running.id == "op-3"


def test_a_job_that_ended_is_never_rewritten(store: Store) -> None:
    store.insert(job("a", "ep", "d", "Running"))
    stale, current = store.get(f"{WORKSPACE}/jobs/a"), store.get(f"{WORKSPACE}/jobs/a")
    assert stale is not None and current is not None
    current.body["properties"]["status"] = "Completed"
    store.update(current)

    stale.body["properties"]["status"] = "Failed"  # read before it ended
    with pytest.raises(FinalState):
        store.update(stale)
    current.body["properties"]["statusMessage"] = "Paused: written on a job that had ended"
    with pytest.raises(FinalState):
        store.update(current)  # refused by the update itself, on the job's indexed status
    for state in ("Running", "Failed", "Canceled"):
        latest = store.get(f"{WORKSPACE}/jobs/a")
        assert latest is not None
        latest.body["properties"]["status"] = state
        with pytest.raises(FinalState):
            store.update(latest)

    assert store.jobs_by_status() == {"Completed": 1}
    ended = store.get(f"{WORKSPACE}/jobs/a")
    assert ended is not None and "statusMessage" not in ended.body["properties"]


def test_the_loops_view_reads_at_once_while_a_writer_holds_its_transaction(store: Store) -> None:
    """SQLite offers the event loop a view whose reads never wait (WAL: a writer does not hold readers up); a
    database over the network offers none."""
    view = store.loop_reads()
    if not str(store.engine.url).startswith("sqlite"):  # type: ignore[attr-defined]
        assert view is None
        return
    assert view is not None
    store.insert(resource(f"{ENDPOINTS}/a", state="Creating"))
    writing, release = threading.Event(), threading.Event()

    def hold_a_write() -> None:
        with store.transaction():
            changed = store.get(f"{ENDPOINTS}/a")
            assert changed is not None
            changed.body["properties"]["state"] = "Succeeded"
            store.update(changed)
            writing.set()
            release.wait(10)

    writer = threading.Thread(target=hold_a_write)
    writer.start()
    assert writing.wait(10)
    started = time.monotonic()
    before = view.get(f"{ENDPOINTS}/a")
    waited = time.monotonic() - started
    release.set()
    writer.join()

    assert before is not None and before.body["properties"]["state"] == "Creating" and waited < 0.5
    after = view.get(f"{ENDPOINTS}/a")
    assert after is not None and after.body["properties"]["state"] == "Succeeded"
    assert [listed.id for listed in view.list_children(WORKSPACE, ENDPOINT_TYPE, SortOrder(), None, 10)] == [
        f"{ENDPOINTS}/a"
    ]
