"""Compute clusters as ARM resources, and the compute a batch deployment names."""

from __future__ import annotations

from tests.api.arm import (
    compute_body,
    compute_url,
    create_compute,
    create_endpoint,
    deployment_body,
    deployment_url,
    put_and_wait,
    wait_for_operation,
)
from tests.server import API, WORKSPACE_ID, Server

V = {"api-version": API}
DELETE = {**V, "underlyingResourceAction": "Delete"}


def test_a_cluster_is_created_as_a_long_running_operation_and_keeps_what_was_asked(server: Server) -> None:
    body = compute_body(3, vmSize="Standard_NC6", vmPriority="lowpriority")
    with server.client() as client:
        created = client.put(compute_url("gpu-cluster"), params=V, json=body)
        status = wait_for_operation(client, created).json()
        got = client.get(compute_url("gpu-cluster"), params=V).json()
    assert created.status_code == 201 and status["status"] == "Succeeded"
    assert got["type"] == "Microsoft.MachineLearningServices/workspaces/computes"
    assert got["properties"]["computeType"] == "AmlCompute"
    assert got["properties"]["provisioningState"] == "Succeeded"
    cluster = got["properties"]["properties"]
    assert cluster["vmSize"] == "Standard_NC6" and cluster["vmPriority"] == "LowPriority"
    assert cluster["scaleSettings"] == {"maxNodeCount": 3, "minNodeCount": 0, "nodeIdleTimeBeforeScaleDown": "PT2M"}


def test_scale_settings_can_change_but_the_vm_size_cannot(server: Server) -> None:
    """VM sizes are case-insensitive, as on Azure: `az ml compute create`'s default STANDARD_DS3_V2 is the size an
    SDK script later names Standard_DS3_v2."""
    with server.client() as client:
        put_and_wait(client, compute_url("resized"), compute_body(2, vmSize="STANDARD_DS3_V2"))
        scaled = put_and_wait(client, compute_url("resized"), compute_body(5, vmSize="Standard_DS3_v2")).json()
        resized = client.put(compute_url("resized"), params=V, json=compute_body(5, vmSize="Standard_NC6"))
    assert scaled["properties"]["properties"]["scaleSettings"]["maxNodeCount"] == 5
    assert scaled["properties"]["properties"]["vmSize"] == "STANDARD_DS3_V2"
    assert resized.status_code == 400 and "vmSize" in resized.json()["error"]["message"]


def test_bad_clusters_are_refused_with_the_reason(server: Server) -> None:
    aks = {"location": "local", "properties": {"computeType": "AKS", "properties": {"agentCount": 3}}}
    with server.client() as client:
        no_scale = client.put(compute_url("c1"), params=V, json={"properties": {"computeType": "AmlCompute"}})
        inverted = client.put(
            compute_url("c2"), params=V, json=compute_body(1, scaleSettings={"maxNodeCount": 1, "minNodeCount": 2})
        )
        other_type = client.put(compute_url("c3"), params=V, json=aks)
        bad_name = client.put(compute_url("-bad"), params=V, json=compute_body())
    assert no_scale.status_code == 400 and "scaleSettings" in no_scale.json()["error"]["message"]
    assert inverted.status_code == 400 and "minNodeCount" in inverted.json()["error"]["message"]
    assert other_type.status_code == 400 and "AmlCompute" in other_type.json()["error"]["message"]
    assert bad_name.status_code == 400 and "-bad" in bad_name.json()["error"]["message"]


def test_list_is_paged_and_includes_the_builtin_compute(server: Server) -> None:
    with server.client() as client:
        for index in range(3):
            create_compute(client, f"paged-{index}")
        first = client.get(f"{WORKSPACE_ID}/computes", params={**V, "count": 2}).json()
        names = [item["name"] for item in first["value"]]
        while first.get("nextLink"):
            first = client.get(first["nextLink"]).json()
            names += [item["name"] for item in first["value"]]
    assert {"local-workers", "paged-0", "paged-1", "paged-2"} <= set(names)
    assert len(names) == len(set(names))


def test_delete_removes_the_compute_and_the_builtin_one_stays(server: Server) -> None:
    with server.client() as client:
        create_compute(client, "doomed")
        deleted = client.delete(compute_url("doomed"), params=DELETE)
        wait_for_operation(client, deleted)
        gone = client.get(compute_url("doomed"), params=V)
        builtin = client.delete(compute_url("local-workers"), params=DELETE)
        missing_action = client.delete(compute_url("local-workers"), params=V)
    assert deleted.status_code == 202
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "ResourceNotFound"
    assert builtin.status_code == 400 and "built in" in builtin.json()["error"]["message"]
    assert missing_action.status_code == 400


def test_a_deployment_must_name_a_compute_that_exists(server: Server) -> None:
    with server.client() as client:
        create_endpoint(client, "compute-ep")
        create_compute(client, "batch-cluster")
        missing = client.put(
            deployment_url("compute-ep", "dep-1"),
            params=V,
            json=deployment_body(compute=f"{WORKSPACE_ID}/computes/nowhere"),
        )
        by_id = put_and_wait(
            client,
            deployment_url("compute-ep", "dep-2"),
            deployment_body(compute=f"{WORKSPACE_ID}/computes/batch-cluster"),
        )
        by_name = put_and_wait(
            client, deployment_url("compute-ep", "dep-3"), deployment_body(compute="azureml:batch-cluster")
        )
        without = put_and_wait(client, deployment_url("compute-ep", "dep-4"), deployment_body())
    assert missing.status_code == 400
    assert "'nowhere'" in missing.json()["error"]["message"]
    assert by_id.json()["properties"]["provisioningState"] == "Succeeded"
    assert by_name.json()["properties"]["compute"] == f"{WORKSPACE_ID}/computes/batch-cluster"
    assert "compute" not in without.json()["properties"]
