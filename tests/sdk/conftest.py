"""Shared by the SDK tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from azure.ai.ml import MLClient
from azure.ai.ml.constants._endpoint import EndpointInvokeFields

from tests.sdk.mlclient import connect, create_cluster
from tests.server import Server

PRISTINE_INVOKE_HEADERS = dict(EndpointInvokeFields.DEFAULT_HEADER)


@pytest.fixture(autouse=True)
def fresh_invoke_headers(monkeypatch: pytest.MonkeyPatch) -> None:
    """azure-ai-ml's invoke writes its headers into a class-level dict, so `azureml-model-deployment` from one
    invoke is sent with every later invoke in the process; each test starts from the SDK's pristine headers."""
    monkeypatch.setattr(EndpointInvokeFields, "DEFAULT_HEADER", dict(PRISTINE_INVOKE_HEADERS))


@pytest.fixture(scope="module")
def ml_client_with_cluster(tls_server: Server) -> Iterator[MLClient]:
    """MLClient on the module's server, which has the cluster 'cpu-cluster' that deployments name."""
    with pytest.MonkeyPatch.context() as patch:
        client = connect(tls_server, patch)
        create_cluster(client)
        yield client
