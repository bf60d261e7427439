"""Deployments run in their own Python environments, built from their environment's conda file once per spec."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.arm import deployment_body, deployment_url, put_and_wait
from tests.api.jobs import V, deploy_script, invoke, predictions, wait_for_job, write_inputs
from tests.server import WORKSPACE_ID, Server, running

PANDAS_2 = "dependencies:\n- python=3.11\n- pip\n- pandas=2.3\n- numpy<3\n"
"""A conda pin (`pandas=2.3` means any 2.3 release) that batchpoint turns into a pip pin."""
PANDAS_3 = "dependencies:\n- pip\n- pip:\n  - pandas>=3,<3.1\n"
BUILD_TIMEOUT = 300
UNINSTALLABLE = "dependencies:\n- pip:\n  - batchpoint-test-no-such-package==0.0.1\n"

REPORTING_SCRIPT = """
import importlib.util
import sys

import pandas

def init():
    pass

def run(mini_batch):
    leaked = importlib.util.find_spec("fastapi") is not None
    return [f"{pandas.__version__},{sys.prefix},{leaked}" for _ in mini_batch]
"""


def serve_with_data_root(tmp_path_factory: pytest.TempPathFactory, *args: str) -> Iterator[Server]:
    """A server whose `data_root` folder jobs may read and write by local path, with extra `serve` arguments."""
    data_root = tmp_path_factory.mktemp("data")
    with running(tmp_path_factory.mktemp("home"), "--allow-local-path", str(data_root), *args) as server:
        server.data_root = data_root  # type: ignore[attr-defined]
        yield server


@pytest.fixture(scope="module")
def env_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from serve_with_data_root(tmp_path_factory)


@pytest.fixture(scope="module")
def client(env_server: Server) -> Iterator[httpx.Client]:
    with env_server.client() as http:
        yield http


def register_environment(client: httpx.Client, name: str, conda_file: str) -> str:
    environment_id = f"{WORKSPACE_ID}/environments/{name}/versions/1"
    body = {"properties": {"condaFile": conda_file, "image": "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04"}}
    assert client.put(environment_id, params=V, json=body).status_code in (200, 201)
    return environment_id


def provision(client: httpx.Client, endpoint: str, deployment: str, environment_id: str) -> list[dict[str, Any]]:
    """PUT a model-less deployment in an environment; every operation status seen while it provisions."""
    body = deployment_body(environmentId=environment_id)
    if client.get(f"{WORKSPACE_ID}/batchEndpoints/{endpoint}", params=V).status_code == 404:
        put_and_wait(
            client,
            f"{WORKSPACE_ID}/batchEndpoints/{endpoint}",
            {"location": "local", "properties": {"authMode": "AADToken"}},
        )
    response = client.put(deployment_url(endpoint, deployment), params=V, json=body)
    assert response.status_code in (200, 201), response.text
    seen = []
    status_url = response.headers["Azure-AsyncOperation"]
    while not seen or seen[-1]["status"] == "InProgress":
        if seen:
            time.sleep(0.05)
        seen.append(client.get(status_url).json())
    return seen


def test_two_deployments_see_their_own_pandas(client: httpx.Client, env_server: Server) -> None:
    data_root: Path = env_server.data_root  # type: ignore[attr-defined]
    inputs = write_inputs(data_root / "inputs", 2)
    versions = {}
    for name, conda_file in (("pandas2", PANDAS_2), ("pandas3", PANDAS_3)):
        environment_id = register_environment(client, name, conda_file)
        deploy_script(
            client, data_root, f"env-{name}", "main", REPORTING_SCRIPT, BUILD_TIMEOUT, environmentId=environment_id
        )
        started = invoke(client, f"env-{name}", str(inputs))
        assert started.status_code == 200, started.text
        job = started.json()
        assert wait_for_job(client, job["name"], timeout=120)["properties"]["status"] == "Completed"
        version, prefix, leaked = predictions(env_server.home, job["name"])[0].split(",")
        assert Path(prefix).is_relative_to(env_server.home / "environments")
        assert leaked == "False", "the server's own packages must not be importable in a deployment's environment"
        versions[name] = version
    assert versions["pandas2"].startswith("2.3.") and versions["pandas3"].startswith("3."), versions


def test_progress_and_build_log_are_visible_while_the_environment_builds(client: httpx.Client) -> None:
    environment_id = register_environment(client, "six", "dependencies:\n- pip:\n  - six==1.16.0\n")
    seen = provision(client, "env-progress", "main", environment_id)
    building = [status["properties"] for status in seen if "phase" in status.get("properties", {})]
    assert seen[-1]["status"] == "Succeeded"
    assert building and building[0]["phase"] == "BuildingEnvironment"
    assert "six" in Path(building[0]["buildLog"]).read_text()


def test_an_already_built_spec_is_reused_without_building(client: httpx.Client, env_server: Server) -> None:
    first = register_environment(client, "reuse-a", "dependencies:\n- pip:\n  - six==1.16.0\n  - attrs\n")
    second = register_environment(client, "reuse-b", "dependencies:\n- pip:\n  - six==1.16.0\n  - attrs\n")
    assert provision(client, "env-reuse", "first", first)[-1]["status"] == "Succeeded"
    seen = provision(client, "env-reuse", "second", second)
    assert seen[-1]["status"] == "Succeeded"
    assert not any("phase" in status.get("properties", {}) for status in seen), "the second deployment must not build"
    logs = list((env_server.home / "environments" / "logs").glob("*.log"))
    assert sum(log.read_text().count("# building environment") for log in logs if "attrs" in log.read_text()) == 1


def test_an_uninstallable_spec_fails_with_the_installer_error_and_leaves_nothing(
    client: httpx.Client, env_server: Server
) -> None:
    environment_id = register_environment(client, "broken", UNINSTALLABLE)
    seen = provision(client, "env-broken", "main", environment_id)
    assert seen[-1]["status"] == "Failed"
    message = seen[-1]["error"]["message"]
    assert "batchpoint-test-no-such-package" in message and "install failed (exit code 1)" in message
    deployment = client.get(deployment_url("env-broken", "main"), params=V).json()
    assert deployment["properties"]["provisioningState"] == "Failed"
    folders = [path.name for path in (env_server.home / "environments").iterdir() if path.name not in ("logs", "locks")]
    built_ok = [
        name for name in folders if (env_server.home / "environments" / name / "batchpoint-environment.json").exists()
    ]
    assert folders == built_ok, "a failed build must leave no environment folder behind"


def test_an_unreadable_conda_file_fails_provisioning_with_its_reason(client: httpx.Client) -> None:
    environment_id = register_environment(client, "not-yaml", "dependencies: [unclosed")
    seen = provision(client, "env-bad-yaml", "main", environment_id)
    assert seen[-1]["status"] == "Failed"
    assert "not valid YAML" in seen[-1]["error"]["message"]
