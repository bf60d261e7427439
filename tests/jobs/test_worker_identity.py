"""A scoring script gets the compute's managed identity, as on Azure ML compute: ``DefaultAzureCredential()`` in
``init()`` finds ``MSI_ENDPOINT``/``MSI_SECRET``, and its tokens work against the server as the compute's principal."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.arm import compute_body, compute_url, grant, put_and_wait
from tests.api.jobs import deploy_script, invoke, predictions, wait_for_job, write_inputs
from tests.server import WORKSPACE_ID, Server

SCRIPT = """
import base64, json, os, urllib.request
from azure.identity import DefaultAzureCredential

def claims(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))

def init():
    global seen
    credential = DefaultAzureCredential()
    ml = credential.get_token("https://ml.azure.com/.default").token
    arm = credential.get_token("https://management.azure.com/.default").token
    other = credential.get_token("https://cognitiveservices.azure.com/.default").token  # as MLflow's openai flavor asks
    server = os.environ["MSI_ENDPOINT"].split("/identity/")[0]
    request = urllib.request.Request(
        server + "WORKSPACE?api-version=2025-12-01", headers={"Authorization": "Bearer " + arm}
    )
    with urllib.request.urlopen(request) as response:
        workspace = json.load(response)["name"]
    seen = {
        "ml": claims(ml),
        "arm": claims(arm),
        "other": claims(other)["aud"],
        "workspace": workspace,
        "inherited": sorted(name for name in ("IDENTITY_ENDPOINT", "IDENTITY_HEADER") if name in os.environ),
        "msi": [os.environ["MSI_ENDPOINT"], os.environ["MSI_SECRET"]],
        "cloud": os.environ["ARM_CLOUD_METADATA_URL"],
    }

def run(mini_batch):
    return [json.dumps(seen)]
""".replace("WORKSPACE", WORKSPACE_ID)


@pytest.fixture(scope="module")
def identity_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server started from a shell where ``eval "$(batchpoint env)"`` ran: its workers must not inherit that."""
    data = tmp_path_factory.mktemp("data")
    shell = {"IDENTITY_ENDPOINT": "https://127.0.0.1:9/identity/oauth2/token", "IDENTITY_HEADER": "the shell's"}
    running = Server(tmp_path_factory.mktemp("home"), args=["--allow-local-path", str(data)], env=shell).start()
    running.data = data  # type: ignore[attr-defined]
    yield running
    running.stop()


def test_init_gets_the_computes_identity_and_uses_it(identity_server: Server) -> None:
    data = Path(tempfile.mkdtemp(dir=identity_server.data))  # type: ignore[attr-defined]
    compute_id = compute_url("identity-cpu")
    with identity_server.client() as client:
        compute = {**compute_body(), "identity": {"type": "SystemAssigned"}}
        principal = put_and_wait(client, compute_id, compute).json()["identity"]["principalId"]
        grant(client, WORKSPACE_ID, principal, "Reader")
        deploy_script(client, data, "identity", "main", SCRIPT, compute=compute_id)
        job = wait_for_job(client, invoke(client, "identity", str(write_inputs(data / "in", 1))).json()["name"], 120)
    assert job["properties"]["status"] == "Completed", job["properties"].get("error")
    [row] = predictions(identity_server.home, job["name"])
    seen = json.loads(row)

    for token, audience in ((seen["ml"], "https://ml.azure.com"), (seen["arm"], "https://management.azure.com")):
        assert token["aud"] == audience
        assert token["oid"] == token["sub"] == principal and token["xms_mirid"] == compute_id
        assert token["idtyp"] == "app" and "upn" not in token  # an application: systemData says so
    assert seen["other"] == "https://cognitiveservices.azure.com"  # any audience, as Azure mints: only we trust it
    assert seen["workspace"] == "default"  # the compute's identity read the workspace with its Reader role
    assert seen["inherited"] == []
    assert seen["cloud"] == f"{identity_server.base_url}/metadata/endpoints?api-version=2019-05-01"

    endpoint, secret = seen["msi"]
    with identity_server.client(token=None) as client:
        after = client.get(endpoint, params={"resource": "https://ml.azure.com"}, headers={"secret": secret})
        wrong = client.get(endpoint, params={"resource": "https://ml.azure.com"}, headers={"secret": secret + "x"})
    assert after.status_code == 401 and "ended" in after.json()["message"]  # the job's secret ended with it
    assert wrong.status_code == 401
