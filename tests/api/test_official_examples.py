"""Every official x-ms-example of the 11 batch operations replays against the real server: its request is
accepted, and the response carries the example's keys with the same JSON types."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

from tests.api.arm import compute_body, put_and_wait, wait_for_operation
from tests.server import Server
from tests.spec import reference

UUID = re.compile(r"^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$")
ORDER = [
    ("BatchEndpoint", "createOrUpdate", "PUT", "{e}"),
    ("BatchEndpoint", "get", "GET", "{e}"),
    ("BatchEndpoint", "list", "GET", ""),
    ("BatchEndpoint", "update", "PATCH", "{e}"),
    ("BatchEndpoint", "listKeys", "POST", "{e}/listkeys"),
    ("BatchDeployment", "createOrUpdate", "PUT", "{e}/deployments/{d}"),
    ("BatchDeployment", "get", "GET", "{e}/deployments/{d}"),
    ("BatchDeployment", "list", "GET", "{e}/deployments"),
    ("BatchDeployment", "update", "PATCH", "{e}/deployments/{d}"),
    ("BatchDeployment", "delete", "DELETE", "{e}/deployments/{d}"),
    ("BatchEndpoint", "delete", "DELETE", "{e}"),
]
QUERY_PARAMETERS = ("api-version", "count", "$top", "$orderBy")


def load(group: str, name: str) -> dict[str, Any]:
    """An official example; the test fails when the extract is missing (``tests/spec.py``)."""
    return json.loads(reference("examples", "Workspace", group, f"{name}.json").read_text())


def workspace_url(parameters: dict[str, Any]) -> str:
    return (
        f"/subscriptions/{parameters['subscriptionId']}/resourceGroups/{parameters['resourceGroupName']}"
        f"/providers/Microsoft.MachineLearningServices/workspaces/{parameters['workspaceName']}"
    )


def ensure_parents(client: httpx.Client, parameters: dict[str, Any], with_endpoint: bool) -> None:
    group = f"/subscriptions/{parameters['subscriptionId']}/resourceGroups/{parameters['resourceGroupName']}"
    client.put(group, params={"api-version": "2021-04-01"}, json={"location": "string"})
    client.put(workspace_url(parameters), params={"api-version": "2025-12-01"}, json={"location": "string"})
    compute = (parameters.get("body") or {}).get("properties", {}).get("compute")
    if compute:  # as on Azure, the compute a deployment names must exist
        compute_url = f"{workspace_url(parameters)}/computes/{compute.rsplit('/', 1)[-1]}"
        if client.get(compute_url, params={"api-version": "2025-12-01"}).status_code == 404:
            put_and_wait(client, compute_url, compute_body())
    if with_endpoint and "endpointName" in parameters:
        endpoint = f"{workspace_url(parameters)}/batchEndpoints/{parameters['endpointName']}"
        if client.get(endpoint, params={"api-version": "2025-12-01"}).status_code == 404:
            body = {"location": "string", "properties": {"authMode": "AMLToken"}}
            wait_for_operation(client, client.put(endpoint, params={"api-version": "2025-12-01"}, json=body))


def json_type(value: Any) -> str:
    return "number" if isinstance(value, int | float) and not isinstance(value, bool) else type(value).__name__


def assert_same_shape(expected: Any, actual: Any, where: str = "$") -> None:
    """Every key of the example is in the response with the same JSON type (free-form map keys such as
    generated UUIDs and identity ids are data, not schema, and are skipped)."""
    assert json_type(actual) == json_type(expected), f"{where}: {actual!r} is not a {json_type(expected)}"
    if isinstance(expected, dict) and where.endswith(".userAssignedIdentities"):  # keyed by ids: data, not schema
        assert actual, f"{where}: empty"
        for value in expected.values():
            assert_same_shape(value, next(iter(actual.values())), f"{where}.*")
    elif isinstance(expected, dict):
        for key, value in expected.items():
            if UUID.match(key):
                continue
            assert key in actual, f"{where}: key {key!r} missing from {sorted(actual)}"
            assert_same_shape(value, actual[key], f"{where}.{key}")
    elif isinstance(expected, list) and expected:
        assert actual, f"{where}: empty list"
        assert_same_shape(expected[0], actual[0], f"{where}[0]")


def send(client: httpx.Client, method: str, example: dict[str, Any], suffix: str) -> httpx.Response:
    parameters = example["parameters"]
    path = suffix.format(e=parameters.get("endpointName", ""), d=parameters.get("deploymentName", ""))
    url = f"{workspace_url(parameters)}/batchEndpoints" + (f"/{path}" if path else "")
    query = {name: parameters[name] for name in QUERY_PARAMETERS if name in parameters}
    if query.get("$orderBy") == "string":
        query["$orderBy"] = "CreatedAtDesc"  # the example's placeholder; any value outside the documented set is a 400
    return client.request(method, url, params=query, json=with_identity_ids(parameters.get("body"), parameters))


def with_identity_ids(body: Any, parameters: dict[str, Any]) -> Any:
    """The body with the example's placeholder user-assigned identity ('string', beside type SystemAssigned) made
    one that can be: keys are ARM ids of user-assigned identities and need a type naming UserAssigned
    (docs/management-plane.md, Requests); the example's answer lists both kinds of identity."""
    identity = (body or {}).get("identity") or {}
    if list(identity.get("userAssignedIdentities") or {}) != ["string"]:
        return body
    group = f"/subscriptions/{parameters['subscriptionId']}/resourceGroups/{parameters['resourceGroupName']}"
    user = f"{group}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/example"
    identity = {**identity, "type": "SystemAssigned,UserAssigned", "userAssignedIdentities": {user: {}}}
    return {**body, "identity": identity}


def add_sibling(client: httpx.Client, group: str) -> None:
    """A second item, so that a list with the example's page size of one has a nextLink."""
    create = load(group, "createOrUpdate")
    name_parameter = "endpointName" if group == "BatchEndpoint" else "deploymentName"
    create["parameters"] = {**create["parameters"], name_parameter: "sibling"}
    suffix = "{e}" if group == "BatchEndpoint" else "{e}/deployments/{d}"
    assert send(client, "PUT", create, suffix).status_code == 201


def final_body(client: httpx.Client, response: httpx.Response) -> httpx.Response:
    return wait_for_operation(client, response) if response.status_code == 202 else response


def test_examples_replay_in_order(server: Server) -> None:
    with server.client() as client:
        for group, name, method, suffix in ORDER:
            example = load(group, name)
            ensure_parents(client, example["parameters"], with_endpoint=group == "BatchDeployment" or name == "delete")
            if name == "list":
                add_sibling(client, group)
            response = send(client, method, example, suffix)
            declared = example["responses"]
            assert str(response.status_code) in declared, f"{group} {name}: {response.status_code} {response.text}"
            expected = declared[str(response.status_code)]
            if "body" in expected:
                assert_same_shape(expected["body"], response.json(), f"{group}.{name}")
            for header in expected.get("headers", {}):
                assert header in response.headers, f"{group} {name}: header {header} missing"
            if method == "PATCH":
                assert_same_shape(declared["200"]["body"], final_body(client, response).json(), f"{group}.{name}.final")
