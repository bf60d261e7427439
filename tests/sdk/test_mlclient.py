"""Batch endpoints and deployments through the unmodified ``azure-ai-ml`` MLClient, over HTTPS."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ParamSpec, TypeVar

import pytest
from azure.ai.ml import MLClient
from azure.ai.ml.entities import BatchEndpoint, CodeConfiguration, Environment, Model, ModelBatchDeployment
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.core.polling import LROPoller

from tests.sdk.mlclient import connect, create_cluster
from tests.server import API, WORKSPACE_ID, Server

P = ParamSpec("P")
T = TypeVar("T")

LRO_BUDGET_SECONDS = 5.0
ASSET_KINDS = ("model", "code", "environment", "compute")


@pytest.fixture(scope="module")
def ml_client(tls_server: Server) -> Iterator[MLClient]:
    with pytest.MonkeyPatch.context() as patch:
        yield connect(tls_server, patch)


@pytest.fixture(scope="module")
def assets(ml_client: MLClient, tls_server: Server) -> dict[str, str]:
    """ARM ids of existing model, code and environment versions, and of a compute."""
    environment = ml_client.environments.create_or_update(Environment(name="sdk-env", version="1", image="python:3.11"))
    model = ml_client.models.create_or_update(
        Model(name="sdk-model", version="1", path="azureml://datastores/workspaceblobstore/paths/models/m")
    )
    code = f"{WORKSPACE_ID}/codes/sdk-code/versions/1"
    with tls_server.client() as client:
        response = client.put(code, params={"api-version": API}, json={"properties": {"codeUri": "https://x/y"}})
    assert response.status_code == 201, response.text
    compute = create_cluster(ml_client)
    return dict(zip(ASSET_KINDS, (model.id, code, environment.id, compute), strict=True))


def finish(begin: Callable[P, LROPoller[T]], *args: P.args, **kwargs: P.kwargs) -> T:
    """Start a long-running operation and wait for its result, within what a local server should take."""
    started = time.monotonic()
    result = begin(*args, **kwargs).result()
    elapsed = time.monotonic() - started
    assert elapsed < LRO_BUDGET_SECONDS, f"{begin.__qualname__} took {elapsed:.1f}s"
    return result


def model_deployment(name: str, endpoint: str, assets: dict[str, str]) -> ModelBatchDeployment:
    """A deployment of the test's model, code, environment and compute, as a user writes one."""
    return ModelBatchDeployment(
        name=name,
        endpoint_name=endpoint,
        model=assets["model"],
        code_configuration=CodeConfiguration(code=assets["code"], scoring_script="score.py"),
        environment=assets["environment"],
        compute=assets["compute"],
    )


def test_environment_and_model_versions_are_created(assets: dict[str, str]) -> None:
    assert assets["environment"] == f"{WORKSPACE_ID}/environments/sdk-env/versions/1"
    assert assets["model"] == f"{WORKSPACE_ID}/models/sdk-model/versions/1"


def test_batch_endpoint_lifecycle(ml_client: MLClient, tls_server: Server) -> None:
    created = finish(ml_client.batch_endpoints.begin_create_or_update, BatchEndpoint(name="sdk-ep", description="d"))
    got = ml_client.batch_endpoints.get("sdk-ep")
    listed = [endpoint.name for endpoint in ml_client.batch_endpoints.list()]
    finish(ml_client.batch_endpoints.begin_delete, "sdk-ep")

    assert created.name == got.name == "sdk-ep"
    assert created.id == got.id == f"{WORKSPACE_ID}/batchEndpoints/sdk-ep"
    assert created.provisioning_state == got.provisioning_state == "Succeeded"
    assert got.description == "d" and got.scoring_uri.startswith(tls_server.base_url)
    assert "sdk-ep" in listed
    with pytest.raises(ResourceNotFoundError):
        ml_client.batch_endpoints.get("sdk-ep")


def test_batch_deployment_lifecycle_and_default(ml_client: MLClient, assets: dict[str, str]) -> None:
    finish(ml_client.batch_endpoints.begin_create_or_update, BatchEndpoint(name="sdk-dep-ep"))
    blue = model_deployment("blue", "sdk-dep-ep", assets)
    created = finish(ml_client.batch_deployments.begin_create_or_update, blue)
    got = ml_client.batch_deployments.get("blue", endpoint_name="sdk-dep-ep")
    listed = [deployment.name for deployment in ml_client.batch_deployments.list(endpoint_name="sdk-dep-ep")]

    endpoint = ml_client.batch_endpoints.get("sdk-dep-ep")
    endpoint.defaults.deployment_name = "blue"
    finish(ml_client.batch_endpoints.begin_create_or_update, endpoint)
    default = ml_client.batch_endpoints.get("sdk-dep-ep").defaults.deployment_name

    finish(ml_client.batch_deployments.begin_delete, "blue", endpoint_name="sdk-dep-ep")

    assert created.name == got.name == "blue"
    assert created.id == got.id == f"{WORKSPACE_ID}/batchEndpoints/sdk-dep-ep/deployments/blue"
    assert created.provisioning_state == got.provisioning_state == "Succeeded"
    referenced = (got.model, got.code_configuration.code, got.environment, got.compute)
    assert dict(zip(ASSET_KINDS, referenced, strict=True)) == assets
    assert listed == ["blue"]
    assert default == "blue"
    with pytest.raises(ResourceNotFoundError):
        ml_client.batch_deployments.get("blue", endpoint_name="sdk-dep-ep")


def test_a_deployment_name_azure_refuses_fails_in_the_sdk_with_azures_message(
    ml_client: MLClient, assets: dict[str, str]
) -> None:
    """azure-ai-ml checks endpoint names itself, not deployment names: the server's rule is what a user sees."""
    finish(ml_client.batch_endpoints.begin_create_or_update, BatchEndpoint(name="sdk-rules-ep"))
    misnamed = model_deployment("blue_v2", "sdk-rules-ep", assets)
    with pytest.raises(HttpResponseError) as refused:
        ml_client.batch_deployments.begin_create_or_update(misnamed).result()
    assert refused.value.status_code == 400
    assert refused.value.error is not None and refused.value.error.code == "UserError"
    assert (
        "The name for a deployment must start with an upper- or lowercase letter and only consist of '-'s and "
        "alphanumeric characters." in str(refused.value)
    )


def test_server_stops_promptly_while_the_sdk_keeps_connections_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = Server(home=tmp_path, tls=True).start()
    try:
        assert list(connect(server, monkeypatch).batch_endpoints.list()) == []
    finally:
        code = server.stop()
    assert code == 0, "the server was killed after not stopping within 15 s"
    log = Path(server.log.name).read_text()
    assert "graceful shutdown exceeded" not in log, "the stop waited out its grace period for idle connections"
