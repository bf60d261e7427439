"""A deployment whose init() fails or hangs, followed with the unmodified MLClient: the job ends Failed whatever
its error threshold, and `jobs.stream` raises with the init traceback (Decision 1)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.ai.ml import Input, MLClient
from azure.ai.ml.entities import (
    BatchEndpoint,
    BatchRetrySettings,
    CodeConfiguration,
    ModelBatchDeployment,
    ModelBatchDeploymentSettings,
)
from azure.ai.ml.exceptions import JobException

from tests.api.jobs import write_inputs
from tests.sdk.mlclient import connect, create_cluster
from tests.server import Server

ENDPOINT = "sdk-init"
RAISES = """
def init():
    raise RuntimeError("the model file is missing")

def run(mini_batch):
    return mini_batch
"""
HANGS = """
import time

def init():
    time.sleep(600)

def run(mini_batch):
    return mini_batch
"""


@pytest.fixture(scope="module")
def ml_client(tls_server: Server) -> Iterator[MLClient]:
    with pytest.MonkeyPatch.context() as patch:
        yield connect(tls_server, patch)


@pytest.fixture(scope="module")
def endpoint(ml_client: MLClient) -> Iterator[str]:
    ml_client.batch_endpoints.begin_create_or_update(BatchEndpoint(name=ENDPOINT)).result()
    create_cluster(ml_client)
    yield ENDPOINT
    ml_client.batch_endpoints.begin_delete(name=ENDPOINT).result()


def deploy(ml_client: MLClient, folder: Path, name: str, script: str, **settings: object) -> None:
    folder.mkdir()
    (folder / "score.py").write_text(script)
    deployment = ModelBatchDeployment(
        name=name,
        endpoint_name=ENDPOINT,
        code_configuration=CodeConfiguration(code=str(folder), scoring_script="score.py"),
        compute="cpu-cluster",
        settings=ModelBatchDeploymentSettings(mini_batch_size=2, **settings),  # type: ignore[arg-type]
    )
    ml_client.batch_deployments.begin_create_or_update(deployment).result()


def invoke_and_stream(ml_client: MLClient, name: str, inputs: Path) -> tuple[str, float]:
    """Invoke the deployment and follow the job until `jobs.stream` raises; returns its message and the time."""
    started = time.monotonic()
    job = ml_client.batch_endpoints.invoke(
        endpoint_name=ENDPOINT, deployment_name=name, input=Input(type="uri_folder", path=str(inputs))
    )
    with pytest.raises(JobException) as raised:
        ml_client.jobs.stream(job.name)
    assert ml_client.jobs.get(job.name).status == "Failed"
    return str(raised.value), time.monotonic() - started


def test_a_raising_init_fails_the_job_within_10_seconds_and_stream_raises_its_traceback(
    ml_client: MLClient, endpoint: str, tmp_path: Path
) -> None:
    deploy(ml_client, tmp_path / "code", "raises", RAISES)  # default settings: error_threshold -1, 3 retries

    message, seconds = invoke_and_stream(ml_client, "raises", write_inputs(tmp_path / "in", 6))

    assert seconds < 10
    assert "The init() of the scoring script failed 4 times in a row" in message
    assert "RuntimeError: the model file is missing" in message
    assert "Traceback (most recent call last)" in message and "in init" in message


def test_a_hanging_init_fails_the_job_after_its_time_limit(ml_client: MLClient, endpoint: str, tmp_path: Path) -> None:
    deploy(
        ml_client,
        tmp_path / "code",
        "hangs",
        HANGS,
        retry_settings=BatchRetrySettings(max_retries=0),
        environment_variables={"BATCHPOINT_INIT_TIMEOUT": "2"},
    )

    message, seconds = invoke_and_stream(ml_client, "hangs", write_inputs(tmp_path / "in", 2))

    assert 2 <= seconds < 60
    assert "init() did not return within 2 seconds" in message
    assert "in init" in message
