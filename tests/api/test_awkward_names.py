"""Resource groups named like the keys of an ARM id (``workspaces``, ``providers``) work end to end."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from tests.api.arm import deployment_url, endpoint_url
from tests.api.jobs import V, deploy_script, invoke, wait_for_job, write_inputs
from tests.server import SUBSCRIPTION, Server

ECHO = """
import os

def init():
    pass

def run(mini_batch):
    return [os.path.basename(path) for path in mini_batch]
"""
GROUP_API = {"api-version": "2021-04-01"}


@pytest.fixture(scope="module")
def data_root(local_data: Path) -> Path:
    return Path(tempfile.mkdtemp(dir=local_data))


@pytest.mark.parametrize("group", ["workspaces", "providers"])
def test_a_group_named_like_an_id_key_runs_jobs(server: Server, data_root: Path, group: str) -> None:
    group_id = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{group}"
    workspace = f"{group_id}/providers/Microsoft.MachineLearningServices/workspaces/workspaces"
    inputs = write_inputs(data_root / f"in-{group}", 5)
    with server.client() as client:
        assert client.put(group_id, params=GROUP_API, json={"location": "local"}).status_code in (200, 201)
        created = client.put(workspace, params=V, json={"location": "local"})
        assert created.status_code in (200, 201), created.text
        deploy_script(client, data_root, f"ep-{group}", "workspaces", ECHO, workspace=workspace, miniBatchSize=2)
        started = invoke(client, f"ep-{group}", str(inputs), workspace=workspace)
        assert started.status_code == 200, started.text
        job = wait_for_job(client, started.json()["name"], workspace=workspace)
        deployment = client.get(deployment_url(f"ep-{group}", "workspaces", workspace), params=V).json()
        endpoints = client.get(f"{workspace}/batchEndpoints", params=V).json()["value"]
        jobs = client.get(f"{workspace}/jobs", params=V).json()["value"]
        mfe = f"{server.base_url}/mferp/managementfrontend{endpoint_url(f'ep-{group}', workspace)}/jobs"
        endpoint_jobs = client.get(mfe, params={"api-version": "2020-09-01-dataplanepreview"}).json()["value"]
        missing = client.get(f"{workspace}/batchEndpoints/nothing", params=V)
    assert job["properties"]["status"] == "Completed", job["properties"]
    assert job["properties"]["progress"]["items"]["succeeded"] == 5
    assert deployment["id"] == deployment_url(f"ep-{group}", "workspaces", workspace)
    assert [endpoint["name"] for endpoint in endpoints] == [f"ep-{group}"]
    assert sorted(listed["name"] for listed in jobs) == [job["name"], f"{job['name']}-batchscoring"]  # and its step
    assert [listed["name"] for listed in endpoint_jobs] == [job["name"]]
    assert missing.status_code == 404
    assert missing.json()["error"]["message"].startswith(
        "The Resource 'Microsoft.MachineLearningServices/workspaces/workspaces/batchEndpoints/nothing' under "
        f"resource group '{group}' was not found."
    )
