"""Compute clusters as ARM resources, and the compute a batch deployment names."""

from __future__ import annotations

from batchpoint.ml.computes.sizes import gpus_of, is_size_name
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
from tests.server import API, SUBSCRIPTION, WORKSPACE_ID, Server

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


def sizes_url(location: str, subscription: str = SUBSCRIPTION, collection: str = "vmSizes") -> str:
    return (
        f"/subscriptions/{subscription}/providers/Microsoft.MachineLearningServices/locations/{location}/{collection}"
    )


def test_vm_sizes_are_listed_in_every_location_of_the_subscriptions_workspaces(server: Server) -> None:
    """Azure's `VirtualMachineSizes_List`; a workspace in 'West Europe' makes 'westeurope' a location of its
    subscription, and ARM compares locations ignoring case and spaces."""
    group = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/europe"
    workspace = f"{group}/providers/Microsoft.MachineLearningServices/workspaces/europe-ws"
    with server.client() as client:
        before = client.get(sizes_url("westeurope"), params=V)
        client.put(group, params={"api-version": "2021-04-01"}, json={"location": "westeurope"}).raise_for_status()
        client.put(workspace, params=V, json={"location": "West Europe"}).raise_for_status()
        local = client.get(sizes_url("local", collection="VMSIZES"), params=V)
        europe = client.get(sizes_url("WestEurope"), params=V)
        other = client.get(sizes_url("westeurope", "11111111-1111-1111-1111-111111111111"), params=V)
        no_version = client.get(sizes_url("local"))

    assert local.status_code == 200 and local.json() == europe.json()
    v100 = next(size for size in local.json()["value"] if size["name"] == "Standard_NC6s_v3")
    assert v100 == {
        "name": "Standard_NC6s_v3",
        "family": "standardNCSv3Family",
        "vCPUs": 6,
        "gpus": 1,
        "osVhdSizeMB": 1047552,
        "maxResourceVolumeMB": 753664,
        "memoryGB": 112.0,
        "lowPriorityCapable": True,
        "premiumIO": True,
        "supportedComputeTypes": ["AmlCompute"],
    }
    for refused in (before, other):
        assert refused.status_code == 400
        error = refused.json()["error"]
        assert error["code"] == "NoRegisteredProviderFound"
        assert "for type 'locations/vmSizes'" in error["message"] and "location 'westeurope'" in error["message"]
        assert error["message"].endswith("The supported locations are 'local'.")  # before, and in the other
    assert no_version.status_code == 400 and no_version.json()["error"]["code"] == "MissingApiVersionParameter"


def test_sizes_name_the_gpus_that_ray_workers_ask_for() -> None:
    """One table: the sizes `list_sizes()` shows are the ones whose workers ask Ray for a GPU (`has_gpus`)."""
    assert [gpus_of(name) for name in ("standard_nc6s_v3", "STANDARD_ND96ASR_V4", "Standard_DS3_v2")] == [1, 8, 0]
    assert gpus_of("Standard_NC6") == 1  # a retired K80 size, not listed: an N-series node has a GPU at least
    assert gpus_of("Standard_F4s_v2") == 0 and gpus_of(None) == 0
    assert all(is_size_name(name) for name in ("Standard_NC6s_v3", "STANDARD_DS3_V2", "Basic_A1"))
    assert not any(is_size_name(name) for name in ("huge", "NC6s_v3", "Standard_", "Standard_NC 6"))
