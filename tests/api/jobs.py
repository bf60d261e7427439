"""Helpers for job tests: a scoring script on disk, a deployment that runs it, invoke and wait."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from tests.api.arm import create_endpoint, deployment_body, deployment_url, endpoint_url, put_and_wait
from tests.server import API, WORKSPACE_ID

V = {"api-version": API}
TERMINAL = ("Completed", "Failed", "Canceled")


def write_inputs(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        (folder / f"f{index:05d}.txt").write_text(f"{index}\n")
    return folder


def deploy_script(
    client: httpx.Client,
    folder: Path,
    endpoint: str,
    deployment: str,
    script: str,
    timeout: float = 15,
    workspace: str = WORKSPACE_ID,
    **settings: Any,
) -> None:
    """Register ``script`` as a code version and deploy it as the endpoint's default deployment."""
    code = folder / f"code-{endpoint}-{deployment}"
    code.mkdir(parents=True, exist_ok=True)
    (code / "score.py").write_text(script)
    code_id = f"{workspace}/codes/{endpoint}-{deployment}/versions/1"
    assert client.put(code_id, params=V, json={"properties": {"codeUri": str(code)}}).status_code in (200, 201)
    if client.get(endpoint_url(endpoint, workspace), params=V).status_code == 404:
        create_endpoint(client, endpoint, workspace)
    body = deployment_body(codeConfiguration={"codeId": code_id, "scoringScript": "score.py"}, **settings)
    deployed = put_and_wait(client, deployment_url(endpoint, deployment, workspace), body, timeout).json()
    assert deployed["properties"]["provisioningState"] == "Succeeded"
    endpoint_body = client.get(endpoint_url(endpoint, workspace), params=V).json()
    endpoint_body["properties"]["defaults"] = {"deploymentName": deployment}
    put_and_wait(client, endpoint_url(endpoint, workspace), endpoint_body)


def invoke(
    client: httpx.Client,
    endpoint: str,
    uri: str,
    headers: dict[str, str] | None = None,
    workspace: str = WORKSPACE_ID,
    **properties: Any,
) -> httpx.Response:
    scoring_uri = client.get(endpoint_url(endpoint, workspace), params=V).json()["properties"]["scoringUri"]
    body = {"properties": {"inputData": {"UriFolder": {"jobInputType": "UriFolder", "uri": uri}}, **properties}}
    return client.post(scoring_uri, json=body, headers=headers or {})


def wait_for_job(client: httpx.Client, name: str, timeout: float = 60, workspace: str = WORKSPACE_ID) -> dict[str, Any]:
    return wait_for_status(client, name, TERMINAL, timeout, workspace)


def status_of(client: httpx.Client, name: str, workspace: str = WORKSPACE_ID) -> str:
    return client.get(f"{workspace}/jobs/{name}", params=V).json()["properties"]["status"]


def wait_for_status(
    client: httpx.Client, name: str, wanted: str | tuple[str, ...], timeout: float = 60, workspace: str = WORKSPACE_ID
) -> dict[str, Any]:
    """The job once its status is `wanted` (or one of them); polled every 0.1 s at first, every 0.3 s after 1 s."""
    wanted = (wanted,) if isinstance(wanted, str) else wanted
    deadline = time.monotonic() + timeout
    pause = 0.1
    while time.monotonic() < deadline:
        job = client.get(f"{workspace}/jobs/{name}", params=V).json()
        if job["properties"]["status"] in wanted:
            return job
        time.sleep(pause)
        pause = min(pause * 1.2, 0.3)
    raise AssertionError(f"job {name} did not reach {' or '.join(wanted)} in {timeout} s")


def predictions(home: Path, job_name: str, file_name: str = "predictions.csv") -> list[str]:
    matches = list((home / "storage").glob(f"*/azureml-blobstore-*/azureml/{job_name}/score/{file_name}"))
    assert len(matches) == 1, f"no output for {job_name}"
    return matches[0].read_text().splitlines()


def blob_container(client: httpx.Client, home: Path, workspace: str = WORKSPACE_ID) -> Path:
    """The workspace's default blob container on the server's disk: the one of its current `workspaceId` (another
    test module may have made more workspaces, or deleted this one and made it again, on a shared server)."""
    workspace_id = client.get(workspace, params={"api-version": API}).json()["properties"]["workspaceId"]
    [container] = (home / "storage").glob(f"bp*/azureml-blobstore-{workspace_id}")
    return container
