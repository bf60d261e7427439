"""Pipeline component batch deployments through the unmodified MLClient: register command components and a
pipeline built with the DSL, deploy it, invoke it with data and literal inputs, read its steps and outputs."""

# No `from __future__ import annotations`: the @pipeline DSL reads real annotation objects (Input(...)).

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.ai.ml import Input, MLClient, load_component
from azure.ai.ml.dsl import pipeline
from azure.ai.ml.entities import BatchEndpoint, Data, Environment, Model, PipelineComponentBatchDeployment
from azure.core.exceptions import HttpResponseError

from tests.sdk.mlclient import connect
from tests.server import WORKSPACE_ID, Server

PREPARE_PY = """
import argparse, os, shutil, time
p = argparse.ArgumentParser()
p.add_argument("--data"); p.add_argument("--n", type=int); p.add_argument("--prefix"); p.add_argument("--out")
a = p.parse_args()
time.sleep(1)
for f in sorted(os.listdir(a.data))[: a.n]:
    shutil.copy(os.path.join(a.data, f), os.path.join(a.out, a.prefix + f))
    print("copied", f)
"""
SCORE_PY = """
import argparse, base64, json, os
from azure.identity import DefaultAzureCredential
p = argparse.ArgumentParser()
p.add_argument("--prepared"); p.add_argument("--scores")
a = p.parse_args()
token = DefaultAzureCredential().get_token("https://ml.azure.com/.default").token
payload = token.split(".")[1]
claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
print(os.environ["SCORE_GREETING"], "- a token for", claims["aud"], "as", claims["xms_mirid"])
with open(os.path.join(a.scores, "scores.csv"), "w") as out:
    for f in sorted(os.listdir(a.prepared)):
        out.write(f + "," + str(len(open(os.path.join(a.prepared, f)).read())) + "\\n")
"""
TERMINAL = ("Completed", "Failed", "Canceled")


def command_component(folder: Path, name: str, command: str, inputs: str = "{}", outputs: str = "{}") -> Any:
    """A command component YAML as users write them (code folder ./src, a registered environment)."""
    source = folder / f"{name}.yml"
    source.write_text(
        "$schema: https://azuremlschemas.azureedge.net/latest/commandComponent.schema.json\n"
        f"name: {name}\nversion: '1'\ntype: command\ninputs: {inputs}\noutputs: {outputs}\n"
        f"code: ./src\nenvironment: azureml:pipe-env:1\ncommand: {json.dumps(command)}\n"
    )
    return load_component(source=source)


@pytest.fixture(scope="module")
def ml_client(tls_server: Server) -> Iterator[MLClient]:
    with pytest.MonkeyPatch.context() as patch:
        client = connect(tls_server, patch)
        client.environments.create_or_update(Environment(name="pipe-env", version="1", image="python:3.11"))
        yield client


