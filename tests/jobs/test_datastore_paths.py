"""Inputs and outputs written as Azure's REST docs write them: a datastore's ARM id followed by ``/paths/...``,
bare or after ``azureml:``, with the docs' PascalCase keys."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from tests.api.arm import endpoint_url
from tests.api.jobs import V, blob_container, deploy_script, wait_for_job, write_inputs
from tests.server import WORKSPACE_ID, Server

ECHO = """
import os

def run(mini_batch):
    return [os.path.basename(path) for path in mini_batch]
"""
DATASTORE = f"{WORKSPACE_ID}/datastores/workspaceblobstore"
ELSEWHERE = DATASTORE.replace("/workspaces/default/", "/workspaces/another/")


@pytest.fixture(scope="module")
def blobstore(server: Server, local_data: Path) -> Path:
    """The default workspace's blob container on disk, with 3 input files under ``paths-in``."""
    with server.client() as client:
        deploy_script(client, Path(tempfile.mkdtemp(dir=local_data)), "paths", "main", ECHO)
        container = blob_container(client, server.home)
    write_inputs(container / "paths-in", 3)
    return container


def invoke(server: Server, input_uri: str, output_uri: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    body = {
        "properties": {
            "InputData": {"heart_dataset": {"JobInputType": "UriFolder", "Uri": input_uri}},
            "OutputData": {"score": {"JobOutputType": "UriFolder", "Uri": output_uri}},
        }
    }
    with server.client() as client:
        scoring_uri = client.get(endpoint_url("paths"), params=V).json()["properties"]["scoringUri"]
        answer = client.post(scoring_uri, json=body)
        if answer.status_code != 200:
            return answer.status_code, answer.json()
        return 200, wait_for_job(client, answer.json()["name"])


@pytest.mark.parametrize("prefix", ["azureml:", ""], ids=["azureml-prefix", "bare"])
def test_datastore_ids_with_paths_as_input_and_output(server: Server, blobstore: Path, prefix: str) -> None:
    folder = f"paths-out/{prefix.rstrip(':') or 'bare'}"
    status, job = invoke(server, f"{prefix}{DATASTORE}/paths/paths-in/", f"{DATASTORE}/paths/{folder}")
    assert status == 200 and job["properties"]["status"] == "Completed", job
    assert (blobstore / folder / "predictions.csv").read_text().splitlines() == [f"f{i:05d}.txt" for i in range(3)]
    stored = job["properties"]["outputs"]["score"]["uri"]
    assert stored == f"azureml://datastores/workspaceblobstore/paths/{folder}"  # the form every client parses
    with server.client() as client:
        child = client.get(f"{WORKSPACE_ID}/jobs/{job['name']}-batchscoring", params=V).json()
    assert child["properties"]["outputs"]["score"]["uri"] == stored


@pytest.mark.parametrize("which", ["input", "output"])
def test_a_datastore_of_another_workspace_is_refused(server: Server, blobstore: Path, which: str) -> None:
    inside, outside = f"{DATASTORE}/paths/paths-in/", f"{ELSEWHERE}/paths/paths-in/"
    status, error = invoke(server, outside if which == "input" else inside, outside if which == "output" else inside)
    assert status == 400 and "another workspace" in error["error"]["message"]


@pytest.mark.parametrize(
    "uri",
    ["azureml://datastores/workspaceblobstore/paths/paths-typo/", f"{DATASTORE}/paths/paths-typo"],
    ids=["azureml-uri", "arm-id"],
)
def test_a_missing_input_fails_its_job_naming_the_input_as_the_invoke_wrote_it(
    server: Server, blobstore: Path, uri: str
) -> None:
    """Before, the error named only the folder on the server's disk (`/home/.../azureml-blobstore-.../paths-typo`)."""
    status, job = invoke(server, uri, f"{DATASTORE}/paths/paths-out/typo-{len(uri)}")
    assert status == 200 and job["properties"]["status"] == "Failed", job
    message = job["properties"]["error"]["message"]
    assert message.startswith(f"The input '{uri}' does not exist: there is no file or folder at '"), message
    assert message.endswith(f"{blobstore / 'paths-typo'}'."), message
