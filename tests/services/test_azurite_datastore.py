"""AzureBlob datastores on a real Azure Storage emulator: Azurite, from ``node_modules`` (``make venv`` installs it).

What is written through the URI resolver must really land in Azurite, and be read back through the resolver.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient, ContainerClient

from batchpoint.config import Settings
from batchpoint.services.container import SYSTEM, Services
from tests.server import WORKSPACE_ID, free_port, stop_process, wait_for_port

AZURITE = Path(__file__).resolve().parents[2] / "node_modules" / ".bin" / "azurite-blob"
ACCOUNT = "devstoreaccount1"
# The documented, public key of Azurite's built-in development account.
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


@dataclass(frozen=True)
class Azurite:
    endpoint: str
    """``host:port``, as a datastore's ``endpoint`` names an emulator."""

    def service(self) -> BlobServiceClient:
        credential = {"account_name": ACCOUNT, "account_key": KEY}
        return BlobServiceClient(f"http://{self.endpoint}/{ACCOUNT}", credential=credential)


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    if shutil.which("node") is None:
        pytest.skip("Node.js is not installed, so Azurite (the Azure Storage emulator) cannot run")
    if not AZURITE.exists():
        pytest.fail(f"{AZURITE} is missing: run 'make venv' (or 'npm ci') to install Azurite from package-lock.json")
    location, port = tmp_path_factory.mktemp("azurite"), free_port()
    command = [str(AZURITE), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", str(location)]
    command += ["--silent", "--skipApiVersionCheck", "--loose", "--disableTelemetry"]
    with (location / "azurite.log").open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for_port(process, port, "Azurite", log.name, timeout=20)
            yield Azurite(endpoint=f"127.0.0.1:{port}")
        finally:
            stop_process(process, signal.SIGTERM, timeout=10)


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
    credentials = {"credentialsType": "AccountKey", "secrets": {"secretsType": "AccountKey", "key": KEY}}
    properties = {
        "datastoreType": "AzureBlob",
        "accountName": ACCOUNT,
        "containerName": container.container_name,
        "endpoint": azurite.endpoint,
        "protocol": "http",
        "credentials": credentials,
    }
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
    services.assets.put_version(SYSTEM, "data", f"{WORKSPACE_ID}/data/set/versions/1", body)
    through_asset = services.uris.resolve(WORKSPACE_ID, "azureml:set:1")
    direct = services.uris.resolve(WORKSPACE_ID, uri)
    assert through_asset.protocol == direct.protocol == "abfs"
    assert through_asset.path == direct.path == f"{container.container_name}/sets/one"
    assert through_asset.storage_options == direct.storage_options
    fs = through_asset.filesystem()
    with fs.open(f"{through_asset.path}/part-0.csv", "wb") as file:
        file.write(b"x\n1\n")
    assert container.download_blob("sets/one/part-0.csv").readall() == b"x\n1\n"
