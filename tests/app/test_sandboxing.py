"""Issue 23: scoring code is untrusted. A server's scoring scripts and pipeline steps reach nothing of the server but
their own job (tests/hostile_score.py probes it), and still score their own files; where the kernel cannot sandbox
them, only the owners are served."""

from __future__ import annotations

import json
import os
import shlex
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from batchpoint.app.tls import tls_files
from batchpoint.runtime.sandbox.policy import TEST_ABI_VARIABLE
from tests.api.arm import AUTHORIZATION_API, create_endpoint, deployment_body, deployment_url, grant, wait_for_operation
from tests.api.jobs import V, deploy_script, invoke, wait_for_job
from tests.sandboxing import HOSTILE_SCORE, assert_contained, reports
from tests.server import TEST_USER, WORKSPACE_ID, Server, batchpoint_command

OTHER_WORKSPACE = WORKSPACE_ID.replace("/workspaces/default", "/workspaces/other")
SERVER_SECRET = {"BATCHPOINT_TEST_SECRET": "hunter2"}
"""In the server's environment: no worker may see it."""
BUSY = """
import os, time

def init():
    with open(os.path.join(os.environ["AZUREML_BI_OUTPUT_PATH"], "secret-predictions.txt"), "w") as out:
        out.write("another user's predictions")
    time.sleep(300)

def run(mini_batch):
    return mini_batch
"""
"""A job that keeps running, its output folder holding a file."""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("sandboxed")
    (root / "local").mkdir()
    server = Server(home=root / "home", tls=True, args=["--allow-local-path", str(root / "local")], env=SERVER_SECRET)
    yield server.start()
    server.stop()


def blobstore(client: httpx.Client, home: Path, workspace: str) -> Path:
    """The folder of a workspace's default datastore."""
    datastore = client.get(f"{workspace}/datastores/workspaceblobstore", params=V).json()["properties"]
    account = datastore["accountName"].split("/blob/")[1].split("?")[0]
    return home / "storage" / account / datastore["containerName"]


@pytest.fixture(scope="module")
def targets(served: Server) -> Iterator[dict[str, Any]]:
    """What the hostile script probes on `served`: its secrets, a second workspace's upload, the output of a job
    that runs meanwhile; and the job's own inputs (in the default datastore)."""
    local = served.home.parent / "local"
    with served.client() as client:
        assert client.put(OTHER_WORKSPACE, params=V, json={"location": "local"}).status_code in (200, 201)
        upload = blobstore(client, served.home, OTHER_WORKSPACE) / "uploads" / "ssn.csv"
        upload.parent.mkdir(parents=True)
        upload.write_text("ssn\n123-45-6789\n")
        own = blobstore(client, served.home, WORKSPACE_ID)
        for index in range(4):
            (own / "hostile-in").mkdir(exist_ok=True)
            (own / "hostile-in" / f"f{index}.txt").write_text("x" * (index + 1))
        deploy_script(client, local, "busy", "main", BUSY)
        busy = invoke(client, "busy", str(local)).json()["name"]
        busy_output = own / "azureml" / busy / "score"
        deadline = time.monotonic() + 30
        while not (busy_output / "secret-predictions.txt").exists():
            assert time.monotonic() < deadline, "the busy job did not start"
            time.sleep(0.05)
        yield {
            "data_dir": str(served.home),
            "signing_key": str(served.home / "issuer" / "signing-key.pem"),
            "database": str(served.home / "batchpoint.db"),
            "tls_key": str(tls_files(served.home).key),
            "other_workspace_file": str(upload),
            "other_job_output": str(busy_output),
            "other_job_file": str(busy_output / "secret-predictions.txt"),
            "unnamed_local_file": str(local / "code-busy-main" / "score.py"),
            "input_file": str(own / "hostile-in" / "f0.txt"),
        }
        client.post(f"{WORKSPACE_ID}/jobs/{busy}/cancel", params=V)


def test_a_hostile_scoring_script_reaches_nothing_of_the_server_and_scores_its_own_files(
    served: Server, targets: dict[str, Any]
) -> None:
    code = served.home.parent / "local"
    with served.client() as client:
        variables = {"TARGETS": json.dumps(targets)}
        script = HOSTILE_SCORE.read_text()
        deploy_script(client, code, "hostile", "main", script, environmentVariables=variables, miniBatchSize=2)
        name = invoke(client, "hostile", "azureml://datastores/workspaceblobstore/paths/hostile-in/").json()["name"]
        job = wait_for_job(client, name)
        output = blobstore(client, served.home, WORKSPACE_ID) / "azureml" / name / "score"

    assert job["properties"]["status"] == "Completed", job["properties"]
    assert (output / "predictions.csv").read_text().splitlines() == ["f0.txt 1", "f1.txt 2", "f2.txt 3", "f3.txt 4"]
    assert_contained(reports(output))
    assert not (served.home / "pwned.txt").exists()


