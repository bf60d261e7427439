"""Role-based access control: each built-in role, at each scope, against each class of operation, on the routes
and on the read fast path alike; role assignments through the API and through ``batchpoint role``."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator

import httpx
import pytest

from batchpoint.access.issuer import ensure_issuer
from tests.api.arm import AUTHORIZATION_API, create_endpoint, deployment_url, endpoint_url, grant
from tests.server import API, SUBSCRIPTION, WORKSPACE_ID, Server, batchpoint_command

ENDPOINT = "rbac-ep"
OTHER = "rbac-other"
BAD_VERSION = {"api-version": "latest"}
"""Authorization comes before the check of a malformed api-version: an allowed write answers 400 and changes nothing."""
SCOPES = {
    "subscription": f"/subscriptions/{SUBSCRIPTION}",
    "resource group": f"/subscriptions/{SUBSCRIPTION}/resourceGroups/local",
    "workspace": WORKSPACE_ID,
    "endpoint": endpoint_url(ENDPOINT),
}
MFE = f"/mferp/managementfrontend{endpoint_url(ENDPOINT)}/jobs"
OPERATIONS: dict[str, Callable[[httpx.Client], httpx.Response]] = {
    "read endpoint": lambda client: client.get(endpoint_url(ENDPOINT), params={"api-version": API}),
    "write endpoint": lambda client: client.patch(endpoint_url(ENDPOINT), params=BAD_VERSION, json={}),
    "delete endpoint": lambda client: client.delete(endpoint_url(ENDPOINT), params=BAD_VERSION),
    "list keys": lambda client: client.post(endpoint_url(ENDPOINT) + "/listkeys", params=BAD_VERSION),
    "invoke": lambda client: client.post(f"/inference{endpoint_url(ENDPOINT)}/jobs", json={}),
    "read jobs": lambda client: client.get(MFE),
    "write deployment": lambda client: client.put(deployment_url(ENDPOINT, "d"), params=BAD_VERSION, json={}),
}
ALLOWED = {
    "Owner": set(OPERATIONS),
    "Contributor": set(OPERATIONS),
    "Reader": {"read endpoint", "read jobs"},
    "AzureML Data Scientist": {"read endpoint", "list keys", "invoke", "read jobs"},
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(home=tmp_path_factory.mktemp("home")).start()
    with running.client() as client:
        create_endpoint(client, ENDPOINT)
        create_endpoint(client, OTHER)
    yield running
    running.stop()


def user_with(server: Server, role: str, scope: str) -> httpx.Client:
    """A client for a new user holding only ``role`` over ``scope``."""
    user = f"{role}-{scope}".replace(" ", "-").replace("/", "_") + "@example.com"
    with server.client() as owner:
        grant(owner, scope, ensure_issuer(server.home).object_id(user), role)
    return server.client(token=server.token(user=user))


def refused(response: httpx.Response) -> bool:
    return response.status_code == 403 and response.json()["error"]["code"] == "AuthorizationFailed"


@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize("role", ALLOWED)
def test_role_matrix(server: Server, role: str, scope: str) -> None:
    with user_with(server, role, SCOPES[scope]) as client:
        outcomes = {name: not refused(operation(client)) for name, operation in OPERATIONS.items()}
    assert outcomes == {name: name in ALLOWED[role] for name in OPERATIONS}


def test_the_refusal_names_client_action_and_scope(server: Server) -> None:
    user = ensure_issuer(server.home).object_id("nobody@example.com")
    with server.client(token=server.token(user="nobody@example.com")) as client:
        response = client.get(endpoint_url(ENDPOINT), params={"api-version": API})  # the fast path's GET
    assert response.status_code == 403
    assert response.json()["error"]["message"] == (
        f"The client '{user}' with object id '{user}' does not have authorization to perform action "
        f"'Microsoft.MachineLearningServices/workspaces/batchEndpoints/read' over scope '{endpoint_url(ENDPOINT)}' "
        "or the scope is invalid. If access was recently granted, please refresh your credentials."
    )


def test_an_endpoint_assignment_holds_for_that_endpoint_only(server: Server) -> None:
    with user_with(server, "Owner", endpoint_url(OTHER)) as client:
        assert client.get(endpoint_url(OTHER), params={"api-version": API}).status_code == 200
        assert refused(client.get(endpoint_url(ENDPOINT), params={"api-version": API}))
        assert refused(client.get(WORKSPACE_ID + "/batchEndpoints", params={"api-version": API}))


def test_a_reader_cannot_list_keys_and_a_data_scientist_cannot_delete(server: Server) -> None:
    with user_with(server, "Reader", WORKSPACE_ID) as reader:
        assert refused(reader.post(endpoint_url(ENDPOINT) + "/listkeys", params={"api-version": API}))
    with user_with(server, "AzureML Data Scientist", WORKSPACE_ID) as scientist:
        assert scientist.post(endpoint_url(ENDPOINT) + "/listkeys", params={"api-version": API}).status_code == 200
        assert refused(scientist.delete(endpoint_url(ENDPOINT), params={"api-version": API}))
    with server.client() as owner:
        assert owner.get(endpoint_url(ENDPOINT), params={"api-version": API}).status_code == 200


def test_only_an_owner_manages_assignments(server: Server) -> None:
    with user_with(server, "Contributor", WORKSPACE_ID) as contributor:
        url = f"{WORKSPACE_ID}/providers/Microsoft.Authorization/roleAssignments/00000000-0000-0000-0000-00000000000a"
        body = {"properties": {"roleDefinitionId": "Owner", "principalId": "00000000-0000-0000-0000-00000000000b"}}
        assert refused(contributor.put(url, params={"api-version": AUTHORIZATION_API}, json=body))


def test_the_local_user_owns_the_default_subscription(server: Server) -> None:
    """The first start grants Owner to the object id 'batchpoint token' puts in tokens by default."""
    local = ensure_issuer(server.home).mint(audience=server.base_url)
    with server.client(token=local) as client:
        assert client.get(endpoint_url(ENDPOINT), params={"api-version": API}).status_code == 200
        assert refused(
            client.get(
                "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/x", params={"api-version": API}
            )
        )


def test_role_command_assigns_lists_and_removes(server: Server) -> None:
    def role(*arguments: str) -> subprocess.CompletedProcess[str]:
        command = [*batchpoint_command(), "role", *arguments, *server.cli_options()]
        return subprocess.run(command, capture_output=True, text=True, env={**os.environ, "COLUMNS": "300"})

    scope = ["--scope", WORKSPACE_ID]
    assert role("assign", "--assignee", "cli@example.com", "--role", "Reader", *scope).returncode == 0
    with server.client(token=server.token(user="cli@example.com")) as client:
        assert client.get(endpoint_url(ENDPOINT), params={"api-version": API}).status_code == 200
        listed = role("list", *scope)
        assert ensure_issuer(server.home).object_id("cli@example.com") in listed.stdout and "Reader" in listed.stdout
        assert role("remove", "--assignee", "cli@example.com", "--role", "Reader", *scope).returncode == 0
        assert role("remove", "--assignee", "cli@example.com", "--role", "Reader", *scope).returncode == 1
        assert refused(client.get(endpoint_url(ENDPOINT), params={"api-version": API}))
