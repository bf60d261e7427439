"""AzureBlob datastores on a real Azure Storage emulator: Azurite, from ``node_modules`` (``make venv`` installs it).

What is written through the URI resolver must really land in Azurite, and be read back through the resolver.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import ContainerClient

from batchpoint.app.wiring import SYSTEM, Services
from batchpoint.config import Settings
from batchpoint.ml.assets.resource_types import DATA_VERSIONS
from tests.azurite import Azurite, azurite, datastore_properties  # noqa: F401 - azurite is a fixture
from tests.server import WORKSPACE_ID


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    running = Services.open(Settings(home=tmp_path / "home"))
    running.start()
    yield running
    running.close()


@pytest.fixture
def container(azurite: Azurite) -> Iterator[ContainerClient]:
    """A fresh container in Azurite, seen directly through azure-storage-blob."""
    with azurite.service() as service:
        yield service.create_container(f"c{uuid.uuid4().hex}")


@pytest.fixture
def datastore(services: Services, azurite: Azurite, container: ContainerClient) -> str:
    """The name of an AzureBlob datastore on ``container``, with the account key as its credentials."""
    name = "azurite"
    properties = datastore_properties(azurite, container.container_name)
    services.datastores.put(SYSTEM, f"{WORKSPACE_ID}/datastores/{name}", {"properties": properties})
    return name


def filesystem_at(services: Services, uri: str) -> tuple[Any, str]:
    """The fsspec filesystem and path the resolver gives for ``uri``."""
    location = services.uris.resolve(WORKSPACE_ID, uri)
    return location.filesystem(), location.path


def test_files_written_through_the_resolver_are_in_azurite(
    services: Services, datastore: str, container: ContainerClient
) -> None:
    payloads = {"in/a.csv": b"a,b\n1,2\n", "in/sub/b.csv": b"c\n3\n"}
    for path, payload in payloads.items():
        fs, target = filesystem_at(services, f"azureml://datastores/{datastore}/paths/{path}")
        with fs.open(target, "wb") as file:
            file.write(payload)
    for path, payload in payloads.items():
        fs, target = filesystem_at(services, f"azureml://datastores/{datastore}/paths/{path}")
        assert fs.cat_file(target) == payload
        assert container.download_blob(path).readall() == payload
    fs, folder = filesystem_at(services, f"azureml://datastores/{datastore}/paths/in/")
    assert sorted(fs.find(folder)) == sorted(f"{container.container_name}/{path}" for path in payloads)


def test_blobs_uploaded_to_azurite_are_read_through_the_resolver(
    services: Services, datastore: str, container: ContainerClient
) -> None:
    container.upload_blob("direct/c.txt", b"from the SDK")
    long_form = (
        "azureml://subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/local/workspaces/default"
        f"/datastores/{datastore}/paths/direct/c.txt"
    )
    fs, target = filesystem_at(services, long_form)
    assert fs.cat_file(target) == b"from the SDK"


def test_a_data_asset_on_the_datastore_resolves_to_the_same_place(
    services: Services, datastore: str, container: ContainerClient
) -> None:
    uri = f"azureml://datastores/{datastore}/paths/sets/one/"
    body = {"properties": {"dataUri": uri, "dataType": "uri_folder"}}
    services.resource_service(DATA_VERSIONS).put(SYSTEM, f"{WORKSPACE_ID}/data/set/versions/1", body)
    through_asset = services.uris.resolve(WORKSPACE_ID, "azureml:set:1")
    direct = services.uris.resolve(WORKSPACE_ID, uri)
    assert through_asset.protocol == direct.protocol == "abfs"
    assert through_asset.path == direct.path == f"{container.container_name}/sets/one"
    assert through_asset.storage_options == direct.storage_options
    fs = through_asset.filesystem()
    with fs.open(f"{through_asset.path}/part-0.csv", "wb") as file:
        file.write(b"x\n1\n")
    assert container.download_blob("sets/one/part-0.csv").readall() == b"x\n1\n"
