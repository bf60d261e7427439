"""Azurite, the Azure Storage emulator from ``node_modules`` (``make venv`` installs it), as a test fixture."""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient

from tests.ports import free_port
from tests.server import stop_process, wait_for_port

AZURITE = Path(__file__).resolve().parents[1] / "node_modules" / ".bin" / "azurite-blob"
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


def datastore_properties(azurite: Azurite, container: str) -> dict[str, Any]:
    """An AzureBlob datastore on an Azurite container, with the account key as its credentials."""
    return {
        "datastoreType": "AzureBlob",
        "accountName": ACCOUNT,
        "containerName": container,
        "endpoint": azurite.endpoint,
        "protocol": "http",
        "credentials": {"credentialsType": "AccountKey", "secrets": {"secretsType": "AccountKey", "key": KEY}},
    }