@pytest.fixture(scope="module")
def components(ml_client: MLClient, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("components")
    (folder / "src").mkdir()
    (folder / "src" / "prepare.py").write_text(PREPARE_PY)
    (folder / "src" / "score.py").write_text(SCORE_PY)
    specs = {
        "prepare_data": (
            "python prepare.py --data ${{inputs.data}} --n ${{inputs.n}} --prefix ${{inputs.prefix}}"
            " --out ${{outputs.prepared}}",
            "{data: {type: uri_folder}, n: {type: integer, default: 3}, prefix: {type: string, default: p_}}",
            "{prepared: {type: uri_folder}}",
        ),
        "score_data": (
            "python score.py --prepared ${{inputs.prepared}} --scores ${{outputs.scores}}",
            "{prepared: {type: uri_folder}}",
            "{scores: {type: uri_folder}}",
        ),
        "fail_step": ("python -c \"import sys; sys.exit('boom: the model file is missing')\"", "{}", "{}"),
        "hello": (
            "echo hello from ${{outputs.greeting}} && echo hello > ${{outputs.greeting}}/hello.txt",
            "{}",
            "{greeting: {type: uri_folder}}",
        ),
        "optional_flag": (
            "echo start $[[--opt ${{inputs.x}}]] end > ${{outputs.args}}/args.txt",
            "{x: {type: string, optional: true}}",
            "{args: {type: uri_folder}}",
        ),
        "read_assets": (
            "cat ${{inputs.model}}/weights.txt ${{inputs.data}}/rows.txt > ${{outputs.read}}/read.txt",
            "{model: {type: custom_model}, data: {type: uri_folder}}",
            "{read: {type: uri_folder}}",
        ),
        "read_mlflow": (
            "cp ${{inputs.model}}/MLmodel ${{outputs.read}}/",
            "{model: {type: mlflow_model}}",
            "{read: {type: uri_folder}}",
        ),
    }
    return {
        name: ml_client.components.create_or_update(command_component(folder, name, *spec))
        for name, spec in specs.items()
    }


def deploy(ml_client: MLClient, endpoint: str, component: Any, **settings: Any) -> PipelineComponentBatchDeployment:
    """The endpoint's default deployment, which invokes that name no deployment run."""
    ml_client.batch_endpoints.begin_create_or_update(BatchEndpoint(name=endpoint)).result()
    deployment = ml_client.batch_deployments.begin_create_or_update(
        PipelineComponentBatchDeployment(
            name="pipe",
            endpoint_name=endpoint,
            component=component,
            settings={"default_compute": "cpu-cluster", **settings},
        )
    ).result()
    created = ml_client.batch_endpoints.get(endpoint)
    created.defaults.deployment_name = "pipe"
    ml_client.batch_endpoints.begin_create_or_update(created).result()
    return deployment


def wait(ml_client: MLClient, name: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while (status := ml_client.jobs.get(name).status) not in TERMINAL:
        assert time.monotonic() < deadline, f"job {name} is still {status}"
        time.sleep(0.3)
    return status


def steps_of(ml_client: MLClient, job_name: str) -> dict[str, str]:
    return {child.display_name: child.status for child in ml_client.jobs.list(parent_job_name=job_name)}


def folder_of(folder: Path, name: str, text: str) -> Path:
    """``folder``, made, holding one file."""
    folder.mkdir()
    (folder / name).write_text(text)
    return folder


def test_a_two_step_pipeline_runs_and_its_named_output_downloads(
    ml_client: MLClient,
    tls_server: Server,
    components: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    prepare, score = components["prepare_data"], components["score_data"]
    assert prepare.id == f"{WORKSPACE_ID}/components/prepare_data/versions/1"
    data = tmp_path / "data"
    data.mkdir()
    for index in range(5):
        (data / f"f{index}.txt").write_text("x" * (index + 1))

    @pipeline(name="prep_score", description="prepare then score")
    def prep_score(data: Input(type="uri_folder"), n: int = 3, prefix: str = "p_"):  # type: ignore[valid-type]
        prepared = prepare(data=data, n=n, prefix=prefix)
        scored = score(prepared=prepared.outputs.prepared)
        scored.environment_variables = {"SCORE_GREETING": "hello from the node"}
        return {"scores": scored.outputs.scores}

    component = ml_client.components.create_or_update(prep_score, version="1")
    assert component.type == "pipeline" and set(component.jobs) == {"prepared", "scored"}
    assert ml_client.components.get("prep_score").version == "1"

    deployment = deploy(ml_client, "pipe-ep", component, continue_on_step_failure=False)
    assert isinstance(deployment, PipelineComponentBatchDeployment)
    assert deployment.component == component.id
    assert (
        ml_client.batch_deployments.get(name="pipe", endpoint_name="pipe-ep").properties["default_compute"]
        == "cpu-cluster"
    )

    job = ml_client.batch_endpoints.invoke(
        endpoint_name="pipe-ep",
        inputs={
            "data": Input(type="uri_folder", path=str(data)),
            "n": Input(type="integer", default=2),
            "prefix": Input(type="string", default="zz_"),
        },
    )
    ml_client.jobs.stream(job.name)
    streamed = capsys.readouterr().out
    assert "Streaming logs/azureml/executionlogs.txt" in streamed
    assert f"Step {job.name}-prepared: Running" in streamed and f"Step {job.name}-scored: Completed" in streamed
    assert "[prepared] copied f0.txt" in streamed and "[prepared] copied f1.txt" in streamed
    # the node's variables, and the managed identity of the pipeline's default compute, over the server's TLS
    identity = f"a token for https://ml.azure.com as {WORKSPACE_ID}/computes/cpu-cluster"
    assert f"[scored] hello from the node - {identity}" in streamed
    assert wait(ml_client, job.name) == "Completed"
    assert type(ml_client.jobs.get(job.name)).__name__ == "PipelineJob"
    assert steps_of(ml_client, job.name) == {"prepared": "Completed", "scored": "Completed"}
    children = list(ml_client.jobs.list(parent_job_name=job.name))
    assert {step.properties["azureml.moduleName"]: step.status for step in children} == {
        "prepare_data": "Completed",  # the notebooks find steps by their component's name
        "score_data": "Completed",
    }
    assert all(step.creation_context.last_modified_at > step.creation_context.created_at for step in children)
    child = children[0]
    assert ml_client.jobs.get(child.name).status == "Completed"
    with tls_server.client() as client:
        step_logs = client.get(
            f"{tls_server.base_url}/history/v1.0{WORKSPACE_ID}/runs/{job.name}-prepared/details"
        ).json()
        assert "copied f1.txt" in client.get(step_logs["logFiles"]["user_logs/std_log.txt"]).text

    ml_client.jobs.download(job.name, output_name="scores", download_path=str(tmp_path / "dl"))
    lines = (tmp_path / "dl" / "named-outputs" / "scores" / "scores.csv").read_text().splitlines()
    assert lines == ["zz_f0.txt,1", "zz_f1.txt,2"]


@pytest.mark.parametrize("continue_on_step_failure", [False, True])
def test_a_failed_step_fails_the_job_naming_it_and_the_independent_branch_follows_the_setting(
    ml_client: MLClient, components: dict[str, Any], tls_server: Server, continue_on_step_failure: bool
) -> None:
    fail_step, hello = components["fail_step"], components["hello"]

    @pipeline(name="branches")
    def branches():
        fail_step()
        greeted = hello()
        return {"greeting": greeted.outputs.greeting}

    component = ml_client.components.create_or_update(branches)
    endpoint = f"branches-{str(continue_on_step_failure).lower()}"
    deploy(ml_client, endpoint, component, continue_on_step_failure=continue_on_step_failure)
    job = ml_client.batch_endpoints.invoke(endpoint_name=endpoint)
    assert wait(ml_client, job.name) == "Failed"
    with tls_server.client() as client:
        failed = client.get(f"{WORKSPACE_ID}/jobs/{job.name}", params={"api-version": "2025-12-01"}).json()
    message = failed["properties"]["error"]["message"]
    assert "'fail_step'" in message and "boom: the model file is missing" in message
    steps = steps_of(ml_client, job.name)
    assert steps["fail_step"] == "Failed"
    if continue_on_step_failure:
        assert steps["greeted"] == "Completed"


def test_a_pipeline_without_inputs_runs_without_inputs(ml_client: MLClient, components: dict[str, Any]) -> None:
    hello = components["hello"]

    @pipeline(name="hello_world")
    def hello_world():
        return {"greeting": hello().outputs.greeting}

    deploy(ml_client, "hello-ep", ml_client.components.create_or_update(hello_world))
    job = ml_client.batch_endpoints.invoke(endpoint_name="hello-ep")
    assert wait(ml_client, job.name) == "Completed"
    assert steps_of(ml_client, job.name) == {"hello": "Completed"}


def test_unknown_and_missing_inputs_are_refused_naming_them(ml_client: MLClient, components: dict[str, Any]) -> None:
    prepare = components["prepare_data"]

    @pipeline(name="prepare_only")
    def prepare_only(data: Input(type="uri_folder")):  # type: ignore[valid-type]
        return {"prepared": prepare(data=data).outputs.prepared}

    deploy(ml_client, "prepare-ep", ml_client.components.create_or_update(prepare_only))
    with pytest.raises(HttpResponseError, match="Missing required input.*data"):
        ml_client.batch_endpoints.invoke(endpoint_name="prepare-ep", inputs={})
    with pytest.raises(HttpResponseError, match="Unknown input.*colour"):
        ml_client.batch_endpoints.invoke(
            endpoint_name="prepare-ep",
            inputs={"data": Input(path="azureml://datastores/workspaceblobstore/paths/x/"), "colour": "red"},
        )


def downloaded(ml_client: MLClient, job_name: str, output: str, file: str, folder: Path) -> str:
    ml_client.jobs.download(job_name, output_name=output, download_path=str(folder))
    return (folder / "named-outputs" / output / file).read_text()


def test_an_optional_fragment_is_kept_when_its_input_is_bound_and_dropped_when_not(
    ml_client: MLClient, components: dict[str, Any], tmp_path: Path
) -> None:
    optional_flag = components["optional_flag"]

    @pipeline(name="optional_args")
    def optional_args(x: Input(type="string", optional=True)):  # type: ignore[valid-type]
        return {"args": optional_flag(x=x).outputs.args}

    deploy(ml_client, "optional-ep", ml_client.components.create_or_update(optional_args))
    bound = ml_client.batch_endpoints.invoke(
        endpoint_name="optional-ep", inputs={"x": Input(type="string", default="it is")}
    )
    unbound = ml_client.batch_endpoints.invoke(endpoint_name="optional-ep")
    assert wait(ml_client, bound.name) == "Completed"
    assert wait(ml_client, unbound.name) == "Completed"
    assert downloaded(ml_client, bound.name, "args", "args.txt", tmp_path / "bound") == "start --opt it is end\n"
    assert downloaded(ml_client, unbound.name, "args", "args.txt", tmp_path / "unbound") == "start end\n"


def test_a_step_reads_a_registered_model_and_a_data_asset_from_their_folders(
    ml_client: MLClient, components: dict[str, Any], tmp_path: Path
) -> None:
    weights = folder_of(tmp_path / "model", "weights.txt", "weights 42\n")
    rows = folder_of(tmp_path / "rows", "rows.txt", "row 1\n")
    model = ml_client.models.create_or_update(Model(name="step-model", version="1", path=str(weights)))
    ml_client.data.create_or_update(Data(name="step-rows", version="1", path=str(rows), type="uri_folder"))
    read_assets = components["read_assets"]

    @pipeline(name="read_registered")
    def read_registered():
        step = read_assets(
            model=Input(type="custom_model", path=model.id), data=Input(type="uri_folder", path="azureml:step-rows:1")
        )
        return {"read": step.outputs.read}

    component = ml_client.components.create_or_update(read_registered)
    assert component.jobs["step"].inputs["model"].path == model.id
    deploy(ml_client, "assets-ep", component)
    job = ml_client.batch_endpoints.invoke(endpoint_name="assets-ep")
    assert wait(ml_client, job.name) == "Completed"
    assert downloaded(ml_client, job.name, "read", "read.txt", tmp_path / "dl") == "weights 42\nrow 1\n"


def test_a_model_given_at_invoke_reaches_the_step_as_its_folder(
    ml_client: MLClient, components: dict[str, Any], tmp_path: Path
) -> None:
    """azure-ai-ml's invoke takes a model input by its storage path (it turns asset references into data ids)."""
    mlflow_folder = folder_of(tmp_path / "mlflow", "MLmodel", "flavors: {}\n")
    model = ml_client.models.create_or_update(
        Model(name="invoke-model", version="1", path=str(mlflow_folder), type="mlflow_model")
    )
    read_mlflow = components["read_mlflow"]

    @pipeline(name="read_given_model")
    def read_given_model(model: Input(type="mlflow_model")):  # type: ignore[valid-type]
        return {"read": read_mlflow(model=model).outputs.read}

    deploy(ml_client, "model-input-ep", ml_client.components.create_or_update(read_given_model))
    job = ml_client.batch_endpoints.invoke(
        endpoint_name="model-input-ep", inputs={"model": Input(type="mlflow_model", path=model.path)}
    )
    assert wait(ml_client, job.name) == "Completed"
    assert downloaded(ml_client, job.name, "read", "MLmodel", tmp_path / "dl") == "flavors: {}\n"
