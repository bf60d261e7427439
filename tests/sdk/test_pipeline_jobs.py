"""Standalone pipeline jobs through the unmodified MLClient (``jobs.create_or_update``), read back with
``jobs.get``/``stream``/``list``/``download``, and batch deployments made from such a job (``job_definition``)."""

# No `from __future__ import annotations`: the @pipeline DSL reads real annotation objects (Input(...)).

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.ai.ml import Input, MLClient
from azure.ai.ml.dsl import pipeline
from azure.ai.ml.entities import BatchEndpoint, Environment, PipelineComponentBatchDeployment, PipelineJob

from tests.sdk.mlclient import connect
from tests.sdk.test_pipeline_deployments import command_component, steps_of, wait
from tests.server import WORKSPACE_ID, Server

COUNT_PY = """
import os, sys
text, counts = sys.argv[1:]
lines = [f"{name} {len(open(os.path.join(text, name)).read().split())}" for name in sorted(os.listdir(text))]
open(os.path.join(counts, "counts.txt"), "w").write("".join(line + "\\n" for line in lines))
"""
REPEAT_PY = """
import argparse, os
p = argparse.ArgumentParser()
p.add_argument("--counts"); p.add_argument("--times", type=int)
p.add_argument("--label", default="plain"); p.add_argument("--report")
a = p.parse_args()
lines = open(os.path.join(a.counts, "counts.txt")).read().splitlines()
with open(os.path.join(a.report, "report.txt"), "w") as out:
    out.write("\\n".join([a.label] + lines * a.times) + "\\n")
"""


@pytest.fixture(scope="module")
def ml_client(tls_server: Server) -> Iterator[MLClient]:
    """Pipeline jobs make azure-ai-ml ask for a token of the workspace's Azure ML audience (the server's URL)."""
    with pytest.MonkeyPatch.context() as patch:
        client = connect(tls_server, patch, token=tls_server.token())
        client.environments.create_or_update(Environment(name="pipe-env", version="1", image="python:3.11"))
        yield client


