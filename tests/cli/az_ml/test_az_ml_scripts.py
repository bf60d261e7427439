"""Shell scripts written the way the azureml-examples batch samples are (``deploy-and-run.sh``: ``az ml`` verbs,
``--query name -o tsv``, ``--set``, ``--input-type``, ``--yes``) run unmodified with ``az`` replaced by a shim that
calls ``batchpoint``, against a real server over plain HTTP, in a shell where azure-ai-ml's
``AZUREML_CURRENT_CLOUD`` names a cloud it does not know.

The shim's ``batchpoint`` runs each command in its own process forked from a warm one (``tests/warm.py``), so
that the scripts' fifty commands do not each pay for importing azure-ai-ml."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.server import API, WORKSPACE_ID, Server, batchpoint_command

SCRIPT_SECONDS = 300

SHIM = """#!/bin/sh
[ "$1" = ml ] || exit 0
shift; exec {batchpoint} "$@"
"""
"""docs/migration.md's ``az``, with the checkout's batchpoint (run warm) instead of the ``batchpoint`` on PATH."""

SCORE = """
import os

def init():
    global factor
    factor = int(open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model", "factor.txt")).read())

def run(mini_batch):
    edition = os.environ["EDITION"]
    return [f"{os.path.basename(path)},{len(open(path).read()) * factor},{edition}" for path in mini_batch]
"""

ENDPOINT = """\
$schema: https://azuremlschemas.azureedge.net/latest/batchEndpoint.schema.json
name: text-lengths-batch
description: Scores the length of text files.
auth_mode: aad_token
"""

DEPLOYMENT = """\
$schema: https://azuremlschemas.azureedge.net/latest/modelBatchDeployment.schema.json
name: {name}
endpoint_name: text-lengths-batch
type: model
model: azureml:text-length@latest
code_configuration:
  code: src
  scoring_script: score.py
environment:
  image: python:3.11
compute: azureml:batch-cluster
resources:
  instance_count: 1
settings:
  mini_batch_size: 3
  output_action: append_row
  output_file_name: predictions.csv
  environment_variables:
    EDITION: {name}
"""

MODEL_SCRIPT = r"""
set -e
# <name_endpoint>
ENDPOINT_NAME="text-lengths"
# </name_endpoint>
ENDPOINT_SUFIX=$(cat /dev/urandom | tr -dc 'a-z0-9' | fold -w 5 | head -n 1)
ENDPOINT_NAME="$ENDPOINT_NAME-$ENDPOINT_SUFIX"
echo "$ENDPOINT_NAME" > endpoint-name.txt

wait_for_job() {
  STATUS=$(az ml job show -n $1 --query status -o tsv)
  while [[ $STATUS != "Completed" && $STATUS != "Failed" && $STATUS != "Canceled" ]]; do
    sleep 1
    STATUS=$(az ml job show -n $1 --query status -o tsv)
  done
  echo "$1 $STATUS"
  if [[ $STATUS != "Completed" ]]; then exit 1; fi
}

echo "Registering the model"
MODEL_NAME='text-length'
az ml model create --name $MODEL_NAME --type "custom_model" --path "model"

echo "Creating compute"
az ml compute create -n batch-cluster --type amlcompute --min-instances 0 --max-instances 5

echo "Creating batch endpoint $ENDPOINT_NAME"
az ml batch-endpoint create -n $ENDPOINT_NAME -f endpoint.yml
az ml batch-endpoint show --name $ENDPOINT_NAME

echo "Creating batch deployment for endpoint $ENDPOINT_NAME"
az ml batch-deployment create --file deployment.yml --endpoint-name $ENDPOINT_NAME --set-default
DEPLOYMENT_NAME="lengths-v1"
az ml batch-deployment show --name $DEPLOYMENT_NAME --endpoint-name $ENDPOINT_NAME

echo "Invoking batch endpoint with local data"
JOB_NAME=$(az ml batch-endpoint invoke --name $ENDPOINT_NAME --input data --input-type uri_folder --query name -o tsv)
az ml job stream -n $JOB_NAME
wait_for_job $JOB_NAME
az ml batch-deployment list-jobs --name $DEPLOYMENT_NAME --endpoint-name $ENDPOINT_NAME --query [].name
az ml job download --name $JOB_NAME --output-name score --download-path ./first

echo "A second deployment, made the default"
az ml batch-deployment create --file deployment-v2.yml --endpoint $ENDPOINT_NAME \
                              --set settings.environment_variables.EDITION=second
az ml batch-endpoint update --name $ENDPOINT_NAME --set defaults.deployment_name=lengths-v2
az ml batch-endpoint show --name $ENDPOINT_NAME --query "{Name:name, Defaults:defaults}"

echo "Invoking with overrides and a chosen output"
OUTPUT_PATH="azureml://datastores/workspaceblobstore/paths/$ENDPOINT_NAME"
JOB_NAME=$(az ml batch-endpoint invoke --name $ENDPOINT_NAME --input data --output-path $OUTPUT_PATH \
           --set output_file_name=lengths.csv --mini-batch-size 2 --instance-count 1 --query name -o tsv)
wait_for_job $JOB_NAME
echo "$JOB_NAME" > second-job.txt

echo "Delete resources"
az ml batch-deployment delete --name lengths-v1 --endpoint-name $ENDPOINT_NAME --yes
az ml batch-endpoint delete --name $ENDPOINT_NAME --yes
"""


@pytest.fixture(scope="module")
def shell_env(server: Server, warm_batchpoint: list[str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """PATH with the ``az`` shim first, the server in batchpoint's variables, and a cloud azure-ai-ml does not know."""
    shims = tmp_path_factory.mktemp("bin")
    (shims / "az").write_text(SHIM.format(batchpoint=shlex.join(warm_batchpoint)))
    (shims / "az").chmod(0o755)
    return {
        **os.environ,
        "PATH": f"{shims}{os.pathsep}{os.environ['PATH']}",
        "BATCHPOINT_URL": server.base_url,
        "BATCHPOINT_HOME": str(server.home),
        "AZUREML_CURRENT_CLOUD": "batchpoint-elsewhere",
    }


def run_script(folder: Path, script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    (folder / "deploy-and-run.sh").write_text(script)
    result = subprocess.run(
        ["bash", "deploy-and-run.sh"], cwd=folder, env=env, capture_output=True, text=True, timeout=SCRIPT_SECONDS
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result


@pytest.mark.timeout(SCRIPT_SECONDS)
def test_a_model_sample_script_runs_unmodified(server: Server, shell_env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "factor.txt").write_text("10")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "score.py").write_text(SCORE)
    (tmp_path / "data").mkdir()
    for index in range(5):
        (tmp_path / "data" / f"text{index}.txt").write_text("x" * index)
    (tmp_path / "endpoint.yml").write_text(ENDPOINT)
    (tmp_path / "deployment.yml").write_text(DEPLOYMENT.format(name="lengths-v1"))
    (tmp_path / "deployment-v2.yml").write_text(DEPLOYMENT.format(name="lengths-v2"))

    result = run_script(tmp_path, MODEL_SCRIPT, shell_env)

    endpoint = (tmp_path / "endpoint-name.txt").read_text().strip()
    expected = [f"text{index}.txt,{index * 10}" for index in range(5)]
    first = (tmp_path / "first" / "named-outputs" / "score" / "predictions.csv").read_text().splitlines()
    assert first == [f"{row},lengths-v1" for row in expected]
    second = list((server.home / "storage").glob(f"*/azureml-blobstore-*/{endpoint}/lengths.csv"))
    assert [path.read_text().splitlines() for path in second] == [[f"{row},second" for row in expected]]
    assert '"deployment_name": "lengths-v2"' in result.stdout and "Completed" in result.stdout
    with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {server.token()}"}) as client:
        gone = client.get(f"{WORKSPACE_ID}/batchEndpoints/{endpoint}", params={"api-version": API})
    assert gone.status_code == 404


COUNT_PY = """
import argparse, os
parser = argparse.ArgumentParser()
parser.add_argument("--data"); parser.add_argument("--label"); parser.add_argument("--out")
args = parser.parse_args()
with open(os.path.join(args.out, "counts.csv"), "w") as out:
    for name in sorted(os.listdir(args.data)):
        out.write(f"{args.label},{name},{len(open(os.path.join(args.data, name)).read())}\\n")
"""

COMPONENTS = {
    "count.yml": """\
$schema: https://azuremlschemas.azureedge.net/latest/commandComponent.schema.json
name: count_chars
version: '1'
type: command
inputs:
  data: {type: uri_folder}
  label: {type: string, default: plain}
outputs:
  counts: {type: uri_folder}
code: ./src
environment: azureml:counting-env@latest
command: python count.py --data ${{inputs.data}} --label ${{inputs.label}} --out ${{outputs.counts}}
""",
    "pipeline.yml": """\
$schema: https://azuremlschemas.azureedge.net/latest/pipelineComponent.schema.json
name: count_pipeline
version: '1'
type: pipeline
inputs:
  input_data: {type: uri_folder}
  label: {type: string, default: plain}
outputs:
  counts: {type: uri_folder}
jobs:
  count:
    type: command
    component: azureml:count_chars:1
    inputs:
      data: ${{parent.inputs.input_data}}
      label: ${{parent.inputs.label}}
    outputs:
      counts: ${{parent.outputs.counts}}
""",
    "hello.yml": """\
$schema: https://azuremlschemas.azureedge.net/latest/commandComponent.schema.json
name: say_hello
version: '1'
type: command
outputs:
  greeting: {type: uri_folder}
environment: azureml:counting-env@latest
command: echo hello > ${{outputs.greeting}}/hello.txt
""",
    "hello-pipeline.yml": """\
$schema: https://azuremlschemas.azureedge.net/latest/pipelineComponent.schema.json
name: hello_pipeline
version: '1'
type: pipeline
jobs:
  hello:
    type: command
    component: azureml:say_hello:1
""",
}

PIPELINE_FILES = {
    "environment.yml": "name: counting-env\nimage: python:3.11\n",
    "endpoint.yml": "$schema: https://azuremlschemas.azureedge.net/latest/batchEndpoint.schema.json\n"
    "name: char-counts\nauth_mode: aad_token\n",
    "deployment.yml": """\
$schema: https://azuremlschemas.azureedge.net/latest/pipelineComponentBatchDeployment.schema.json
name: counting
endpoint_name: char-counts
type: pipeline
component: azureml:count_pipeline@latest
settings:
  default_compute: batch-cluster
""",
    "hello-deployment.yml": """\
$schema: https://azuremlschemas.azureedge.net/latest/pipelineComponentBatchDeployment.schema.json
name: hello-dpl
endpoint_name: char-counts
type: pipeline
component: azureml:hello_pipeline@latest
settings:
  default_compute: batch-cluster
""",
    "pipeline-job.yml": """\
$schema: https://azuremlschemas.azureedge.net/latest/pipelineJob.schema.json
type: pipeline
experiment_name: char-counts-pipeline
display_name: char-counts-job
compute: batch-cluster
component: components/pipeline.yml
inputs:
  input_data:
    type: uri_folder
  label: tested
outputs:
  counts:
    mode: upload
""",
    "deployment-from-job.yml": """\
$schema: https://azuremlschemas.azureedge.net/latest/pipelineComponentBatchDeployment.schema.json
name: counting-from-job
endpoint_name: char-counts
type: pipeline
job_definition: azureml:job_name_placeholder
settings:
  continue_on_step_failure: false
  default_compute: batch-cluster
""",
    "inputs.yml": """\
inputs:
  input_data:
    type: uri_folder
    path: data/unlabeled
  label:
    type: string
    default: chars
outputs:
  counts:
    type: uri_folder
    mode: upload
""",
}

PIPELINE_SCRIPT = r"""
az configure --defaults workspace=default group=local
ENDPOINT_NAME="char-counts"
ENDPOINT_SUFIX=$(cat /dev/urandom | tr -dc 'a-z0-9' | fold -w 5 | head -n 1)
ENDPOINT_NAME="$ENDPOINT_NAME-$ENDPOINT_SUFIX"

az ml environment create -f environment.yml
az ml component create -f components/count.yml
az ml component create -f components/pipeline.yml
az ml component create -f components/hello.yml
az ml component create -f components/hello-pipeline.yml
az ml compute create -n batch-cluster --type amlcompute --min-instances 0 --max-instances 5
az ml job create -f pipeline-job.yml --set inputs.input_data.path=data/unlabeled --query name -o tsv > pipeline-job.txt
az ml batch-endpoint create --name $ENDPOINT_NAME -f endpoint.yml
az ml batch-endpoint show --name $ENDPOINT_NAME
az ml batch-deployment create --endpoint $ENDPOINT_NAME -f deployment.yml --set-default

JOB_NAME=$(az ml batch-endpoint invoke -n $ENDPOINT_NAME --f inputs.yml --query name -o tsv)
az ml job stream -n $JOB_NAME
az ml job show -n $JOB_NAME --query status -o tsv > status.txt
az ml job list --parent-job-name $JOB_NAME --query "[].name" -o tsv > steps.txt
az ml job download --name $JOB_NAME --output-name counts

az ml batch-deployment create --endpoint $ENDPOINT_NAME -f hello-deployment.yml
DEPLOYMENT_NAME="hello-dpl"
JOB_NAME=$(az ml batch-endpoint invoke -n $ENDPOINT_NAME -d $DEPLOYMENT_NAME --query name -o tsv)
az ml job stream -n $JOB_NAME
az ml job show -n $JOB_NAME --query status -o tsv >> status.txt

PIPELINE_JOB=$(cat pipeline-job.txt)
az ml job stream -n $PIPELINE_JOB
az ml job show -n $PIPELINE_JOB --query status -o tsv >> status.txt
az ml job download --name $PIPELINE_JOB --output-name counts --download-path standalone
az ml batch-deployment create --endpoint $ENDPOINT_NAME --set job_definition=azureml:$PIPELINE_JOB \
  -f deployment-from-job.yml
JOB_NAME=$(az ml batch-endpoint invoke -n $ENDPOINT_NAME -d counting-from-job --f inputs.yml --query name -o tsv)
az ml job stream -n $JOB_NAME
az ml job show -n $JOB_NAME --query status -o tsv >> status.txt
az ml job download --name $JOB_NAME --output-name counts --download-path from-job

az ml batch-endpoint delete -n $ENDPOINT_NAME --yes
"""


@pytest.mark.timeout(SCRIPT_SECONDS)
def test_a_pipeline_sample_script_runs_unmodified(shell_env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "components" / "src").mkdir(parents=True)
    (tmp_path / "components" / "src" / "count.py").write_text(COUNT_PY)
    for name, text in COMPONENTS.items():
        (tmp_path / "components" / name).write_text(text)
    for name, text in PIPELINE_FILES.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "data" / "unlabeled").mkdir(parents=True)
    for name, text in {"a.txt": "abc", "b.txt": "abcdef"}.items():
        (tmp_path / "data" / "unlabeled" / name).write_text(text)

    run_script(tmp_path, "set -e\n" + PIPELINE_SCRIPT, shell_env)

    assert (tmp_path / "status.txt").read_text().split() == ["Completed"] * 4
    assert [step.rsplit("-", 1)[1] for step in (tmp_path / "steps.txt").read_text().split()] == ["count"]
    counts = (tmp_path / "named-outputs" / "counts" / "counts.csv").read_text().splitlines()
    assert counts == ["chars,a.txt,3", "chars,b.txt,6"]
    standalone = (tmp_path / "standalone" / "named-outputs" / "counts" / "counts.csv").read_text().splitlines()
    assert standalone == ["tested,a.txt,3", "tested,b.txt,6"]
    from_job = (tmp_path / "from-job" / "named-outputs" / "counts" / "counts.csv").read_text().splitlines()
    assert from_job == counts

    pipeline_job = (tmp_path / "pipeline-job.txt").read_text().strip()
    listed = batchpoint(shell_env, "jobs", "list")
    waited = batchpoint(shell_env, "jobs", "wait", pipeline_job)
    assert listed.returncode == 0 and pipeline_job[:20] in listed.stdout, listed.stderr
    assert waited.returncode == 0 and "output counts: azureml://" in waited.stdout.replace("\n", ""), waited.stderr


def batchpoint(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """batchpoint's own job commands, which once crashed on pipeline jobs and their steps."""
    return subprocess.run([*batchpoint_command(), *args], env=env, capture_output=True, text=True, timeout=120)
