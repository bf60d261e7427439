"""ARM-wide behaviour: api-version, 404s naming the missing parent, request ids, workspaces, discovery."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.api.arm import ENDPOINTS, endpoint_body, endpoint_url
from tests.server import API, SUBSCRIPTION, WORKSPACE_ID, Server, running

V = {"api-version": API}
PUBLISHED = ["2023-04-01", "2023-10-01", "2024-01-01-preview", "2024-10-01-preview", "2025-12-01"]


def test_missing_api_version(server: Server) -> None:
    with server.client() as client:
        response = client.get(ENDPOINTS)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "MissingApiVersionParameter"


@pytest.mark.parametrize("version", ["2025-13", "latest", "2025-12-01-dataplanepreview"])
def test_invalid_api_version(server: Server, version: str) -> None:
    with server.client() as client:
        response = client.get(ENDPOINTS, params={"api-version": version})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "InvalidApiVersionParameter" and version in error["message"]


@pytest.mark.parametrize("version", ["1999-01-01", "2023-03-01", "2025-12-01-preview"])
def test_unknown_older_api_versions_get_azures_refusal(server: Server, version: str) -> None:
    with server.client() as client:
        response = client.get(ENDPOINTS, params={"api-version": version})
    assert response.status_code == 400 and "x-ms-request-id" in response.headers
    error = response.json()["error"]
    assert error["code"] == "NoRegisteredProviderFound"
    assert error["message"].startswith(
        f"No registered resource provider found for location 'local' and API version '{version}' for type "
        "'workspaces/batchEndpoints'. The supported api-versions are '2021-10-01, "
    )


NEWER = ["2099-01-01", "2026-01-15-preview"]
READS = {"routed": WORKSPACE_ID, "fast path": ENDPOINTS, "routed list": WORKSPACE_ID + "/computes"}


@pytest.mark.parametrize("version", NEWER)
@pytest.mark.parametrize("path", READS.values(), ids=READS.keys())
def test_newer_api_versions_are_served_as_the_newest_known_saying_so(server: Server, version: str, path: str) -> None:
    with server.client() as client:
        response = client.get(path, params={"api-version": version})
        known = client.get(path, params=V)
    assert response.status_code == 200, response.text
    assert response.headers["x-ms-batchpoint-served-api-version"] == API
    assert "x-ms-batchpoint-served-api-version" not in known.headers


def test_with_strict_api_versions_newer_ones_are_refused_and_known_ones_served(tmp_path: Path) -> None:
    with running(tmp_path, "--strict-api-versions") as strict, strict.client() as client:
        refused = client.put(endpoint_url("strict-ep"), params={"api-version": NEWER[0]}, json=endpoint_body())
        served = client.get(ENDPOINTS, params=V)
        older = client.get(ENDPOINTS, params={"api-version": PUBLISHED[0]})
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "NoRegisteredProviderFound"
    assert f"API version '{NEWER[0]}' for type 'workspaces/batchEndpoints'" in error["message"]
    assert served.status_code == 200 and older.status_code == 200


@pytest.mark.parametrize("version", PUBLISHED)
def test_published_api_versions_are_accepted(server: Server, version: str) -> None:
    with server.client() as client:
        assert client.get(ENDPOINTS, params={"api-version": version}).status_code == 200


def test_missing_token_is_401_with_challenge(server: Server) -> None:
    with server.client(token=None) as client:
        response = client.get(ENDPOINTS, params=V)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "AuthenticationFailed"
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")


def test_missing_parents_are_named(server: Server) -> None:
    missing_group = (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/nogroup"
        "/providers/Microsoft.MachineLearningServices/workspaces/default/batchEndpoints"
    )
    missing_workspace = ENDPOINTS.replace("/workspaces/default/", "/workspaces/nows/")
    with server.client() as client:
        group = client.get(missing_group, params=V).json()["error"]
        workspace = client.get(missing_workspace, params=V).json()["error"]
        endpoint = client.get(endpoint_url("absent"), params=V).json()["error"]
    assert group["code"] == "ResourceGroupNotFound" and "nogroup" in group["message"]
    assert workspace["code"] == "ResourceNotFound" and "workspaces/nows" in workspace["message"]
    assert endpoint["code"] == "ResourceNotFound" and "batchEndpoints/absent" in endpoint["message"]


def test_request_ids_are_returned_and_echoed(server: Server) -> None:
    headers = {"x-ms-client-request-id": "client-1", "x-ms-correlation-request-id": "corr-1"}
    with server.client() as client:
        ok = client.get(ENDPOINTS, params=V, headers=headers)
        error = client.get(ENDPOINTS, headers=headers)
    for response in (ok, error):
        assert response.headers["x-ms-request-id"]
        assert response.headers["x-ms-client-request-id"] == "client-1"
        assert response.headers["x-ms-correlation-request-id"] == "corr-1"


def test_unparseable_body_is_400(server: Server) -> None:
    with server.client() as client:
        response = client.put(
            endpoint_url("junk"), params=V, content=b"{not json", headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 400 and response.json()["error"]["code"]


def test_unknown_route_is_an_arm_404(server: Server) -> None:
    with server.client() as client:
        response = client.get("/subscriptions/x/nothing-here", params=V)
    assert response.status_code == 404 and response.json()["error"]["code"] == "NotFound"


def test_default_workspace_exists_with_discovery(server: Server) -> None:
    with server.client() as client:
        workspace = client.get(WORKSPACE_ID, params=V).json()
        with server.client(token=None) as anonymous:
            discovery = anonymous.get(workspace["properties"]["discoveryUrl"]).json()
    assert workspace["location"] == "local" and workspace["properties"]["workspaceId"]
    assert discovery["api"] == server.base_url and discovery["history"] == server.base_url


def test_resource_group_and_workspace_lifecycle(server: Server) -> None:
    group = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/Team-RG"
    workspace = f"{group}/providers/Microsoft.MachineLearningServices/workspaces/team-ws"
    with server.client() as client:
        assert client.put(group, params={"api-version": "2021-04-01"}, json={"location": "local"}).status_code == 201
        created = client.put(workspace, params=V, json={"location": "local", "properties": {"description": "d"}})
        listed = client.get(group + "/providers/Microsoft.MachineLearningServices/workspaces", params=V).json()
        endpoint = client.put(workspace + "/batchEndpoints/ep-1", params=V, json=endpoint_body())
        assert client.delete(group, params={"api-version": "2021-04-01"}).status_code == 200
        gone = client.get(workspace + "/batchEndpoints/ep-1", params=V)
    assert created.status_code == 201 and created.json()["properties"]["discoveryUrl"].startswith(server.base_url)
    assert [item["name"] for item in listed["value"]] == ["team-ws"]
    assert endpoint.status_code == 201
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "ResourceGroupNotFound"
