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
