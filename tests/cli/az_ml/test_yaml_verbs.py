"""The az-ml-style verbs (``batchpoint batch-endpoint|batch-deployment|model|environment ...``) on az ml YAML
files, run as a user runs them against a real server over HTTPS."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from batchpoint.cli import app
from tests.api.arm import create_compute
from tests.api.jobs import predictions, write_inputs
from tests.server import COLD_BATCHPOINT, Server

SCORE = """
import os

def init():
    global model_files
    model_files = sorted(os.listdir(os.environ["AZUREML_MODEL_DIR"]))

def run(mini_batch):
    return [f"{os.path.basename(path)} {model_files[0]} {os.environ['GREETING']}" for path in mini_batch]
"""

MODEL = """\
$schema: https://azuremlschemas.azureedge.net/latest/model.schema.json
name: yaml-model
path: ./model
description: Weights from a local folder.
"""

ENVIRONMENT = """\
$schema: https://azuremlschemas.azureedge.net/latest/environment.schema.json
name: yaml-env
image: python:3.11
"""

ENDPOINT = """\
$schema: https://azuremlschemas.azureedge.net/latest/batchEndpoint.schema.json
name: yaml-ep
description: Scores text files.
auth_mode: aad_token
"""

DEPLOYMENT = """\
$schema: https://azuremlschemas.azureedge.net/latest/modelBatchDeployment.schema.json
name: main
endpoint_name: yaml-ep
type: model
model: azureml:yaml-model@latest
code_configuration:
  code: ./src
  scoring_script: score.py
environment: azureml:yaml-env@latest
compute: azureml:cpu-cluster
resources:
  instance_count: 1
settings:
  mini_batch_size: 10
  max_concurrency_per_instance: 2
  output_action: append_row
  output_file_name: predictions.csv
  retry_settings:
    max_retries: 1
    timeout: 30
  error_threshold: -1
  logging_level: info
  environment_variables:
    GREETING: hello
