"""The documented batch workflow with the unmodified MLClient: deploy local code, invoke on a local folder,
follow the job, list the endpoint's jobs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.ai.ml import Input, MLClient, Output
from azure.ai.ml.entities import (
    BatchRetrySettings,
    CodeConfiguration,
    Data,
    Environment,
    Model,
    ModelBatchDeploymentSettings,
)
from azure.ai.ml.exceptions import ValidationException

from tests.api.jobs import blob_container, predictions, write_inputs
from tests.sdk.mlclient import connect, create_cluster, deploy_model
from tests.server import Server

SCORE = """
import os
import time
from pathlib import Path

def init():
    global model_files
    model_files = sorted(os.listdir(os.environ["AZUREML_MODEL_DIR"]))
    # scripts find their model files by walking the folder, which does not enter linked folders
    walked = [name for _, _, names in os.walk(os.environ["AZUREML_MODEL_DIR"]) for name in names]
    assert walked == ["weights.bin"], walked
    assert [path.name for path in Path(os.environ["AZUREML_MODEL_DIR"]).rglob("*.bin")] == ["weights.bin"]

def run(mini_batch):
    time.sleep(0.3)
    print("scoring", len(mini_batch), "files")
    return [f"{os.path.basename(path)} {model_files[0]} {os.environ['GREETING']}" for path in mini_batch]
"""


@pytest.fixture(scope="module")
def ml_client(tls_server: Server) -> Iterator[MLClient]:
    with pytest.MonkeyPatch.context() as patch:
        yield connect(tls_server, patch)


@pytest.fixture(scope="module")
def deployed(ml_client: MLClient, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Endpoint ``sdk-jobs`` with deployment ``main`` as its default, registered from local folders."""
    tmp_path = tmp_path_factory.mktemp("sdk-deploy")
    code = tmp_path / "src"
    code.mkdir()
    (code / "score.py").write_text(SCORE)
    weights = tmp_path / "model"
    weights.mkdir()
    (weights / "weights.bin").write_bytes(b"w")
    model = ml_client.models.create_or_update(Model(name="sdk-job-model", path=str(weights)))
    environment = ml_client.environments.create_or_update(Environment(name="sdk-job-env", image="python:3.11"))
    create_cluster(ml_client)
    deploy_model(
        ml_client,
        "sdk-jobs",
        "main",
        model,
        environment=environment,
        code_configuration=CodeConfiguration(code=str(code), scoring_script="score.py"),
        settings=ModelBatchDeploymentSettings(
            mini_batch_size=3,
            max_concurrency_per_instance=2,
            output_action="append_row",
            output_file_name="predictions.csv",
            error_threshold=-1,
            retry_settings=BatchRetrySettings(max_retries=1, timeout=30),
            logging_level="info",
            environment_variables={"GREETING": "hello"},
        ),
    )
    endpoint = ml_client.batch_endpoints.get("sdk-jobs")
    endpoint.defaults.deployment_name = "main"
    ml_client.batch_endpoints.begin_create_or_update(endpoint).result()
    return "sdk-jobs"


