"""A job writes its output to an AzureBlob datastore on Azurite: every row exactly once, in input order, and a
reader listing the container never sees a partial predictions file, even across kill -9 of the server."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.storage.blob import ContainerClient

from tests.api.jobs import V, deploy_script, invoke, wait_for_job, write_inputs
from tests.azurite import Azurite, azurite, datastore_properties  # noqa: F401 - azurite is a fixture
from tests.jobs.test_job_durability import SLOW_ECHO, kill_when
from tests.server import WORKSPACE_ID, Server


class Reader(threading.Thread):
    """Lists the container over and over while the job runs, and downloads every predictions file it sees."""

    def __init__(self, container: ContainerClient) -> None:
        super().__init__(daemon=True)
        self.container = container
        self.stop = threading.Event()
        self.listed: set[str] = set()
        self.seen: list[bytes] = []

    def run(self) -> None:
        while not self.stop.is_set():
            for blob in self.container.list_blobs():
                self.listed.add(blob.name)
                if blob.name.endswith("predictions.csv"):
                    self.seen.append(self.container.download_blob(blob.name).readall())

    def __enter__(self) -> Reader:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.join(timeout=30)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(home=tmp_path / "home", args=["--allow-local-path", str(tmp_path)]).start()
    yield running
    if running.process and running.process.poll() is None:
        running.stop()


@pytest.fixture
def container(azurite: Azurite) -> Iterator[ContainerClient]:
    with azurite.service() as service:
        yield service.create_container(f"c{uuid.uuid4().hex}")


def put_datastore(server: Server, azurite: Azurite, container: ContainerClient, name: str) -> None:
    with server.client() as http:
        body = {"properties": datastore_properties(azurite, container.container_name)}
        assert http.put(f"{WORKSPACE_ID}/datastores/{name}", params=V, json=body).status_code in (200, 201)


def rows(count: int) -> bytes:
    return "".join(f"f{index:05d}.txt\n" for index in range(count)).encode()


def test_output_on_a_blob_datastore_appears_once_whole_with_every_row_in_order(
    server: Server, azurite: Azurite, container: ContainerClient, tmp_path: Path
) -> None:
    put_datastore(server, azurite, container, "remote")
    inputs = write_inputs(tmp_path / "in", 400)
    output = {"score": {"jobOutputType": "UriFolder", "uri": "azureml://datastores/remote/paths/results/"}}
    with server.client() as http, Reader(container) as reader:
        deploy_script(http, tmp_path, "remote-out", "main", SLOW_ECHO, miniBatchSize=5, maxConcurrencyPerInstance=2)
        name = invoke(http, "remote-out", str(inputs), outputData=output).json()["name"]
        job = wait_for_job(http, name)
        again = wait_for_job(http, invoke(http, "remote-out", str(inputs), outputData=output).json()["name"])

    assert job["properties"]["status"] == "Completed", job["properties"]
    assert container.download_blob("results/predictions.csv").readall() == rows(400)
    assert reader.seen and set(reader.seen) == {rows(400)}, "a reader saw a partial predictions file"
    assert reader.listed == {"results/predictions.csv"}, "only the predictions file is published"
    assert again["properties"]["status"] == "Failed"
    assert (
        "The output file 'predictions.csv' already exists in 'azureml://datastores/remote/paths/results/'"
        in (again["properties"]["error"]["message"])
    )
    assert container.download_blob("results/predictions.csv").readall() == rows(400)


HIDDEN_WRITER = """
import os
from pathlib import Path

def run(mini_batch):
    side = Path(os.environ["AZUREML_BI_OUTPUT_PATH"], ".side")
    side.mkdir(exist_ok=True)
    (side / ".note.txt").write_text("noted")
    return [os.path.basename(path) for path in mini_batch]
"""


def test_an_output_file_named_with_a_leading_dot_is_uploaded_with_the_scripts_hidden_files(
    server: Server, azurite: Azurite, container: ContainerClient, tmp_path: Path
) -> None:
    """Every file but the job's logs and private folder reaches the datastore, whatever its name; before, a name
    starting with '.' never did, yet the job completed."""
    put_datastore(server, azurite, container, "remote")
    inputs = write_inputs(tmp_path / "in", 3)
    output = {"score": {"jobOutputType": "UriFolder", "uri": "azureml://datastores/remote/paths/results/"}}
    with server.client() as http:
        deploy_script(http, tmp_path, "dot-out", "main", HIDDEN_WRITER, miniBatchSize=1)
        name = invoke(http, "dot-out", str(inputs), outputData=output, outputFileName=".preds.csv").json()["name"]
        job = wait_for_job(http, name)

    assert job["properties"]["status"] == "Completed", job["properties"]
    assert sorted(blob.name for blob in container.list_blobs()) == ["results/.preds.csv", "results/.side/.note.txt"]
    assert container.download_blob("results/.preds.csv").readall() == rows(3)
    assert container.download_blob("results/.side/.note.txt").readall() == b"noted"


def test_a_job_on_a_blob_default_datastore_survives_kill_9_with_its_output_whole(
    server: Server, azurite: Azurite, container: ContainerClient, tmp_path: Path
) -> None:
    put_datastore(server, azurite, container, "workspaceblobstore")  # the default output goes there now
    files = 2000
    inputs = write_inputs(tmp_path / "in", files)
    with Reader(container) as reader:
        with server.client() as http:
            deploy_script(
                http, tmp_path, "remote-kill", "main", SLOW_ECHO, miniBatchSize=10, maxConcurrencyPerInstance=2
            )
            name = invoke(http, "remote-kill", str(inputs)).json()["name"]
        for moment in (0.3, 0.7):
            kill_when(server, name, moment)
            server.start()
        with server.client() as http:
            job = wait_for_job(http, name, timeout=120)

    assert job["properties"]["status"] == "Completed", job["properties"]
    predictions = f"azureml/{name}/score/predictions.csv"
    assert container.download_blob(predictions).readall() == rows(files)
    assert set(reader.seen) <= {rows(files)}, "a reader saw a partial predictions file"
    assert reader.listed == {predictions}
