"""A compute on a real Ray cluster (three nodes, shared with tests/runtime/test_ray_executor.py), through the
unmodified MLClient: compute create, a deployment with ``compute="azureml:batch-cluster"``, ``batch_endpoints.invoke``,
the job's progress and logs, the compute's managed identity in the scoring script, and inputs the nodes read
themselves from a shared path or a blob container."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.ai.ml import Input, MLClient
from azure.ai.ml.entities import (
    AmlCompute,
    BatchEndpoint,
    BatchRetrySettings,
    CodeConfiguration,
    Model,
    ModelBatchDeployment,
    ModelBatchDeploymentSettings,
    ResourceConfiguration,
)
from azure.ai.ml.exceptions import JobException

from batchpoint.app.sandboxing import TEST_READ_WRITE_VARIABLE
from tests.api.jobs import V, predictions, wait_for_job, write_inputs
from tests.azurite import Azurite, azurite, datastore_properties  # noqa: F401 - azurite is a fixture
from tests.runtime.conftest import ray_nodes
from tests.sdk.mlclient import connect
from tests.server import API, WORKSPACE_ID, Server

pytest.importorskip("ray")
from ray.cluster_utils import Cluster

SCORE = """
import os
import socket
from azure.identity import DefaultAzureCredential

def init():
    global model_files
    model_files = sorted(os.listdir(os.environ["AZUREML_MODEL_DIR"]))
    token = DefaultAzureCredential().get_token("https://ml.azure.com/.default").token
    print("ready on", socket.gethostname(), "with a managed identity token:", bool(token))

def run(mini_batch):
    print("scoring", len(mini_batch), "files")
    return [f"{os.path.basename(path)} {open(path).read().strip()} {model_files[0]}" for path in mini_batch]
