"""Environments are built with the Python they ask for: a Python 3.8 environment with scikit-learn 1.1.2 (which
has no build for Python 3.11) runs a scoring script and an MLflow model whose pickle that environment trained.

One environment is built for the whole module (about 15 s with uv, a minute with pip; see docs/runtime.md); the
MLflow model's conda file has the same requirements, so its deployment finds it in the cache.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from azure.ai.ml import Input, MLClient
from azure.ai.ml.entities import (
    BatchEndpoint,
    CodeConfiguration,
    Environment,
    Model,
    ModelBatchDeployment,
    ModelBatchDeploymentSettings,
)
from azure.core.exceptions import HttpResponseError

from batchpoint.runtime.environments.interpreters import PythonNotFound
from tests.api.jobs import predictions
from tests.pythons import PYTHONS
from tests.sdk.mlclient import deploy_model
from tests.server import Server

try:
    PYTHON_38 = PYTHONS.choose("3.8")
except PythonNotFound:
    pytest.skip("needs a Python 3.8 interpreter (pyenv, uv or python3.8 on PATH)", allow_module_level=True)

CONDA_38 = """\
name: {name}
channels: [conda-forge]
dependencies:
  - python=3.8.5
  - pip
  - scikit-learn=1.1.2
  - pip:
      - numpy==1.24.4
      - pandas==1.5.3
      - mlflow-skinny==2.17.2
"""
"""scikit-learn 1.1.2 has wheels for Python 3.8 and none for 3.11; these pins are what Python 3.8 can run."""

TRAINING_SCRIPT = """
import os
import pickle
import sys

import pandas as pd
import sklearn
from sklearn.linear_model import LinearRegression


def init():
    features = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [0.5, 0.0, 1.5, 2.0]})
    model = LinearRegression().fit(features, 2 * features["a"] - features["b"])
    with open(os.path.join(os.environ["AZUREML_BI_OUTPUT_PATH"], "model.pkl"), "wb") as out:
        pickle.dump(model, out)


def run(mini_batch):
    python = ".".join(map(str, sys.version_info[:3]))
    files = [os.path.basename(p) for p in mini_batch]
    return pd.DataFrame({"python": python, "sklearn": sklearn.__version__, "file": files})
"""

MLMODEL = """\
flavors:
  python_function:
    env:
      conda: conda.yaml
      virtualenv: python_env.yaml
    loader_module: mlflow.sklearn
    model_path: model.pkl
    predict_fn: predict
    python_version: 3.8.18
  sklearn:
    code: null
    pickled_model: model.pkl
    serialization_format: pickle
    sklearn_version: 1.1.2
mlflow_version: 2.17.2
signature:
  inputs: '[{"type": "double", "name": "a", "required": true}, {"type": "double", "name": "b", "required": true}]'
  outputs: '[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1]}}]'
