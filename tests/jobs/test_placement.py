"""Jobs on a compute hold its nodes: beyond ``maxNodeCount`` they wait, ``Queued``, in the order they came."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pytest

from tests.api.arm import compute_url, create_compute, wait_for_operation
from tests.api.jobs import V, deploy_script, invoke, predictions, status_of, wait_for_job, wait_for_status, write_inputs
from tests.server import WORKSPACE_ID, Server

GATED = """
import os
import time

def init():
    pass

def run(mini_batch):
    gate = os.environ["GATE"]
    while not os.path.exists(gate):
        time.sleep(0.05)
    return [os.path.basename(path) for path in mini_batch]
"""


@pytest.fixture(scope="module")
def data_root(local_data: Path) -> Path:
    return Path(tempfile.mkdtemp(dir=local_data))


def one_running_one_queued(client, endpoint: str, inputs: Path) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """Invoke twice on a one-node compute: the first job runs, the second waits."""
    first = invoke(client, endpoint, str(inputs)).json()["name"]
    wait_for_status(client, first, "Running")
    second = invoke(client, endpoint, str(inputs)).json()["name"]
    wait_for_status(client, second, "Queued")
    return first, second


def deploy_gated(client, data_root: Path, endpoint: str, compute: str, reference: str) -> Path:  # type: ignore[no-untyped-def]
    """A one-node compute and a deployment on it whose run() waits until the returned gate file exists."""
    gate = data_root / f"gate-{endpoint}"
    create_compute(client, compute, max_nodes=1)
    deploy_script(
        client,
        data_root,
        endpoint,
        "main",
        GATED,
        compute=reference,
        resources={"instanceCount": 1},
        environmentVariables={"GATE": str(gate)},
    )
    return gate


def test_a_second_job_waits_queued_until_the_first_ends(server: Server, data_root: Path) -> None:
    inputs = write_inputs(data_root / "inputs", 3)
    with server.client() as client:
        gate = deploy_gated(client, data_root, "queued", "one-node", "azureml:one-node")
        first, second = one_running_one_queued(client, "queued", inputs)
        time.sleep(1.0)
        still = status_of(client, second)
        gate.touch()
        done_first = wait_for_job(client, first)
        done_second = wait_for_job(client, second)

    assert still == "Queued"
    assert done_first["properties"]["status"] == done_second["properties"]["status"] == "Completed"
    assert done_second["properties"]["startTime"] >= done_first["properties"]["endTime"]
    assert done_first["properties"]["computeId"] == f"{WORKSPACE_ID}/computes/one-node"
    assert predictions(server.home, second) == [f"f{index:05d}.txt" for index in range(3)]


def test_a_queued_job_can_be_canceled(server: Server, data_root: Path) -> None:
    inputs = write_inputs(data_root / "inputs-two", 2)
    with server.client() as client:
        gate = deploy_gated(client, data_root, "cancel-q", "single", "single")
        first, second = one_running_one_queued(client, "cancel-q", inputs)
        client.post(f"{WORKSPACE_ID}/jobs/{second}/cancel", params=V)
        canceled = wait_for_job(client, second, timeout=20)
        gate.touch()
        done = wait_for_job(client, first)
    assert canceled["properties"]["status"] == "Canceled"
    assert done["properties"]["status"] == "Completed"


def test_an_instance_count_beyond_the_computes_nodes_runs_on_them_and_the_job_says_so(
    server: Server, data_root: Path
) -> None:
    """Before, the job ran on the compute's nodes and its logs said only "on 1 node(s)"."""
    inputs = write_inputs(data_root / "inputs-many", 2)
    with server.client() as client:
        create_compute(client, "two-node", max_nodes=2)
        deploy_script(client, data_root, "many", "main", "def run(b):\n    return b\n", compute="two-node",
                      resources={"instanceCount": 5})  # fmt: skip
        job = wait_for_job(client, invoke(client, "many", str(inputs)).json()["name"])
    assert job["properties"]["status"] == "Completed"
    role = (server.home / "storage").glob(
        f"bp*/azureml-blobstore-*/azureml/{job['name']}/score/logs/sys/master_role.txt"
    )
    text = next(role).read_text()
    assert "on 2 node(s) of 1 process(es)" in text
    assert (
        "instance_count 5 is more than the compute 'two-node' has (max_instances 2): the job runs on 2 node(s)." in text
    )


def test_invoking_a_deployment_whose_compute_was_deleted_names_it(server: Server, data_root: Path) -> None:
    inputs = write_inputs(data_root / "inputs-three", 1)
    with server.client() as client:
        create_compute(client, "short-lived")
        deploy_script(client, data_root, "orphan", "main", GATED, compute="short-lived")
        wait_for_operation(
            client, client.delete(compute_url("short-lived"), params={**V, "underlyingResourceAction": "Delete"})
        )
        refused = invoke(client, "orphan", str(inputs))
    assert refused.status_code == 400 and "short-lived" in refused.json()["error"]["message"]
