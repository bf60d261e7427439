"""The managed-identity endpoint of the App Service protocol (``IDENTITY_ENDPOINT``), as azure-identity calls it:
guarded by ``IDENTITY_HEADER``, tokens of the server owner, only for audiences the server accepts."""

from __future__ import annotations

import getpass
import time

import jwt
import pytest

from batchpoint.access.issuer import ensure_issuer
from batchpoint.access.managed_identity import IDENTITY_PATH, identity_header
from tests.server import API, WORKSPACE_ID, Server

APP_SERVICE_VERSION = {"api-version": "2019-08-01"}


def ask(server: Server, resource: str, header: str | None, **params: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    headers = {"Metadata": "true"} | ({"X-IDENTITY-HEADER": header} if header is not None else {})
    with server.client(token=None) as client:
        response = client.get(
            IDENTITY_PATH, params={**APP_SERVICE_VERSION, "resource": resource, **params}, headers=headers
        )
    return response.status_code, response.json()


@pytest.mark.parametrize("header", [None, "", "wrong"], ids=["missing", "empty", "wrong"])
def test_without_the_identity_header_no_token(tls_server: Server, header: str | None) -> None:
    status, body = ask(tls_server, "https://ml.azure.com", header)
    assert status == 401 and body["statusCode"] == 401 and "X-IDENTITY-HEADER" in body["message"]
    assert body["error"]["code"] == "AuthenticationFailed" and "access_token" not in body


@pytest.mark.parametrize("resource", ["https://vault.azure.net", "https://storage.azure.com/", ""])
def test_audiences_the_server_does_not_accept_are_refused(tls_server: Server, resource: str) -> None:
    status, body = ask(tls_server, resource, identity_header(ensure_issuer(tls_server.home)))
    assert status == 400 and "https://ml.azure.com" in body["message"]


def test_another_identity_selector_is_refused_naming_azure_client_id(tls_server: Server) -> None:
    status, body = ask(
        tls_server, "https://ml.azure.com", identity_header(ensure_issuer(tls_server.home)), client_id="x"
    )
    assert status == 400 and "AZURE_CLIENT_ID" in body["message"]


@pytest.mark.parametrize(
    "resource", ["https://ml.azure.com", "https://management.azure.com/", "SERVER"], ids=["ml", "arm", "own-url"]
)
def test_tokens_are_the_server_owners_for_the_audience_asked(tls_server: Server, resource: str) -> None:
    resource = tls_server.base_url if resource == "SERVER" else resource
    issuer = ensure_issuer(tls_server.home)
    status, body = ask(tls_server, resource, identity_header(issuer))
    assert status == 200 and body["resource"] == resource and body["token_type"] == "Bearer"
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["aud"] == resource and claims["upn"] == getpass.getuser()
    assert claims["oid"] == issuer.object_id() == body["client_id"]
    assert int(body["expires_on"]) == claims["exp"] and claims["exp"] > time.time() + 50 * 60
    if resource != "https://ml.azure.com":  # a management token is good for ARM calls: the owner may read
        with tls_server.client(token=body["access_token"]) as client:
            assert client.get(WORKSPACE_ID, params={"api-version": API}).status_code == 200