"""


@pytest.fixture(scope="module")
def ml_client(ml_client_with_cluster: MLClient) -> MLClient:
    return ml_client_with_cluster


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("inputs")
    pd.DataFrame({"a": [1.0, 5.0], "b": [1.0, 2.0]}).to_csv(folder / "a.csv", index=False)
    pd.DataFrame({"a": [7.0, 0.0, 3.0], "b": [0.0, 1.0, 4.0]}).to_csv(folder / "b.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def training_job(
    ml_client: MLClient, tls_server: Server, inputs: Path, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """A scoring-script deployment in the Python 3.8 environment, invoked once; its init() trains the model."""
    root = tmp_path_factory.mktemp("training")
    (root / "code").mkdir()
    (root / "code" / "score.py").write_text(TRAINING_SCRIPT)
    (root / "conda.yml").write_text(CONDA_38.format(name="py38-training"))
    (root / "model").mkdir()
    (root / "model" / "unused.txt").write_text("the script trains its own model")
    environment = ml_client.environments.create_or_update(
        Environment(
            name="py38-sklearn",
            conda_file=str(root / "conda.yml"),
            image="mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04",
        )
    )
    model = ml_client.models.create_or_update(Model(name="py38-placeholder", path=str(root / "model")))
    deploy_model(
        ml_client,
        "py38-script",
        "train",
        model,
        environment=environment,
        code_configuration=CodeConfiguration(code=str(root / "code"), scoring_script="score.py"),
        settings=ModelBatchDeploymentSettings(mini_batch_size=1, instance_count=1, max_concurrency_per_instance=1),
    )
    job = ml_client.batch_endpoints.invoke(
        endpoint_name="py38-script", deployment_name="train", input=Input(type="uri_folder", path=str(inputs))
    )
    ml_client.jobs.stream(job.name)
    assert ml_client.jobs.get(job.name).status == "Completed"
    return job.name


def build_logs(server: Server) -> list[str]:
    return [log.read_text() for log in (server.home / "environments" / "logs").glob("*.log")]


@pytest.mark.timeout(900)
def test_a_scoring_script_runs_in_the_python_its_environment_asks_for(training_job: str, tls_server: Server) -> None:
    assert predictions(tls_server.home, training_job) == [
        f"{PYTHON_38.version} 1.1.2 a.csv",
        f"{PYTHON_38.version} 1.1.2 b.csv",
    ]
    (log,) = build_logs(tls_server)
    assert f"built with Python {PYTHON_38.version}" in log and "scikit-learn==1.1.2.*" in log


def mlflow_model_folder(folder: Path, model_pickle: Path, python: str) -> Path:
    """An MLflow model as `mlflow.sklearn.save_model` writes it on Python 3.8 with scikit-learn 1.1.2."""
    folder.mkdir(parents=True)
    shutil.copy(model_pickle, folder / "model.pkl")
    (folder / "MLmodel").write_text(MLMODEL)
    (folder / "conda.yaml").write_text(CONDA_38.format(name="mlflow-env").replace("python=3.8.5", f"python={python}"))
    (folder / "python_env.yaml").write_text(
        f"python: {python}\nbuild_dependencies: [pip]\ndependencies: [-r requirements.txt]\n"
    )
    (folder / "requirements.txt").write_text("mlflow-skinny==2.17.2\nscikit-learn==1.1.2\n")
    return folder


@pytest.mark.timeout(900)
def test_an_mlflow_model_pinned_to_python_3_8_deploys_and_scores(
    ml_client: MLClient, tls_server: Server, training_job: str, inputs: Path, tmp_path: Path
) -> None:
    trained = next((tls_server.home / "storage").glob(f"*/azureml-blobstore-*/azureml/{training_job}/score/model.pkl"))
    folder = mlflow_model_folder(tmp_path / "regressor", trained, "3.8.5")
    registered = ml_client.models.create_or_update(Model(name="py38-regressor", path=str(folder), type="mlflow_model"))
    deployment = deploy_model(
        ml_client, "py38-mlflow", "auto", registered, settings=ModelBatchDeploymentSettings(mini_batch_size=1)
    )
    assert deployment.provisioning_state == "Succeeded"
    job = ml_client.batch_endpoints.invoke(
        endpoint_name="py38-mlflow", deployment_name="auto", input=Input(type="uri_folder", path=str(inputs))
    )
    ml_client.jobs.stream(job.name)

    assert ml_client.jobs.get(job.name).status == "Completed"
    rows = [line.split(",") for line in predictions(tls_server.home, job.name)]
    assert [(row, name) for row, _, name in rows] == [
        ("0", "a.csv"),
        ("1", "a.csv"),
        ("0", "b.csv"),
        ("1", "b.csv"),
        ("2", "b.csv"),
    ]
    assert [float(value) for _, value, _ in rows] == pytest.approx([1.0, 8.0, 14.0, -1.0, 2.0])  # 2a - b
    assert len(build_logs(tls_server)) == 1, (
        "the model's conda file has the environment's requirements: no second build"
    )


def test_an_mlflow_model_asking_for_a_python_nobody_has_fails_naming_it_and_what_was_found(
    ml_client: MLClient, tmp_path: Path
) -> None:
    pickle = tmp_path / "model.pkl"
    pickle.write_bytes(b"never loaded")
    folder = mlflow_model_folder(tmp_path / "ancient", pickle, "3.4")
    registered = ml_client.models.create_or_update(Model(name="py34-regressor", path=str(folder), type="mlflow_model"))
    ml_client.batch_endpoints.begin_create_or_update(BatchEndpoint(name="py34-mlflow")).result()
    deployment = ModelBatchDeployment(name="auto", endpoint_name="py34-mlflow", model=registered, compute="cpu-cluster")

    with pytest.raises(HttpResponseError) as failed:
        ml_client.batch_deployments.begin_create_or_update(deployment).result()

    message = str(failed.value)
    assert "PythonVersionNotFound" in message and "asks for Python 3.4" in message
    assert f"{PYTHON_38.version} ({PYTHON_38.path})" in message and "uv python install 3.4" in message
    assert ml_client.batch_deployments.get("auto", endpoint_name="py34-mlflow").provisioning_state == "Failed"
