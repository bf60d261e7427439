"""Endpoint keys: a ``Key`` endpoint's own keys invoke it (and nothing else); ``listkeys`` needs its permission."""

from __future__ import annotations

import httpx
import pytest

from batchpoint.access.issuer import ensure_issuer
from tests.api.arm import create_endpoint, endpoint_url, grant
from tests.server import API, WORKSPACE_ID, Server

V = {"api-version": API}
KEYED, OTHER_KEYED, TOKEN_ONLY = "keyed-ep", "keyed-other", "aad-ep"
INPUT = {"properties": {"inputData": {"in": {"jobInputType": "UriFolder", "uri": "azureml://datastores/x/paths/y"}}}}


@pytest.fixture(scope="module", autouse=True)
def endpoints(server: Server) -> None:
    with server.client() as client:
        create_endpoint(client, KEYED, authMode="Key")
        create_endpoint(client, OTHER_KEYED, authMode="Key")
        create_endpoint(client, TOKEN_ONLY)


def keys_of(server: Server, endpoint: str) -> dict[str, str]:
    with server.client() as client:
        return client.post(endpoint_url(endpoint) + "/listkeys", params=V).json()


def invoke(server: Server, endpoint: str, bearer: str) -> httpx.Response:
    with server.client(token=bearer) as client:
        return client.post(f"/inference{endpoint_url(endpoint)}/jobs", json=INPUT)


def authenticated(response: httpx.Response) -> bool:
    """Past authentication and authorization: the job fails later (the endpoint has no deployment)."""
    return response.status_code not in (401, 403)


@pytest.mark.parametrize("key", ["primaryKey", "secondaryKey"])
def test_either_key_invokes_its_endpoint(server: Server, key: str) -> None:
    assert authenticated(invoke(server, KEYED, keys_of(server, KEYED)[key]))


def test_another_endpoints_key_is_refused(server: Server) -> None:
    response = invoke(server, KEYED, keys_of(server, OTHER_KEYED)["primaryKey"])
    assert response.status_code == 401 and response.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_a_key_on_an_aad_token_endpoint_is_refused(server: Server) -> None:
    assert invoke(server, TOKEN_ONLY, keys_of(server, TOKEN_ONLY)["primaryKey"]).status_code == 401


def test_a_key_does_not_open_the_arm_api(server: Server) -> None:
    with server.client(token=keys_of(server, KEYED)["primaryKey"]) as client:
        assert client.get(endpoint_url(KEYED), params=V).status_code == 401
        assert client.get(f"/mferp/managementfrontend{endpoint_url(KEYED)}/jobs").status_code == 401


def test_a_key_endpoint_takes_tokens_with_the_invoke_permission_too(server: Server) -> None:
    assert authenticated(invoke(server, KEYED, server.token()))
    stranger = invoke(server, KEYED, server.token(user="stranger@example.com"))
    assert stranger.status_code == 403 and stranger.json()["error"]["code"] == "AuthorizationFailed"


def test_listkeys_needs_its_permission(server: Server) -> None:
    with server.client() as owner:
        grant(owner, WORKSPACE_ID, ensure_issuer(server.home).object_id("reader@example.com"), "Reader")
    with server.client(token=server.token(user="reader@example.com")) as reader:
        assert reader.get(endpoint_url(KEYED), params=V).status_code == 200
        refused = reader.post(endpoint_url(KEYED) + "/listkeys", params=V)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "AuthorizationFailed"
    assert "batchEndpoints/listkeys/action" in refused.json()["error"]["message"]
