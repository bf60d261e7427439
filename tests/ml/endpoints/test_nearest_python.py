"""`serve --nearest-python`: an environment whose Python is not on this machine is built on the nearest one, and
the pins that do not install there are moved and listed in the deployment's operation status."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from batchpoint.runtime.environments.interpreters import PythonNotFound
from tests.api.arm import deployment_url
from tests.api.jobs import V, deploy_script, invoke, predictions, wait_for_job, write_inputs
from tests.ml.endpoints.test_environments import provision, register_environment, serve_with_data_root
from tests.pythons import PYTHONS
from tests.server import Server

try:
    NEAREST_TO_37 = PYTHONS.choose("3.8")
except PythonNotFound:
    pytest.skip("needs a Python 3.8 interpreter, the nearest supported one to 3.7", allow_module_level=True)

PYTHON_37 = "dependencies:\n- python=3.7\n- pip:\n  - typing-extensions==4.14.0\n  - six==1.16.0\n"
"""typing-extensions 4.14.0 needs Python 3.9 or later (4.13.2 is the last for 3.8), six 1.16.0 installs everywhere.
(A pin that only an upper bound of Requires-Python keeps off 3.8, such as dataclasses 0.8, would not do: uv
ignores those bounds and installs it.)"""

REPORTS = """
import sys
from importlib import metadata

def run(mini_batch):
    version = metadata.version("typing_extensions")
    return ["%d.%d typing-extensions %s" % (sys.version_info[0], sys.version_info[1], version)]
"""


@pytest.fixture(scope="module")
def nearest_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from serve_with_data_root(tmp_path_factory, "--nearest-python")


@pytest.fixture(scope="module")
def client(nearest_server: Server) -> Iterator[httpx.Client]:
    with nearest_server.client() as http:
        yield http


def test_a_missing_python_builds_on_the_nearest_and_lists_the_moved_pins(
    client: httpx.Client, nearest_server: Server
) -> None:
    environment_id = register_environment(client, "python37", PYTHON_37)
    seen = provision(client, "nearest", "status", environment_id)

    assert seen[-1]["status"] == "Succeeded", seen[-1]
    status = seen[-1]["properties"]
    assert status["pythonRequested"] == "3.7" and status["python"] == NEAREST_TO_37.version
    assert status["movedPins"] == ["typing-extensions==4.14.0 -> 4.13.2"]
    assert (
        client.get(deployment_url("nearest", "status"), params=V).json()["properties"]["provisioningState"]
        == "Succeeded"
    )


def test_its_jobs_run_on_the_nearest_python(client: httpx.Client, nearest_server: Server) -> None:
    data_root: Path = nearest_server.data_root  # type: ignore[attr-defined]
    environment_id = register_environment(client, "python37-jobs", PYTHON_37)
    deploy_script(client, data_root, "nearest-jobs", "main", REPORTS, 300, environmentId=environment_id)
    job = invoke(client, "nearest-jobs", str(write_inputs(data_root / "inputs", 1))).json()

    assert wait_for_job(client, job["name"], timeout=120)["properties"]["status"] == "Completed"
    assert predictions(nearest_server.home, job["name"]) == ["3.8 typing-extensions 4.13.2"]
