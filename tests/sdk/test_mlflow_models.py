"""An MLflow model deployed without a scoring script or environment: batchpoint scores CSV and Parquet files
with it the way Azure's generated scorer does (``row,prediction,file`` per input row)."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from azure.ai.ml import Input, MLClient
from azure.ai.ml.entities import Model, ModelBatchDeploymentSettings

from tests.api.jobs import predictions
from tests.sdk.mlclient import connect, create_cluster, deploy_model
from tests.server import Server

if importlib.util.find_spec("mlflow") is None or importlib.util.find_spec("sklearn") is None:
    pytest.skip("MLflow scoring needs the 'mlflow' extra (and scikit-learn)", allow_module_level=True)
# mlflow and scikit-learn (3-4 s of imports) are imported by the test that uses them, not by every test process that
# collects this module.


@pytest.fixture(scope="module")
def ml_client(tls_server: Server) -> Iterator[MLClient]:
    with pytest.MonkeyPatch.context() as patch:
        yield connect(tls_server, patch)


def installed_requirements() -> list[str]:
    """What MLflow infers for this model (pins of this interpreter's packages); given, they spare `save_model` the
    subprocess that infers them (4 s of CPU)."""
    import cloudpickle
    import mlflow
    import sklearn

    return [f"{module.__name__}=={module.__version__}" for module in (mlflow, cloudpickle, pd)] + [
        f"scikit-learn=={sklearn.__version__}"
    ]


def saved_model(folder: Path) -> object:
    from mlflow import sklearn as mlflow_sklearn
    from mlflow.models import infer_signature
    from sklearn import linear_model

    features = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [0.5, 0.0, 1.5, 2.0]})
    target = 2 * features["a"] - features["b"]
    model = linear_model.LinearRegression().fit(features, target)
    mlflow_sklearn.save_model(
        model,
        str(folder),
        signature=infer_signature(features, target),
        serialization_format="cloudpickle",
        pip_requirements=installed_requirements(),
    )
    return model


def test_mlflow_model_scores_csv_and_parquet_without_a_script(
    ml_client: MLClient, tls_server: Server, tmp_path: Path
) -> None:
    model = saved_model(tmp_path / "regressor")
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    frames = {
        "a.csv": pd.DataFrame({"a": [1, 5], "b": [1.0, 2.0]}),
        "b.parquet": pd.DataFrame({"a": [7.0, 0.0, 3.0], "b": [0.0, 1.0, 4.0]}),
    }
    frames["a.csv"].to_csv(inputs / "a.csv", index=False)
    frames["b.parquet"].to_parquet(inputs / "b.parquet")

    registered = ml_client.models.create_or_update(
        Model(name="regressor", path=str(tmp_path / "regressor"), type="mlflow_model")
    )
    create_cluster(ml_client)
    deploy_model(ml_client, "mlflow-ep", "auto", registered, settings=ModelBatchDeploymentSettings(mini_batch_size=1))
    job = ml_client.batch_endpoints.invoke(
        endpoint_name="mlflow-ep", deployment_name="auto", input=Input(type="uri_folder", path=str(inputs))
    )
    ml_client.jobs.stream(job.name)

    assert ml_client.jobs.get(job.name).status == "Completed"
    expected = [
        f"{row},{prediction},{name}"
        for name, frame in frames.items()
        for row, prediction in enumerate(model.predict(frame.astype("float64")))
    ]
    assert predictions(tls_server.home, job.name) == expected
