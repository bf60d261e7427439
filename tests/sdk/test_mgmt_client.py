"""The official management client (azure-mgmt-machinelearningservices 2.0.0b2), unmodified, runs all 11
batch operations against the real server over HTTPS."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.mgmt.machinelearningservices import MachineLearningServicesMgmtClient, models

from tests.sdk.credentials import StaticTokenCredential
from tests.server import SUBSCRIPTION, Server

RG, WS, EP = "local", "default", "mgmt-ep"
POLLER_SECONDS = 3.0


@pytest.fixture(scope="module")
def client(tls_server: Server) -> Iterator[MachineLearningServicesMgmtClient]:
    mgmt = MachineLearningServicesMgmtClient(
        StaticTokenCredential(tls_server.cli_token()),
        SUBSCRIPTION,
        base_url=tls_server.base_url,
        polling_interval=1,
        connection_verify=str(tls_server.ca_cert),
    )
    yield mgmt
    mgmt.close()


def finish(poller):  # type: ignore[no-untyped-def]
    """Wait for an LRO poller, asserting it needs no more than a couple of seconds."""
    started = time.monotonic()
    result = poller.result()
    assert time.monotonic() - started < POLLER_SECONDS
    return result


def endpoint() -> models.BatchEndpoint:
    return models.BatchEndpoint(
        location="local", properties=models.BatchEndpointProperties(auth_mode="AADToken", description="mgmt")
    )


def deployment(index: int) -> models.BatchDeployment:
    return models.BatchDeployment(
        location="local",
        tags={"index": str(index)},
        properties=models.BatchDeploymentProperties(mini_batch_size=5, max_concurrency_per_instance=2),
    )


def test_all_eleven_operations(client: MachineLearningServicesMgmtClient) -> None:
    created = finish(client.batch_endpoints.begin_create_or_update(RG, WS, EP, endpoint()))
    assert created.name == EP and created.properties.provisioning_state == "Succeeded"
    assert EP in [item.name for item in client.batch_endpoints.list(RG, WS, count=10)]
    assert client.batch_endpoints.get(RG, WS, EP).properties.description == "mgmt"
    patched = finish(
        client.batch_endpoints.begin_update(
            RG, WS, EP, models.PartialMinimalTrackedResourceWithIdentity(tags={"a": "b"})
        )
    )
    assert patched.tags == {"a": "b"}
    keys = client.batch_endpoints.list_keys(RG, WS, EP)
    assert keys.primary_key and keys.secondary_key

    for index in range(5):
        made = finish(client.batch_deployments.begin_create_or_update(RG, WS, EP, f"dep{index}", deployment(index)))
        assert made.properties.provisioning_state == "Succeeded"
        assert made.properties.mini_batch_size == 5 and made.properties.output_file_name == "predictions.csv"

    pager = client.batch_deployments.list(RG, WS, EP, order_by="createdAt desc", top=2).by_page()
    pages = [[item.name for item in page] for page in pager]
    assert pages == [["dep4", "dep3"], ["dep2", "dep1"], ["dep0"]]

    assert client.batch_deployments.get(RG, WS, EP, "dep2").tags == {"index": "2"}
    updated = finish(
        client.batch_deployments.begin_update(
            RG,
            WS,
            EP,
            "dep2",
            models.PartialBatchDeploymentPartialMinimalTrackedResourceWithProperties(
                tags={"stage": "prod"}, properties=models.PartialBatchDeployment(description="promoted")
            ),
        )
    )
    assert updated.tags == {"stage": "prod"} and updated.properties.description == "promoted"

    finish(client.batch_deployments.begin_delete(RG, WS, EP, "dep2"))
    with pytest.raises(ResourceNotFoundError):
        client.batch_deployments.get(RG, WS, EP, "dep2")

    finish(client.batch_endpoints.begin_delete(RG, WS, EP))
    with pytest.raises(ResourceNotFoundError):
        client.batch_endpoints.get(RG, WS, EP)
    with pytest.raises(ResourceNotFoundError):
        client.batch_deployments.get(RG, WS, EP, "dep0")
