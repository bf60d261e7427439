"""A job reads its input from an AzureBlob datastore on Azurite: the files are fetched, then scored."""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

from tests.api.jobs import V, deploy_script, invoke, predictions, wait_for_job
from tests.azurite import Azurite, azurite, datastore_properties  # noqa: F401 - azurite is a fixture
from tests.server import WORKSPACE_ID, Server

ECHO = (
    "import os\n\ndef init():\n    pass\n\ndef run(mini_batch):\n    return [os.path.basename(p) for p in mini_batch]\n"
)


def test_a_job_scores_files_of_a_remote_datastore(server: Server, azurite: Azurite, local_data: Path) -> None:
    container = f"c{uuid.uuid4().hex}"
    with azurite.service() as service:
        client = service.create_container(container)
        for index in range(5):
            client.upload_blob(f"in/part-{index}.csv", f"{index}\n".encode())
    with server.client() as http:
        body = {"properties": datastore_properties(azurite, container)}
        assert http.put(f"{WORKSPACE_ID}/datastores/remoteinput", params=V, json=body).status_code == 201
        deploy_script(http, Path(tempfile.mkdtemp(dir=local_data)), "remote-ep", "main", ECHO, miniBatchSize=2)
        answer = invoke(http, "remote-ep", "azureml://datastores/remoteinput/paths/in/").json()
        job = wait_for_job(http, answer["name"])
    assert job["properties"]["status"] == "Completed", job["properties"]
    assert predictions(server.home, answer["name"]) == [f"part-{index}.csv" for index in range(5)]
