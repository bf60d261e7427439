"""The store contract (``store/base.py``), on SQLite and PostgreSQL (with byte and with ICU English collation)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from batchpoint.store import AlreadyExists, Store, VersionConflict
from batchpoint.store.entities import Operation, OperationKind, OperationStatus, Resource, SortOrder, SortField, utcnow

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
    stored.secrets = {"primaryKey": "k"}
    store.insert(stored)

    found = store.get(f"{ENDPOINTS}/myendpoint")

    assert found is not None
    assert (found.id, found.body, found.secrets, found.version) == (stored.id, stored.body, stored.secrets, 1)
    assert store.get_body_json(f"{ENDPOINTS}/MYENDPOINT") == stored.body_json()
    assert store.get(f"{ENDPOINTS}/other") is None


def test_an_id_is_taken_whatever_its_casing(store: Store) -> None:
    store.insert(resource(f"{ENDPOINTS}/ep"))

    with pytest.raises(AlreadyExists):
        store.insert(resource(f"{ENDPOINTS}/EP"))


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
        store.add_operation(Operation(id="op-2", resource_id=f"{ENDPOINTS}/EP", kind=OperationKind.DELETE, location="local"))
    assert [operation.id for operation in store.running_operations()] == ["op-1"]

    first.status, first.ended_at, first.detail = OperationStatus.SUCCEEDED, utcnow(), {"step": "done"}
    store.save_operation(first)
    store.add_operation(Operation(id="op-3", resource_id=f"{ENDPOINTS}/ep", kind=OperationKind.DELETE, location="local"))

    saved = store.get_operation("op-1")
    assert saved is not None and (saved.status, saved.detail) == (OperationStatus.SUCCEEDED, {"step": "done"})
    running = store.running_operation(f"{ENDPOINTS}/Ep")
    assert running is not None and running.id == "op-3"