"""


@pytest.fixture(scope="module")
def ray_server(tmp_path_factory: pytest.TempPathFactory, ray_cluster: Cluster) -> Iterator[Server]:
    home, marks = tmp_path_factory.mktemp("home"), tmp_path_factory.mktemp("marks")
    args = ["--ray-address", ray_cluster.address, "--ray-shared-path", str(home)]
    server = Server(home=home, tls=True, args=args, env={TEST_READ_WRITE_VARIABLE: str(marks)}).start()
    server.marks = marks  # type: ignore[attr-defined]  # test-only: the scripts' marks, outside their jobs
    yield server
    server.stop()


@pytest.fixture(scope="module")
def ml_client(ray_server: Server) -> Iterator[MLClient]:
    with pytest.MonkeyPatch.context() as patch:
        yield connect(ray_server, patch)


def deploy(
    ml_client: MLClient,
    folder: Path,
    endpoint: str,
    compute: str,
    script: str = SCORE,
    instances: int = 1,
    **settings: Any,
) -> None:
    """One worker on one node unless asked: each worker on Ray is an actor, a Ray worker process of its own."""
    (folder / "src").mkdir(parents=True)
    (folder / "src" / "score.py").write_text(script)
    (folder / "model").mkdir()
    (folder / "model" / "weights.bin").write_bytes(b"w")
    model = ml_client.models.create_or_update(Model(name=f"{endpoint}-model", path=str(folder / "model")))
    ml_client.batch_endpoints.begin_create_or_update(BatchEndpoint(name=endpoint)).result()
    deployment = ModelBatchDeployment(
        name="main",
        endpoint_name=endpoint,
        model=model,
        code_configuration=CodeConfiguration(code=str(folder / "src"), scoring_script="score.py"),
        compute=compute,
        resources=ResourceConfiguration(instance_count=instances),
        settings=ModelBatchDeploymentSettings(**{"mini_batch_size": 10, **settings}),
    )
    ml_client.batch_deployments.begin_create_or_update(deployment).result()
    endpoint_resource = ml_client.batch_endpoints.get(endpoint)
    endpoint_resource.defaults.deployment_name = "main"
    ml_client.batch_endpoints.begin_create_or_update(endpoint_resource).result()


def test_a_job_on_a_ray_compute_runs_on_two_nodes(
    ml_client: MLClient, ray_server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ml_client.compute.begin_create_or_update(AmlCompute(name="batch-cluster", max_instances=2)).result()
    deploy(ml_client, tmp_path / "project", "ray-ep", "azureml:batch-cluster", instances=2)
    job = ml_client.batch_endpoints.invoke(
        endpoint_name="ray-ep", input=Input(type="uri_folder", path=str(write_inputs(tmp_path / "in", 200)))
    )
    ml_client.jobs.stream(job.name)
    streamed = capsys.readouterr().out

    assert ml_client.jobs.get(job.name).status == "Completed"
    assert predictions(ray_server.home, job.name) == [f"f{index:05d}.txt {index} model" for index in range(200)]
    assert "Job Completed: 200 of 200 items succeeded" in streamed
    assert "[0/process000.stdout]" in streamed and "scoring 10 files" in streamed
    assert "with a managed identity token: True" in streamed  # MSI_ENDPOINT over HTTPS from a Ray actor
    assert "Inputs: the nodes read them in place under the shared path" in streamed
    assert "Coordinator transfer: " in streamed
    logs = next((ray_server.home / "storage").glob(f"*/azureml-blobstore-*/azureml/{job.name}/score/logs"))
    assert len(ray_nodes(logs)) == 2


FAILS_ONCE_ON_F3 = SCORE.replace(
    "def run(mini_batch):\n",
    "def run(mini_batch):\n"
    "    if any(path.endswith('f3.txt') for path in mini_batch) and not os.path.exists(os.environ['MARKER']):\n"
    "        open(os.environ['MARKER'], 'w').close()\n"
    "        raise ValueError('f3 fails once')\n",
)


def test_a_job_on_a_ray_compute_reads_a_blob_input_on_the_nodes_and_reruns_its_failures(
    ml_client: MLClient, ray_server: Server, azurite: Azurite, tmp_path: Path
) -> None:
    container = f"c{uuid.uuid4().hex}"
    with azurite.service() as service:
        client = service.create_container(container)
        for index in range(5):
            client.upload_blob(f"in/f{index}.txt", str(index).encode())
    with ray_server.client() as http:
        body = {"properties": datastore_properties(azurite, container)}
        assert http.put(f"{WORKSPACE_ID}/datastores/blobinput", params=V, json=body).status_code == 201
    ml_client.compute.begin_create_or_update(AmlCompute(name="blob-cluster", max_instances=2)).result()
    deploy(
        ml_client,
        tmp_path / "project",
        "blob-ep",
        "azureml:blob-cluster",
        FAILS_ONCE_ON_F3,
        mini_batch_size=1,
        retry_settings=BatchRetrySettings(max_retries=0),
        environment_variables={"MARKER": str(ray_server.marks / "failed-once")},  # type: ignore[attr-defined]
    )
    job = ml_client.batch_endpoints.invoke(
        endpoint_name="blob-ep", input=Input(type="uri_folder", path="azureml://datastores/blobinput/paths/in/")
    )
    ml_client.jobs.stream(job.name)

    assert ml_client.jobs.get(job.name).status == "Completed"
    assert predictions(ray_server.home, job.name) == [f"f{index}.txt {index} model" for index in (0, 1, 2, 4)]
    assert not (ray_server.home / "jobs" / job.name / "input").exists()
    with ray_server.client() as http:
        rerun = http.post(f"{WORKSPACE_ID}/jobs/{job.name}/rerunFailed", params=V).json()["name"]
        assert wait_for_job(http, rerun)["properties"]["status"] == "Completed"
    assert predictions(ray_server.home, rerun) == ["f3.txt 3 model"]


def test_deployments_without_a_compute_keep_the_local_workers(ml_client: MLClient, tmp_path: Path) -> None:
    deploy(ml_client, tmp_path / "project", "local-ep", None)  # type: ignore[arg-type]
    job = ml_client.batch_endpoints.invoke(
        endpoint_name="local-ep", input=Input(type="uri_folder", path=str(write_inputs(tmp_path / "in", 5)))
    )
    ml_client.jobs.stream(job.name)
    assert ml_client.jobs.get(job.name).status == "Completed"


def test_an_unreachable_cluster_fails_the_job_with_its_address(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = Server(home=tmp_path / "home", tls=True, args=["--ray-address", "127.0.0.1:9"]).start()
    try:
        ml_client = connect(server, monkeypatch)
        ml_client.compute.begin_create_or_update(AmlCompute(name="gone-cluster", max_instances=2)).result()
        deploy(ml_client, tmp_path / "project", "gone-ep", "azureml:gone-cluster")
        job = ml_client.batch_endpoints.invoke(
            endpoint_name="gone-ep", input=Input(type="uri_folder", path=str(write_inputs(tmp_path / "in", 3)))
        )
        with pytest.raises(JobException):
            ml_client.jobs.stream(job.name)
        with server.client() as client:
            failed = client.get(f"{WORKSPACE_ID}/jobs/{job.name}", params={"api-version": API}).json()["properties"]
    finally:
        server.stop()
    assert failed["status"] == "Failed"
    assert "The Ray cluster at '127.0.0.1:9' is unreachable" in failed["error"]["message"]