def test_a_hostile_pipeline_step_reaches_nothing_of_the_server_and_writes_its_own_output(
    served: Server, targets: dict[str, Any]
) -> None:
    code = served.home.parent / "local" / "step-code"
    code.mkdir()
    (code / "hostile_score.py").write_text(HOSTILE_SCORE.read_text())
    arguments = "${{inputs.data}} ${{outputs.out}}"
    command = f"TARGETS={shlex.quote(json.dumps(targets))} python hostile_score.py {arguments}"
    with served.client() as client:
        code_id = f"{WORKSPACE_ID}/codes/hostile-step/versions/1"
        assert client.put(code_id, params=V, json={"properties": {"codeUri": str(code)}}).status_code in (200, 201)
        step = {
            "type": "command",
            "code": code_id,
            "command": command,
            "inputs": {"data": {"type": "uri_folder"}},
            "outputs": {"out": {"type": "uri_folder"}},
        }
        pipeline = {
            "type": "pipeline",
            "inputs": {"data": {"type": "uri_folder"}},
            "jobs": {
                "probe": {
                    "type": "command",
                    "componentId": component(client, "hostile-step", step),
                    "inputs": {"data": {"job_input_type": "literal", "value": "${{parent.inputs.data}}"}},
                }
            },
        }
        deploy_pipeline(client, "hostile-pipe", component(client, "hostile-pipeline", pipeline))
        data = {"jobInputType": "UriFolder", "uri": "azureml://datastores/workspaceblobstore/paths/hostile-in/"}
        scoring = client.get(f"{WORKSPACE_ID}/batchEndpoints/hostile-pipe", params=V).json()["properties"]
        body = {"properties": {"inputData": {"data": data}}}
        response = client.post(scoring["scoringUri"], json=body, headers={"azureml-model-deployment": "main"})
        job = wait_for_job(client, response.json()["name"])
        output = blobstore(client, served.home, WORKSPACE_ID) / "azureml" / f"{job['name']}-probe" / "out"

    assert job["properties"]["status"] == "Completed", job["properties"]
    assert (output / "scores.txt").read_text().splitlines() == ["f0.txt 1", "f1.txt 2", "f2.txt 3", "f3.txt 4"]
    assert_contained(reports(output))


def component(client: httpx.Client, name: str, spec: dict[str, Any]) -> str:
    component_id = f"{WORKSPACE_ID}/components/{name}/versions/1"
    response = client.put(component_id, params=V, json={"properties": {"componentSpec": spec}})
    assert response.status_code in (200, 201), response.text
    return component_id


def deploy_pipeline(client: httpx.Client, endpoint: str, component_id: str) -> None:
    create_endpoint(client, endpoint)
    configuration = {
        "deploymentConfigurationType": "PipelineComponent",
        "componentId": {"referenceType": "Id", "assetId": component_id},
    }
    body = deployment_body(deploymentConfiguration=configuration)
    response = client.put(deployment_url(endpoint, "main"), params=V, json=body)
    assert wait_for_operation(client, response).json()["status"] == "Succeeded"


def test_the_data_directory_keeps_its_secrets_to_its_owner(served: Server) -> None:
    home = served.home
    assert stat.S_IMODE(home.stat().st_mode) == 0o711
    assert stat.S_IMODE((home / "issuer").stat().st_mode) == 0o700
    for secret in (home / "batchpoint.db", home / "issuer" / "signing-key.pem", tls_files(home).key):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600, secret


def test_the_banner_says_how_workers_are_sandboxed(served: Server) -> None:
    banner = Path(served.log.name).read_text()
    assert "workers are sandboxed (Landlock ABI" in banner


def test_without_landlock_only_the_owners_are_served(tmp_path: Path) -> None:
    """The kernel pretends to have no Landlock (TEST_ABI_VARIABLE): the server says so, starts with owners only,
    refuses a role for anyone else; restarted holding one, it does not start, unless --unsandboxed-workers."""
    no_landlock = {TEST_ABI_VARIABLE: "0"}
    server = Server(home=tmp_path / "home", env=no_landlock).start()
    try:
        assert "WORKERS ARE NOT SANDBOXED: this kernel has no Landlock" in Path(server.log.name).read_text()
        with server.client() as client:
            refused = client.put(
                "/subscriptions/00000000-0000-0000-0000-000000000000/providers/Microsoft.Authorization/"
                "roleAssignments/6f6e2b1c-0d53-4c87-9c6a-2b0b3d9d0e01",
                params={"api-version": AUTHORIZATION_API},
                json={"properties": {"roleDefinitionId": "Reader", "principalId": "someone-else"}},
            )
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"]["code"] == "WorkersNotSandboxed"
    finally:
        server.stop()

    unsandboxed = Server(home=tmp_path / "home", env=no_landlock, args=["--unsandboxed-workers"]).start()
    try:
        assert "WORKERS ARE NOT SANDBOXED (--unsandboxed-workers)" in Path(unsandboxed.log.name).read_text()
        with unsandboxed.client() as client:
            grant(client, "/subscriptions/00000000-0000-0000-0000-000000000000", "someone-else", "Reader")
    finally:
        unsandboxed.stop()

    serve = ["serve", "--http", "--home", str(tmp_path / "home"), "--port", "1", "--owner", TEST_USER]
    refused_start = subprocess.run(
        [*batchpoint_command(), *serve], capture_output=True, text=True, env={**os.environ, **no_landlock}, timeout=60
    )
    assert refused_start.returncode == 2
    assert "refusing to start while principals other than the owners hold roles (someone-else)" in refused_start.stderr
