"""A pipeline step's process gets its node's `environment_variables` and the managed identity of its compute, as a
command node in a pipeline does on Azure (Decision 19): `DefaultAzureCredential()` in a step gets a token of the
compute's identity through `MSI_ENDPOINT`/`MSI_SECRET`, whose secret stops working when the step ends."""

from __future__ import annotations

import json
from typing import Any

from tests.api.arm import compute_body, compute_url, grant, put_and_wait
from tests.jobs.pipelines.test_pipelines import component, put_job, wait_for_status
from tests.server import API, WORKSPACE_ID, Server

SCRIPT = """
import base64, json, os, urllib.request
from azure.identity import DefaultAzureCredential

def claims(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))

arm = DefaultAzureCredential().get_token("https://management.azure.com/.default").token
server = os.environ["MSI_ENDPOINT"].split("/identity/")[0]
request = urllib.request.Request(server + "WORKSPACE?api-version=API", headers={"Authorization": "Bearer " + arm})
with urllib.request.urlopen(request) as response:
    workspace = json.load(response)["name"]
print(json.dumps({
    "greeting": os.environ["GREETING"],
    "unbuffered": os.environ["PYTHONUNBUFFERED"],
    "arm": claims(arm),
    "workspace": workspace,
    "msi": [os.environ["MSI_ENDPOINT"], os.environ["MSI_SECRET"]],
}))
""".replace("WORKSPACE", WORKSPACE_ID).replace("API", API)
PROBE = {
    "type": "command",
    "command": 'python -c "$STEP_SCRIPT" > ${{outputs.seen}}/seen.json',
    "outputs": {"seen": {"type": "uri_folder"}},
}


def probe_node(probe: str, **node: Any) -> dict[str, Any]:
    return {"type": "command", "componentId": probe, **node}


def test_a_step_gets_its_variables_and_its_computes_identity(server: Server) -> None:
    compute_id = compute_url("step-identity")
    variables = {"GREETING": "hello, step", "STEP_SCRIPT": SCRIPT, "PYTHONUNBUFFERED": "0"}
    with server.client() as client:
        identity = {**compute_body(), "identity": {"type": "SystemAssigned"}}
        principal = put_and_wait(client, compute_id, identity).json()["identity"]["principalId"]
        grant(client, WORKSPACE_ID, principal, "Reader")
        node = probe_node(
            component(client, "probe", PROBE),
            compute="azureml:step-identity",
            outputs={"seen": {"value": "${{parent.outputs.seen}}"}},
        )
        properties = {
            "jobType": "Pipeline",
            "jobs": {"probe": {**node, "environment_variables": variables}},
            "outputs": {"seen": {"jobOutputType": "uri_folder"}},
            "settings": {"default_compute": "elsewhere"},  # the node's own compute wins
        }
        assert put_job(client, "step-identity", properties).status_code == 201
        job = wait_for_status(client, f"{WORKSPACE_ID}/jobs/step-identity", "Completed")
        step = client.get(f"{WORKSPACE_ID}/jobs/step-identity-probe", params={"api-version": API}).json()
    assert job["properties"]["status"] == "Completed"
    assert step["properties"]["computeId"] == compute_id
    assert step["properties"]["environmentVariables"]["GREETING"] == "hello, step"
    [output] = server.home.glob("storage/*/azureml-blobstore-*/azureml/step-identity/seen/seen.json")
    seen = json.loads(output.read_text())

    assert seen["greeting"] == "hello, step"
    assert seen["unbuffered"] == "1"  # the runtime's own variables win over the node's
    token = seen["arm"]
    assert token["aud"] == "https://management.azure.com"
    assert token["oid"] == token["sub"] == principal and token["xms_mirid"] == compute_id
    assert token["idtyp"] == "app" and "upn" not in token
    assert seen["workspace"] == "default"  # the compute's identity read the workspace with its Reader role
    endpoint, secret = seen["msi"]
    with server.client(token=None) as client:
        after = client.get(endpoint, params={"resource": "https://ml.azure.com"}, headers={"secret": secret})
    assert after.status_code == 401 and "ended" in after.json()["message"]  # the step's secret ended with it


def test_malformed_environment_variables_are_named(server: Server) -> None:
    with server.client() as client:
        probe = component(client, "probe", PROBE)
        for variables, problem in (
            ({"A=B": "x"}, "environment variable name 'A=B' is not valid"),
            ({"N": {"x": 1}}, "environment variable 'N' must be a string, a number or a boolean"),
            (["N"], "step 'p' environment_variables must be an object"),
        ):
            node = {**probe_node(probe), "environment_variables": variables}
            response = put_job(client, "bad-variables", {"jobType": "Pipeline", "jobs": {"p": node}})
            assert response.status_code == 400 and problem in response.json()["error"]["message"], response.text
        numbers = {**probe_node(probe), "environment_variables": {"N": 3, "ON": True}}
        response = put_job(client, "number-variables", {"jobType": "Pipeline", "jobs": {"p": numbers}})
        assert response.status_code == 201, response.text
        step = client.get(f"{WORKSPACE_ID}/jobs/number-variables-p", params={"api-version": API}).json()
    assert step["properties"]["environmentVariables"] == {"N": "3", "ON": "true"}
