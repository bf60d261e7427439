"""Shared by the SDK tests."""

from __future__ import annotations

import pytest
from azure.ai.ml.constants._endpoint import EndpointInvokeFields

PRISTINE_INVOKE_HEADERS = dict(EndpointInvokeFields.DEFAULT_HEADER)


@pytest.fixture(autouse=True)
def fresh_invoke_headers(monkeypatch: pytest.MonkeyPatch) -> None:
    """azure-ai-ml's invoke writes its headers into a class-level dict, so `azureml-model-deployment` from one
    invoke is sent with every later invoke in the process; each test starts from the SDK's pristine headers."""
    monkeypatch.setattr(EndpointInvokeFields, "DEFAULT_HEADER", dict(PRISTINE_INVOKE_HEADERS))