"""


@pytest.fixture(scope="module")
def yaml_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """No --allow-local-path: the SDK uploads every local code, model and input folder through the blob API.
    The deployment's compute ``cpu-cluster`` exists, as it must."""
    server = Server(home=tmp_path_factory.mktemp("home"), tls=True).start()
    with server.client() as client:
        create_compute(client, "cpu-cluster")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder laid out like the azureml-examples batch samples: YAML files next to ./src and ./model."""
    folder = tmp_path_factory.mktemp("project")
    (folder / "src").mkdir()
    (folder / "src" / "score.py").write_text(SCORE)
    (folder / "model").mkdir()
    (folder / "model" / "weights.bin").write_bytes(b"w")
    for name, text in {
        "model": MODEL,
        "environment": ENVIRONMENT,
        "endpoint": ENDPOINT,
        "deployment": DEPLOYMENT,
    }.items():
        (folder / f"{name}.yml").write_text(text)
    return folder


def batchpoint(prefix: list[str], server: Server, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [*prefix, *args, *server.cli_options()]
    env = {**os.environ, "AZUREML_CURRENT_CLOUD": "batchpoint-elsewhere"}
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=cwd, env=env)


def succeeded(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_az_ml_flow_from_yaml_files(yaml_server: Server, project: Path, warm_batchpoint: list[str]) -> None:
    run = lambda *args: batchpoint(warm_batchpoint, yaml_server, project, *args)  # noqa: E731
    model = json.loads(succeeded(run("model", "create", "-f", "model.yml")))
    succeeded(run("environment", "create", "-f", "environment.yml"))
    succeeded(run("batch-endpoint", "create", "-f", "endpoint.yml"))
    deployment = json.loads(
        succeeded(
            run(
                "batch-deployment",
                "create",
                "-f",
                "deployment.yml",
                "--set-default",
                "--set",
                "settings.mini_batch_size=3",
            )
        )
    )
    inputs = write_inputs(project / "inputs", 7)

    invoked = json.loads(
        succeeded(run("batch-endpoint", "invoke", "-f", "endpoint.yml", "--input", str(inputs), "--wait"))
    )
    name = invoked["name"]
    jobs = succeeded(run("batch-endpoint", "list-jobs", "--name", "yaml-ep"))
    endpoint = json.loads(succeeded(run("batch-endpoint", "show", "-f", "endpoint.yml")))

    assert model["version"] == "1" and "/models/yaml-model/versions/1" in deployment["model"]
    assert deployment["mini_batch_size"] == 3 and deployment["environment_variables"] == {"GREETING": "hello"}
    assert invoked["status"] == "Completed" and name in jobs and endpoint["defaults"]["deployment_name"] == "main"
    assert predictions(yaml_server.home, name) == [f"f{index:05d}.txt model hello" for index in range(7)]

    succeeded(run("batch-deployment", "delete", "-f", "deployment.yml", "--yes"))
    succeeded(run("batch-endpoint", "delete", "--name", "yaml-ep", "--yes"))
    # cold: azure-ai-ml imported in a shell where its import-time AZUREML_CURRENT_CLOUD names an unknown cloud
    gone = batchpoint(COLD_BATCHPOINT, yaml_server, project, "batch-endpoint", "show", "--name", "yaml-ep")
    assert gone.returncode == 2 and "yaml-ep" in gone.stderr and not gone.stdout


def test_validation_errors_point_at_the_yaml_line_or_the_set_option(
    yaml_server: Server, project: Path, warm_batchpoint: list[str]
) -> None:
    text = DEPLOYMENT.replace("mini_batch_size: 10", "mini_batch_size: ten").replace(
        "  logging_level: info\n", "  logging_level: info\n  colour: blue\n"
    )
    broken = project / "broken.yml"
    broken.write_text(text)
    line_of = lambda content: text.splitlines().index(content) + 1  # noqa: E731

    result = batchpoint(
        warm_batchpoint,
        yaml_server,
        project,
        "batch-deployment",
        "create",
        "-f",
        str(broken),
        "--set",
        "settings.max_concurrency_per_instance=many",
    )

    assert result.returncode == 2
    assert (
        f"{broken}:{line_of('  mini_batch_size: ten')}: settings.mini_batch_size: Not a valid integer." in result.stderr
    )
    assert f"{broken}:{line_of('  colour: blue')}: settings.colour: Unknown field." in result.stderr
    assert (
        "--set settings.max_concurrency_per_instance=many: settings.max_concurrency_per_instance: Not a valid integer."
    ) in result.stderr


def test_without_azure_ai_ml_the_yaml_verbs_say_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *args: None)
    result = CliRunner().invoke(app, ["batch-endpoint", "list"])
    assert result.exit_code == 2 and "pip install 'batchpoint[cli]'" in result.output


BROKEN_ENVIRONMENT = """\
name: yaml-broken-env
image: python:3.11
conda_file:
  dependencies:
    - python=3.11
    - pip
    - pip:
      - "!!! not a requirement"
"""


def test_create_replaces_a_deployment_whose_provisioning_failed(
    yaml_server: Server, project: Path, warm_batchpoint: list[str]
) -> None:
    """As az ml does: the fixed YAML is applied again with the same create command."""
    run = lambda *args: batchpoint(warm_batchpoint, yaml_server, project, *args)  # noqa: E731
    (project / "broken-env.yml").write_text(BROKEN_ENVIRONMENT)
    for kind, file in (("model", "model.yml"), ("environment", "environment.yml"), ("environment", "broken-env.yml")):
        succeeded(run(kind, "create", "-f", file, "-o", "none"))
    succeeded(run("batch-endpoint", "create", "-f", "endpoint.yml", "--name", "retry-ep", "-o", "none"))
    create = ("batch-deployment", "create", "-f", "deployment.yml", "--endpoint-name", "retry-ep")

    failed = run(*create, "--set", "environment=azureml:yaml-broken-env@latest")
    state = run(
        "batch-deployment", "show", "-n", "main", "-e", "retry-ep", "--query", "provisioning_state", "-o", "tsv"
    )
    retried = run(*create, "--query", "provisioning_state", "-o", "tsv")
    again = run(*create)

    assert (
        failed.returncode == 2
        and "EnvironmentBuildFailed" in failed.stderr
        and "install failed (exit code" in failed.stderr
    )
    assert succeeded(state) == "Failed\n" and succeeded(retried) == "Succeeded\n"
    assert again.returncode == 2 and "already exists; use update" in again.stderr
