"""Requests racing each other: each gets a proper answer (never a 500), and the database keeps one of each thing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from threading import Barrier

import httpx
import pytest

from tests.api.arm import endpoint_body, endpoint_url, wait_for_operation
from tests.api.jobs import V, deploy_script, invoke, wait_for_job, write_inputs
from tests.conftest import ALL_BACKENDS, database_url_for
from tests.server import WORKSPACE_ID, Server

RACERS = 8
ECHO = """
def init():
    pass

def run(mini_batch):
    return mini_batch
"""


@pytest.fixture(scope="module", params=ALL_BACKENDS)
def race_server(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Server]:
    """On both databases whatever BATCHPOINT_TEST_BACKENDS says: how a race resolves is the database's doing."""
    backend = request.param
    home = tmp_path_factory.mktemp("home")
    (home / "data").mkdir()
    server = Server(home=home, database_url=database_url_for(backend), args=["--allow-local-path", str(home / "data")])
    yield server.start()
    server.stop()


def at_once(server: Server, request: Callable[[httpx.Client], httpx.Response]) -> list[httpx.Response]:
    """``RACERS`` clients send ``request`` at the same moment."""
    start = Barrier(RACERS)

    def race(_: int) -> httpx.Response:
        with server.client() as client:
            start.wait()
            return request(client)

    with ThreadPoolExecutor(RACERS) as pool:
        return list(pool.map(race, range(RACERS)))


@pytest.mark.parametrize("round_", range(3))
def test_racing_creates_of_one_asset_version_answer_created_ok_or_conflict(race_server: Server, round_: int) -> None:
    version = f"{WORKSPACE_ID}/models/raced-{round_}/versions/1"
    body = {"properties": {"modelUri": "azureml://datastores/workspaceblobstore/paths/model/"}}

    answers = at_once(race_server, lambda client: client.put(version, params=V, json=body))

    assert [answer.status_code for answer in answers].count(201) == 1, [answer.text for answer in answers]
    assert all(answer.status_code in (200, 201, 409) for answer in answers), [answer.text for answer in answers]
    assert {answer.json()["error"]["code"] for answer in answers if answer.status_code == 409} <= {"Conflict"}
    with race_server.client() as client:
        listed = client.get(f"{WORKSPACE_ID}/models/raced-{round_}/versions", params=V).json()["value"]
    assert [item["name"] for item in listed] == ["1"]


def test_racing_creates_of_one_endpoint_claim_one_operation(race_server: Server) -> None:
    url = endpoint_url("raced")

    answers = at_once(race_server, lambda client: client.put(url, params=V, json=endpoint_body()))

    created = [answer for answer in answers if answer.status_code == 201]
    assert len(created) == 1, [answer.text for answer in answers]
    assert all(answer.status_code in (200, 201, 409) for answer in answers), [answer.text for answer in answers]
    with race_server.client() as client:
        assert wait_for_operation(client, created[0]).json()["status"] == "Succeeded"
        assert client.get(url, params=V).json()["properties"]["provisioningState"] == "Succeeded"


def test_racing_invokes_with_one_repeatability_id_make_one_job(race_server: Server) -> None:
    data = race_server.home / "data"
    inputs = write_inputs(Path(data) / "inputs", 3)
    with race_server.client() as client:
        deploy_script(client, data, "raced-invoke", "dep", ECHO)

    answers = at_once(
        race_server,
        lambda client: invoke(client, "raced-invoke", str(inputs), {"repeatability-request-id": "one-request"}),
    )

    assert {answer.status_code for answer in answers} == {200}, [answer.text for answer in answers]
    assert len({answer.json()["name"] for answer in answers}) == 1
    with race_server.client() as client:
        job = wait_for_job(client, answers[0].json()["name"])
        listed = client.get(f"{WORKSPACE_ID}/jobs", params=V).json()["value"]
    assert job["properties"]["status"] == "Completed"
    assert sorted(each["name"] for each in listed) == [job["name"], f"{job['name']}-batchscoring"]  # one job, its step


def test_replicas_starting_together_on_a_new_database_all_start(tmp_path: Path) -> None:
    database = database_url_for("postgresql")
    replicas = [Server(home=tmp_path / f"replica-{index}", database_url=database) for index in range(3)]

    with ThreadPoolExecutor(len(replicas)) as pool:
        started = list(pool.map(Server.start, replicas))
    try:
        for replica in started:
            with replica.client() as client:
                assert client.get(WORKSPACE_ID, params=V).status_code == 200
    finally:
        for replica in started:
            replica.stop()