@pytest.fixture(scope="module")
def count_words(ml_client: MLClient, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A two-step pipeline: count the words of each file, then repeat the counts `times` times under a label."""
    folder = tmp_path_factory.mktemp("words")
    (folder / "src").mkdir()
    (folder / "src" / "count.py").write_text(COUNT_PY)
    (folder / "src" / "repeat.py").write_text(REPEAT_PY)
    count = ml_client.components.create_or_update(
        command_component(
            folder,
            "count",
            "python count.py ${{inputs.text}} ${{outputs.counts}}",
            "{text: {type: uri_folder}}",
            "{counts: {type: uri_folder}}",
        )
    )
    repeat = ml_client.components.create_or_update(
        command_component(
            folder,
            "repeat",
            "python repeat.py --counts ${{inputs.counts}} --times ${{inputs.times}}"
            " $[[--label ${{inputs.label}}]] --report ${{outputs.report}}",
            "{counts: {type: uri_folder}, times: {type: integer}, label: {type: string, optional: true}}",
            "{report: {type: uri_folder}}",
        )
    )

    @pipeline(name="count_words", default_compute="cpu-cluster")
    def count_words(text: Input(type="uri_folder"), times: int = 1, label: Input(type="string", optional=True) = None):  # type: ignore[valid-type]
        counted = count(text=text)
        repeated = repeat(counts=counted.outputs.counts, times=times, label=label)
        return {"report": repeated.outputs.report}

    return count_words


@pytest.fixture
def texts(tmp_path: Path) -> Path:
    folder = tmp_path / "texts"
    folder.mkdir()
    (folder / "a.txt").write_text("one two three")
    (folder / "b.txt").write_text("four five")
    return folder


def report(ml_client: MLClient, job_name: str, folder: Path) -> list[str]:
    ml_client.jobs.download(job_name, output_name="report", download_path=str(folder))
    return (folder / "named-outputs" / "report" / "report.txt").read_text().splitlines()


def test_a_pipeline_job_runs_its_steps_as_child_jobs(
    ml_client: MLClient, count_words: Any, texts: Path, tmp_path: Path
) -> None:
    submitted = ml_client.jobs.create_or_update(
        count_words(text=Input(type="uri_folder", path=str(texts)), times=2, label="twice"), experiment_name="words"
    )
    assert isinstance(submitted, PipelineJob)
    assert submitted.id == f"{WORKSPACE_ID}/jobs/{submitted.name}"
    ml_client.jobs.stream(submitted.name)
    job = ml_client.jobs.get(submitted.name)
    assert (job.status, job.experiment_name, job.display_name) == ("Completed", "words", "count_words")
    assert steps_of(ml_client, submitted.name) == {"counted": "Completed", "repeated": "Completed"}
    assert report(ml_client, submitted.name, tmp_path / "dl") == ["twice", "a.txt 3", "b.txt 2", "a.txt 3", "b.txt 2"]


def test_a_deployment_made_from_a_pipeline_job_runs_the_jobs_graph(
    ml_client: MLClient, count_words: Any, texts: Path, tmp_path: Path
) -> None:
    source = ml_client.jobs.create_or_update(count_words(text=Input(type="uri_folder", path=str(texts))))
    assert wait(ml_client, source.name) == "Completed"
    ml_client.batch_endpoints.begin_create_or_update(BatchEndpoint(name="words-ep")).result()
    settings = {"default_compute": "cpu-cluster", "continue_on_step_failure": False}
    from_job = ml_client.batch_deployments.begin_create_or_update(
        PipelineComponentBatchDeployment(
            name="from-job", endpoint_name="words-ep", job_definition=source, settings=settings
        )
    ).result()
    assert from_job.component == f"{WORKSPACE_ID}/components/azureml_anonymous/versions/{source.name}"
    endpoint = ml_client.batch_endpoints.get("words-ep")
    endpoint.defaults.deployment_name = "from-job"
    ml_client.batch_endpoints.begin_create_or_update(endpoint).result()

    as_the_job = ml_client.batch_endpoints.invoke(endpoint_name="words-ep")
    assert wait(ml_client, as_the_job.name) == "Completed"
    assert report(ml_client, as_the_job.name, tmp_path / "same") == ["plain", "a.txt 3", "b.txt 2"]
    labelled = ml_client.batch_endpoints.invoke(
        endpoint_name="words-ep", inputs={"label": Input(type="string", default="new")}
    )
    assert wait(ml_client, labelled.name) == "Completed"
    assert report(ml_client, labelled.name, tmp_path / "labelled") == ["new", "a.txt 3", "b.txt 2"]


def test_a_deployment_names_its_job_as_the_cli_does(
    ml_client: MLClient, count_words: Any, texts: Path, tmp_path: Path
) -> None:
    """`job_definition: azureml:<job name>` in YAML (or `--set job_definition=azureml:$JOB_NAME`)."""
    source = ml_client.jobs.create_or_update(count_words(text=Input(type="uri_folder", path=str(texts)), times=3))
    ml_client.batch_endpoints.begin_create_or_update(BatchEndpoint(name="words-cli-ep")).result()
    deployment = ml_client.batch_deployments.begin_create_or_update(
        PipelineComponentBatchDeployment(
            name="from-name", endpoint_name="words-cli-ep", job_definition=f"azureml:{source.name}"
        )
    ).result()
    assert deployment.component.endswith(f"/azureml_anonymous/versions/{source.name}")
    again = ml_client.batch_deployments.begin_create_or_update(
        PipelineComponentBatchDeployment(name="from-object", endpoint_name="words-cli-ep", job_definition=source)
    ).result()
    assert again.component == deployment.component, "the same job makes the same component, however it is named"
    endpoint = ml_client.batch_endpoints.get("words-cli-ep")
    endpoint.defaults.deployment_name = "from-name"
    ml_client.batch_endpoints.begin_create_or_update(endpoint).result()
    job = ml_client.batch_endpoints.invoke(endpoint_name="words-cli-ep")
    assert wait(ml_client, job.name) == "Completed"
    assert report(ml_client, job.name, tmp_path / "dl") == ["plain"] + ["a.txt 3", "b.txt 2"] * 3
