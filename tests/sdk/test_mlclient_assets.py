"""Registering assets from local folders with the unmodified MLClient: the bytes land in the datastore."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.ai.ml import MLClient
from azure.ai.ml.entities import BatchEndpoint, CodeConfiguration, Data, Environment, Model, ModelBatchDeployment
from azure.core.exceptions import ResourceExistsError

from tests.sdk.mlclient import connect, create_cluster
from tests.server import Server


@pytest.fixture(scope="module")
def ml_client(tls_server: Server) -> Iterator[MLClient]:
    with pytest.MonkeyPatch.context() as patch:
        yield connect(tls_server, patch)


def blobstore(server: Server) -> Path:
    account = next((server.home / "storage").glob("bp*"))
    return next(account.glob("azureml-blobstore-*"))


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)
    return root


def stored(server: Server, uri: str) -> Path:
    """The local folder behind an ``azureml://.../paths/...`` URI of the default datastore."""
    return blobstore(server) / uri.split("/paths/", 1)[1].strip("/")


def test_model_and_data_from_local_folders_arrive_byte_identical(
    ml_client: MLClient, tls_server: Server, tmp_path: Path
) -> None:
    files = {"model/weights.bin": os.urandom(50_000), "model/conf/params.json": b'{"a": 1}'}
    source = write_tree(tmp_path / "m", files)
    model = ml_client.models.create_or_update(Model(name="local-model", path=str(source / "model")))
    data = ml_client.data.create_or_update(Data(name="local-data", path=str(source), type="uri_folder"))
    model_folder, data_folder = stored(tls_server, model.path), stored(tls_server, data.path)
    assert (model_folder / "weights.bin").read_bytes() == files["model/weights.bin"]
    assert (model_folder / "conf" / "params.json").read_bytes() == files["model/conf/params.json"]
    assert (data_folder / "model" / "weights.bin").read_bytes() == files["model/weights.bin"]
    assert ml_client.models.get("local-model", version=model.version).path == model.path
    assert ml_client.data.get("local-data", label="latest").version == data.version


def test_same_code_folder_is_uploaded_once(ml_client: MLClient, tls_server: Server, tmp_path: Path) -> None:
    script = b"# test_same_code_folder_is_uploaded_once (the server is shared: no other test has this folder)\n"
    code = write_tree(
        tmp_path / "src", {"score.py": script + b"def init():\n    pass\n\ndef run(batch):\n    return batch\n"}
    )
    model = ml_client.models.create_or_update(
        Model(name="code-model", path=str(write_tree(tmp_path / "w", {"w.bin": b"w"})))
    )
    environment = ml_client.environments.create_or_update(Environment(name="code-env", image="python:3.11"))
    ml_client.batch_endpoints.begin_create_or_update(BatchEndpoint(name="code-ep")).result()
    create_cluster(ml_client)
    uploads_before = set((blobstore(tls_server).parent).glob("code-*"))
    created = []
    for name in ("first", "second"):
        deployment = ModelBatchDeployment(
            name=name,
            endpoint_name="code-ep",
            model=model,
            environment=environment,
            code_configuration=CodeConfiguration(code=str(code), scoring_script="score.py"),
            compute="cpu-cluster",
        )
        created.append(ml_client.batch_deployments.begin_create_or_update(deployment).result())
    uploads = set((blobstore(tls_server).parent).glob("code-*")) - uploads_before
    assert [item.provisioning_state for item in created] == ["Succeeded", "Succeeded"]
    assert created[0].code_configuration.code == created[1].code_configuration.code
    assert len(uploads) == 1
    assert (next(iter(uploads)) / "src" / "score.py").read_bytes() == (code / "score.py").read_bytes()


def test_a_registered_version_keeps_its_definition_as_on_azure(ml_client: MLClient, tmp_path: Path) -> None:
    first = tmp_path / "first.yml"
    second = tmp_path / "second.yml"
    first.write_text("dependencies:\n- python=3.11\n- pip:\n  - six==1.16.0\n")
    second.write_text("dependencies:\n- python=3.11\n- pip:\n  - six==1.17.0\n")
    ml_client.environments.create_or_update(
        Environment(name="immutable", version="1", conda_file=str(first), image="python:3.11")
    )

    with pytest.raises(ResourceExistsError) as refused:
        ml_client.environments.create_or_update(
            Environment(name="immutable", version="1", conda_file=str(second), image="python:3.11")
        )
    assert "immutable with version 1 is already registered and cannot be changed" in str(refused.value)
    assert "six==1.16.0" in ml_client.environments.get("immutable", version="1").conda_file["dependencies"][1]["pip"][0]

    again = Environment(name="immutable", version="1", conda_file=str(first), image="python:3.11", description="same")
    assert ml_client.environments.create_or_update(again).description == "same"
    moved = ml_client.environments.create_or_update(
        Environment(name="immutable", conda_file=str(second), image="python:3.11")
    )
    assert moved.version == "2"
    unchanged = ml_client.environments.create_or_update(
        Environment(name="immutable", conda_file=str(second), image="python:3.11")
    )
    assert unchanged.version == "2"
    assert sorted(item.version for item in ml_client.environments.list("immutable")) == ["1", "2"]


def test_models_and_data_versions_are_immutable_too(ml_client: MLClient, tmp_path: Path) -> None:
    one, two = write_tree(tmp_path / "one", {"w.bin": b"1"}), write_tree(tmp_path / "two", {"w.bin": b"2"})
    ml_client.models.create_or_update(Model(name="fixed-model", version="1", path=str(one)))
    ml_client.data.create_or_update(Data(name="fixed-data", version="1", path=str(one), type="uri_folder"))
    with pytest.raises(ResourceExistsError):
        ml_client.models.create_or_update(Model(name="fixed-model", version="1", path=str(two)))
    with pytest.raises(ResourceExistsError):
        ml_client.data.create_or_update(Data(name="fixed-data", version="1", path=str(two), type="uri_folder"))
    tagged = ml_client.models.create_or_update(
        Model(name="fixed-model", version="1", path=str(one), tags={"stage": "ok"})
    )
    assert tagged.tags == {"stage": "ok"}
    ml_client.models.archive("fixed-model", version="1")
    assert ml_client.models.get("fixed-model", version="1").path.endswith("/one")