def test_invoke_a_local_folder_and_follow_the_job(
    ml_client: MLClient, tls_server: Server, deployed: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = ml_client.batch_endpoints.invoke(
        endpoint_name=deployed, input=Input(type="uri_folder", path=str(write_inputs(tmp_path / "in", 24)))
    )
    assert first_status_after_start(ml_client, job.name) == "Running"
    ml_client.jobs.stream(job.name)
    streamed = capsys.readouterr().out
    assert f"Web View: {tls_server.base_url}/jobs/{job.name}" in streamed
    assert "Streaming user_logs/std_log.txt" in streamed
    assert "Progress: Mini-batches: 8 total" in streamed and "Job Completed: 24 of 24 items succeeded" in streamed
    assert "] scoring 3 files" in streamed and "[0/process000.stdout]" in streamed

    assert ml_client.jobs.get(job.name).status == "Completed"
    assert job.name in [listed.name for listed in ml_client.batch_endpoints.list_jobs("sdk-jobs")]
    expected = [f"f{index:05d}.txt model hello" for index in range(24)]
    assert predictions(tls_server.home, job.name) == expected

    ml_client.jobs.download(job.name, download_path=str(tmp_path / "download"), all=True)
    downloaded = tmp_path / "download" / "named-outputs" / "score"
    assert (downloaded / "predictions.csv").read_text().splitlines() == expected
    assert "Completed" in (downloaded / "logs" / "job_result.txt").read_text()
    for name in ("readme.txt", "sys/job_report/processed_mini-batches.csv", "user/stdout/0/process000.stdout.txt"):
        assert (downloaded / "logs" / name).is_file()


def test_the_scoring_child_job_as_the_notebooks_read_it(
    ml_client: MLClient, deployed: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = ml_client.batch_endpoints.invoke(
        endpoint_name=deployed, input=Input(type="uri_folder", path=str(write_inputs(tmp_path / "in", 3)))
    )
    ml_client.jobs.stream(job.name)
    [scoring_job] = ml_client.jobs.list(parent_job_name=job.name)
    assert scoring_job.name == f"{job.name}-batchscoring" and scoring_job.status == "Completed"
    assert scoring_job.properties["azureml.moduleName"] == "batchscoring"
    assert scoring_job.compute == "cpu-cluster"
    context = scoring_job.creation_context
    assert (context.last_modified_at - context.created_at).total_seconds() > 0

    got = ml_client.jobs.get(scoring_job.name)
    parent_output = ml_client.jobs.get(job.name).outputs["score"].path
    assert got.type == "command" and got.status == "Completed" and got.outputs["score"].path == parent_output
    ml_client.jobs.stream(scoring_job.name)
    assert "Job Completed: 3 of 3 items succeeded" in capsys.readouterr().out
    ml_client.jobs.download(name=scoring_job.name, download_path=str(tmp_path), output_name="score")
    assert (tmp_path / "named-outputs" / "score" / "predictions.csv").read_text().splitlines() == [
        f"f{index:05d}.txt model hello" for index in range(3)
    ]


@pytest.mark.parametrize("prefix", ["", "azureml:"])
def test_azure_ai_ml_itself_refuses_a_datastore_id_with_paths_as_an_input(
    ml_client: MLClient, deployed: str, prefix: str
) -> None:
    """What docs/azure-sdk.md says: the SDK checks a ``/subscriptions/`` input before sending anything (the REST
    form works: tests/jobs/test_datastore_paths.py)."""
    path = f"{prefix}{ml_client.datastores.get_default().id}/paths/x/"
    with pytest.raises(ValidationException):
        ml_client.batch_endpoints.invoke(endpoint_name=deployed, input=Input(type="uri_folder", path=path))


def test_an_output_at_a_datastore_id_with_paths(ml_client: MLClient, deployed: str, tmp_path: Path) -> None:
    """How the SDK docs write an output (inputs of that form the SDK itself refuses: docs/azure-sdk.md)."""
    datastore = ml_client.datastores.get_default()
    job = ml_client.batch_endpoints.invoke(
        endpoint_name=deployed,
        input=Input(type="uri_folder", path=str(write_inputs(tmp_path / "in", 2))),
        outputs={"score": Output(type="uri_folder", path=f"{datastore.id}/paths/batch-jobs/{tmp_path.name}")},
    )
    ml_client.jobs.stream(job.name)
    [scoring_job] = ml_client.jobs.list(parent_job_name=job.name)
    ml_client.jobs.download(name=scoring_job.name, download_path=str(tmp_path / "out"), output_name="score")
    assert (tmp_path / "out" / "named-outputs" / "score" / "predictions.csv").read_text().splitlines() == [
        f"f{index:05d}.txt model hello" for index in range(2)
    ]


def first_status_after_start(ml_client: MLClient, name: str) -> str:
    status = "NotStarted"
    while status in ("NotStarted", "Queued"):
        status = ml_client.jobs.get(name).status
    return status


def test_invoke_with_datastore_input_overrides_and_a_chosen_output(
    ml_client: MLClient, tls_server: Server, deployed: str, tmp_path: Path
) -> None:
    """Invoke variants of the tutorial: a datastore URI input, params_override, outputs= to a datastore path."""
    data = ml_client.data.create_or_update(
        Data(name="sdk-inputs", path=str(write_inputs(tmp_path / "in", 6)), type="uri_folder")
    )
    job = ml_client.batch_endpoints.invoke(
        endpoint_name=deployed,
        deployment_name="main",
        inputs={"heart": Input(type="uri_folder", path=data.path)},
        params_override=[{"mini_batch_size": "4"}, {"compute.instance_count": "2"}],
        outputs={"score": Output(type="uri_folder", path="azureml://datastores/workspaceblobstore/paths/chosen/out/")},
    )
    ml_client.jobs.stream(job.name)
    finished = ml_client.jobs.get(job.name)
    with tls_server.client() as client:
        blobstore = blob_container(client, tls_server.home)
    assert finished.status == "Completed"
    assert (blobstore / "chosen" / "out" / "predictions.csv").read_text().splitlines() == [
        f"f{index:05d}.txt model hello" for index in range(6)
    ]


def test_deployment_and_endpoint_are_deleted_last(ml_client: MLClient, deployed: str) -> None:
    ml_client.batch_deployments.begin_delete(name="main", endpoint_name=deployed).result()
    ml_client.batch_endpoints.begin_delete(name=deployed).result()
    assert deployed not in [endpoint.name for endpoint in ml_client.batch_endpoints.list()]
