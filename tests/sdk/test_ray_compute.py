"""A compute on a real Ray cluster (three nodes, shared with tests/runtime/test_ray_executor.py), through the
unmodified MLClient: compute create, a deployment with ``compute="azureml:batch-cluster"``, ``batch_endpoints.invoke``,
the job's progress and logs, and the compute's managed identity in the scoring script."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.ai.ml import Input, MLClient
from azure.ai.ml.entities import (
    AmlCompute,
    BatchEndpoint,
    CodeConfiguration,
    Model,
    ModelBatchDeployment,
    ModelBatchDeploymentSettings,
    ResourceConfiguration,
)
from azure.ai.ml.exceptions import JobException

from tests.api.jobs import predictions, write_inputs
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
    server = Server(home=tmp_path_factory.mktemp("home"), tls=True, args=["--ray-address", ray_cluster.address]).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def ml_client(ray_server: Server) -> Iterator[MLClient]:
    with pytest.MonkeyPatch.context() as patch:
        yield connect(ray_server, patch)


def deploy(ml_client: MLClient, folder: Path, endpoint: str, compute: str) -> None:
    (folder / "src").mkdir(parents=True)
    (folder / "src" / "score.py").write_text(SCORE)
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
        resources=ResourceConfiguration(instance_count=2),
        settings=ModelBatchDeploymentSettings(mini_batch_size=10, max_concurrency_per_instance=2),
    )
    ml_client.batch_deployments.begin_create_or_update(deployment).result()
    endpoint_resource = ml_client.batch_endpoints.get(endpoint)
    endpoint_resource.defaults.deployment_name = "main"
    ml_client.batch_endpoints.begin_create_or_update(endpoint_resource).result()


def test_a_job_on_a_ray_compute_runs_on_two_nodes(
    ml_client: MLClient, ray_server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ml_client.compute.begin_create_or_update(AmlCompute(name="batch-cluster", max_instances=2)).result()
    deploy(ml_client, tmp_path / "project", "ray-ep", "azureml:batch-cluster")
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
    logs = next((ray_server.home / "storage").glob(f"*/azureml-blobstore-*/azureml/{job.name}/score/logs"))
    assert len(ray_nodes(logs)) == 2


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
