"""Connect the unmodified ``azure-ai-ml`` MLClient to a test server, the way the server's banner says."""

from __future__ import annotations

from typing import Any

import pytest
from azure.ai.ml import MLClient
from azure.ai.ml.entities import AmlCompute, BatchDeployment, BatchEndpoint, Model, ModelBatchDeployment

from tests.sdk.credentials import StaticTokenCredential
from tests.server import SUBSCRIPTION, Server


def connect(server: Server, patch: pytest.MonkeyPatch, token: str | None = None) -> MLClient:
    """MLClient on a custom cloud whose every endpoint is the server, trusting the server's own CA; with the token
    ``batchpoint token`` prints unless another is given."""
    cloud = f"batchpoint-{server.port}"  # the SDK registers clouds process-wide and keeps the first definition
    patch.setenv("REQUESTS_CA_BUNDLE", str(server.ca_cert))
    patch.setenv("AZUREML_CURRENT_CLOUD", cloud)  # MLClient sets it process-wide; this way the patch undoes it
    base = server.base_url
    return MLClient(
        StaticTokenCredential(token or server.cli_token()),
        SUBSCRIPTION,
        "local",
        "default",
        cloud=cloud,
        cloud_metadata={
            "azure_portal": base,
            "resource_manager": base,
            "active_directory": base,
            "aml_resource_id": base,
            "storage_endpoint": "core.windows.net",
            "registry_discovery_endpoint": base,
        },
        enable_telemetry=False,
    )


def create_cluster(ml_client: MLClient, name: str = "cpu-cluster", max_instances: int = 4) -> str:
    """An AmlCompute cluster made the way Azure users make one; returns its ARM id."""
    return ml_client.compute.begin_create_or_update(AmlCompute(name=name, max_instances=max_instances)).result().id


def deploy_model(ml_client: MLClient, endpoint: str, name: str, model: Model, **settings: Any) -> BatchDeployment:
    """A new endpoint with one model deployment on ``cpu-cluster`` (``settings``: the deployment's other
    arguments), created the way Azure users create them; returns the deployment once provisioned."""
    ml_client.batch_endpoints.begin_create_or_update(BatchEndpoint(name=endpoint)).result()
    deployment = ModelBatchDeployment(name=name, endpoint_name=endpoint, model=model, compute="cpu-cluster", **settings)
    return ml_client.batch_deployments.begin_create_or_update(deployment).result()
