"""A pipeline deployment is checked when it provisions: every problem of its graph is named in the failure."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.arm import create_endpoint, deployment_body, deployment_url, wait_for_operation
from tests.server import API, WORKSPACE_ID, Server

V = {"api-version": API}
COMMAND = {"type": "command", "command": "echo ${{inputs.x}} > ${{outputs.y}}/out.txt",
           "inputs": {"x": {"type": "string"}}, "outputs": {"y": {"type": "uri_folder"}}}


def component(client: httpx.Client, name: str, spec: dict[str, Any]) -> str:
    component_id = f"{WORKSPACE_ID}/components/{name}/versions/1"
    response = client.put(component_id, params=V, json={"properties": {"componentSpec": spec}})
    assert response.status_code in (200, 201), response.text
    return component_id


def node(component_id: str, **inputs: str) -> dict[str, Any]:
    return {"type": "command", "componentId": component_id,
            "inputs": {key: {"job_input_type": "literal", "value": value} for key, value in inputs.items()}}


def provision(client: httpx.Client, endpoint: str, component_id: str) -> dict[str, Any]:
    create_endpoint(client, endpoint)
    configuration = {"deploymentConfigurationType": "PipelineComponent", "componentId": {"referenceType": "Id", "assetId": component_id}}
    response = client.put(deployment_url(endpoint, "main"), params=V, json=deployment_body(deploymentConfiguration=configuration))
    assert response.status_code in (200, 201), response.text
    return wait_for_operation(client, response).json()


@pytest.fixture(scope="module")
def client(server: Server) -> httpx.Client:
    with server.client() as opened:
        component(opened, "echo", COMMAND)
        yield opened


def test_cycles_unbound_inputs_and_unknown_references_are_named(client: httpx.Client) -> None:
    echo = f"{WORKSPACE_ID}/components/echo/versions/1"
    spec = {
        "type": "pipeline",
        "inputs": {"word": {"type": "string"}},
        "jobs": {
            "a": node(echo, x="${{parent.jobs.b.outputs.y}}"),
            "b": node(echo, x="${{parent.jobs.a.outputs.y}}"),
            "c": node(echo),
            "d": node(f"{WORKSPACE_ID}/components/missing/versions/1"),
            "e": node(echo, x="${{parent.inputs.colour}}"),
        },
    }
    status = provision(client, "graph-bad", component(client, "bad-graph", spec))
    assert status["status"] == "Failed"
    message = status["error"]["message"]
    assert "step 'c' input 'x' is not bound" in message
    assert "step 'd' references the component" in message and "missing" in message
    assert "pipeline input 'colour', which does not exist" in message


def test_a_cycle_is_named_with_its_steps(client: httpx.Client) -> None:
    echo = f"{WORKSPACE_ID}/components/echo/versions/1"
    spec = {"type": "pipeline", "jobs": {"a": node(echo, x="${{parent.jobs.b.outputs.y}}"), "b": node(echo, x="${{parent.jobs.a.outputs.y}}")}}
    status = provision(client, "graph-cycle", component(client, "cycle", spec))
    assert status["status"] == "Failed"
    assert "cycle: a -> b -> a" in status["error"]["message"]


def test_a_command_component_is_not_a_pipeline(client: httpx.Client) -> None:
    status = provision(client, "graph-command", f"{WORKSPACE_ID}/components/echo/versions/1")
    assert status["status"] == "Failed"
    assert "needs a pipeline component" in status["error"]["message"]
