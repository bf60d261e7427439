"""Compute clusters through the unmodified ``azure-ai-ml`` MLClient, and deployments that name them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from azure.ai.ml import MLClient
from azure.ai.ml.entities import AmlCompute, BatchEndpoint, ModelBatchDeployment
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from tests.sdk.mlclient import connect
from tests.server import WORKSPACE_ID, Server


@pytest.fixture(scope="module")
def ml_client(tls_server: Server) -> Iterator[MLClient]:
    with pytest.MonkeyPatch.context() as patch:
        yield connect(tls_server, patch)


def test_cluster_lifecycle(ml_client: MLClient) -> None:
    cluster = AmlCompute(
        name="lifecycle",
        size="Standard_DS3_v2",
        min_instances=0,
        max_instances=2,
        idle_time_before_scale_down=300,
        tier="low_priority",
    )
    created = ml_client.compute.begin_create_or_update(cluster).result()
    got = ml_client.compute.get("lifecycle")
    listed = {compute.name: compute for compute in ml_client.compute.list()}

    assert created.id == got.id == f"{WORKSPACE_ID}/computes/lifecycle"
    assert isinstance(got, AmlCompute) and got.provisioning_state == "Succeeded"
    assert (got.size, got.min_instances, got.max_instances) == ("Standard_DS3_v2", 0, 2)
    assert got.idle_time_before_scale_down == 300 and got.tier == "low_priority"
    assert {"lifecycle", "local-workers"} <= set(listed)

    got.max_instances = 3
    assert ml_client.compute.begin_update(got).result().max_instances == 3
    ml_client.compute.begin_delete("lifecycle").result()
    with pytest.raises(ResourceNotFoundError):
        ml_client.compute.get("lifecycle")


def test_deployments_must_name_an_existing_compute(ml_client: MLClient) -> None:
    ml_client.batch_endpoints.begin_create_or_update(BatchEndpoint(name="compute-ep")).result()
    ml_client.compute.begin_create_or_update(AmlCompute(name="named-cluster", max_instances=2)).result()
    named = ModelBatchDeployment(name="named", endpoint_name="compute-ep", compute="azureml:named-cluster")
    created = ml_client.batch_deployments.begin_create_or_update(named).result()
    missing = ModelBatchDeployment(name="missing", endpoint_name="compute-ep", compute="azureml:no-such-cluster")
    with pytest.raises(HttpResponseError) as refused:
        ml_client.batch_deployments.begin_create_or_update(missing).result()

    assert created.compute == f"{WORKSPACE_ID}/computes/named-cluster"
    assert "no-such-cluster" in str(refused.value)


def test_list_sizes_gives_each_sizes_gpus(ml_client: MLClient) -> None:
    """`list_sizes()` asks the workspace's location (`local`), then parses Azure's VirtualMachineSize list."""
    sizes = {size.name: size for size in ml_client.compute.list_sizes()}
    for_clusters = list(ml_client.compute.list_sizes(compute_type="AmlCompute"))
    for_instances = list(ml_client.compute.list_sizes(compute_type="ComputeInstance"))

    v100 = sizes["Standard_NC6s_v3"]
    assert (v100.family, v100.gpus) == ("standardNCSv3Family", 1)
    # azure-ai-ml's VmSize keeps the wire's names for the others (its v_cp_us, memory_gb stay None, on Azure too)
    assert (vars(v100)["vCPUs"], vars(v100)["memoryGB"], vars(v100)["maxResourceVolumeMB"]) == (6, 112.0, 753664)
    assert sizes["Standard_ND96asr_v4"].gpus == 8 and sizes["Standard_NV12s_v3"].gpus == 1
    assert sizes["Standard_DS3_v2"].gpus == 0
    assert len(for_clusters) == len(sizes) and for_instances == []  # batchpoint runs clusters only


def test_a_cluster_of_a_gpu_size_reports_its_gpus_through_its_size(ml_client: MLClient) -> None:
    """Azure's AmlCompute has no GPU field: a cluster's GPUs are those of its size in `list_sizes()`."""
    ml_client.compute.begin_create_or_update(AmlCompute(name="v100s", size="STANDARD_NC6s_v3")).result()
    got = ml_client.compute.get("v100s")
    sizes = {size.name.lower(): size for size in ml_client.compute.list_sizes(location=got.location)}

    assert got.size == "STANDARD_NC6s_v3"
    assert sizes[got.size.lower()].gpus == 1


def test_an_unknown_location_or_size_is_refused_as_azure_refuses_it(ml_client: MLClient) -> None:
    with pytest.raises(HttpResponseError) as no_location:
        list(ml_client.compute.list_sizes(location="atlantis"))
    with pytest.raises(HttpResponseError) as no_size:
        ml_client.compute.begin_create_or_update(AmlCompute(name="not-a-size", size="huge")).result()

    assert no_location.value.status_code == 400 and no_location.value.error is not None
    assert no_location.value.error.code == "NoRegisteredProviderFound"
    assert "location 'atlantis'" in no_location.value.message and "'local'" in no_location.value.message
    assert no_size.value.status_code == 400 and "The VM size 'huge' is not a VM size" in no_size.value.message
