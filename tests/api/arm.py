"""Small helpers for driving the ARM API by hand in tests."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx

from tests.server import API, WORKSPACE_ID

ENDPOINTS = f"{WORKSPACE_ID}/batchEndpoints"
AUTHORIZATION_API = "2022-04-01"


def endpoint_url(name: str, workspace: str = WORKSPACE_ID) -> str:
    return f"{workspace}/batchEndpoints/{name}"


def deployment_url(endpoint: str, name: str, workspace: str = WORKSPACE_ID) -> str:
    return f"{endpoint_url(endpoint, workspace)}/deployments/{name}"


def endpoint_body(**properties: Any) -> dict[str, Any]:
    return {"location": "local", "properties": {"authMode": "AADToken", **properties}}


def deployment_body(**properties: Any) -> dict[str, Any]:
    return {"location": "local", "properties": properties}


POLL_FIRST, POLL_MOST = 0.05, 0.5


def wait_for_operation(client: httpx.Client, response: httpx.Response, timeout: float = 15) -> httpx.Response:
    """Follow an LRO the way ARM clients do: Azure-AsyncOperation to a terminal status, else Location. Polls every
    0.05 s at first, then less and less often, up to every 0.5 s: most operations end within a few polls, and an
    environment build of 10-40 s is not polled 20 times a second."""
    deadline = time.monotonic() + timeout
    pause = POLL_FIRST
    status_url = response.headers.get("Azure-AsyncOperation")
    location = response.headers.get("Location")
    while time.monotonic() < deadline:
        if status_url:
            polled = client.get(status_url)
            assert polled.status_code == 200, polled.text
            if polled.json()["status"] in ("Succeeded", "Failed", "Canceled"):
                return polled
        else:
            assert location, "no polling header"
            polled = client.get(location)
            if polled.status_code != 202:
                return polled
        time.sleep(pause)
        pause = min(pause * 1.5, POLL_MOST)
    raise AssertionError("operation did not finish in time")


def put_and_wait(client: httpx.Client, url: str, body: dict[str, Any], timeout: float = 15) -> httpx.Response:
    response = client.put(url, params={"api-version": API}, json=body)
    assert response.status_code in (200, 201), response.text
    if "Azure-AsyncOperation" in response.headers:
        assert wait_for_operation(client, response, timeout).json()["status"] == "Succeeded"
    return client.get(url, params={"api-version": API})


def create_endpoint(
    client: httpx.Client, name: str, workspace: str = WORKSPACE_ID, **properties: Any
) -> dict[str, Any]:
    return put_and_wait(client, endpoint_url(name, workspace), endpoint_body(**properties)).json()


def grant(client: httpx.Client, scope: str, principal_id: str, role: str) -> dict[str, Any]:
    """Assign ``role`` (a built-in role's name) to ``principal_id`` over ``scope`` through the API."""
    name = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{scope}|{principal_id}|{role}"))
    body = {"properties": {"roleDefinitionId": role, "principalId": principal_id}}
    url = f"{scope.rstrip('/')}/providers/Microsoft.Authorization/roleAssignments/{name}"
    response = client.put(url, params={"api-version": AUTHORIZATION_API}, json=body)
    assert response.status_code in (200, 201), response.text
    return response.json()


def compute_url(name: str) -> str:
    return f"{WORKSPACE_ID}/computes/{name}"


def compute_body(max_nodes: int = 4, **cluster: Any) -> dict[str, Any]:
    """An AmlCompute cluster as azure-ai-ml sends one."""
    scale = {"maxNodeCount": max_nodes, "minNodeCount": 0, "nodeIdleTimeBeforeScaleDown": "PT2M"}
    return {
        "location": "local",
        "properties": {"computeType": "AmlCompute", "properties": {"scaleSettings": scale, **cluster}},
    }


def create_compute(client: httpx.Client, name: str, max_nodes: int = 4) -> dict[str, Any]:
    return put_and_wait(client, compute_url(name), compute_body(max_nodes)).json()
