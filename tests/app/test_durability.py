"""Restarts lose nothing; an operation cut short by a crash finishes after the restart; conflicts get 409."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from tests.api.arm import (
    create_endpoint,
    deployment_body,
    deployment_url,
    endpoint_body,
    endpoint_url,
    wait_for_operation,
)
from tests.conftest import ALL_BACKENDS, database_url_for
from tests.server import API, Server

V = {"api-version": API}


@pytest.fixture(scope="module", params=ALL_BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Durability is the database's business: these tests always run on both."""
    return request.param


def started(tmp_path_factory: pytest.TempPathFactory, backend: str, env: dict[str, str]) -> Iterator[Server]:
    server = Server(home=tmp_path_factory.mktemp("home"), database_url=database_url_for(backend), env=env).start()
    yield server
    if server.process and server.process.poll() is None:
        server.stop()


@pytest.fixture
def slow_server(tmp_path_factory: pytest.TempPathFactory, backend: str) -> Iterator[Server]:
    """Provisioning held in progress for four seconds, so a test can act while it runs."""
    yield from started(tmp_path_factory, backend, {"BATCHPOINT_PROVISIONING_DELAY": "4"})


@pytest.fixture
def fresh_server(tmp_path_factory: pytest.TempPathFactory, backend: str) -> Iterator[Server]:
    yield from started(tmp_path_factory, backend, {})


def test_restart_keeps_every_resource(fresh_server: Server) -> None:
    with fresh_server.client() as client:
        create_endpoint(client, "kept", authMode="Key")
        wait_for_operation(client, client.put(deployment_url("kept", "dep-1"), params=V, json=deployment_body()))
        keys = client.post(endpoint_url("kept") + "/listkeys", params=V).json()
    assert fresh_server.stop() == 0
    fresh_server.start()
    with fresh_server.client() as client:
        endpoint = client.get(endpoint_url("kept"), params=V).json()
        deployment = client.get(deployment_url("kept", "dep-1"), params=V).json()
        assert client.post(endpoint_url("kept") + "/listkeys", params=V).json() == keys
    assert endpoint["properties"]["provisioningState"] == "Succeeded"
    assert deployment["properties"]["provisioningState"] == "Succeeded"


def test_operation_interrupted_by_a_crash_completes_after_restart(slow_server: Server) -> None:
    with slow_server.client() as client:
        created = client.put(endpoint_url("crashy"), params=V, json=endpoint_body())
        assert created.status_code == 201
    slow_server.stop(signal.SIGKILL)
    slow_server.start()
    with slow_server.client() as client:
        assert wait_for_operation(client, created).json()["status"] == "Succeeded"
        endpoint = client.get(endpoint_url("crashy"), params=V).json()
    assert endpoint["properties"]["provisioningState"] == "Succeeded"


def test_writes_during_a_running_operation_get_409(slow_server: Server) -> None:
    with slow_server.client() as client:
        created = client.put(endpoint_url("busy"), params=V, json=endpoint_body())
        second_put = client.put(endpoint_url("busy"), params=V, json=endpoint_body(description="again"))
        delete = client.delete(endpoint_url("busy"), params=V)
        patch = client.patch(endpoint_url("busy"), params=V, json={"tags": {"a": "b"}})
        polled = client.get(created.headers["Azure-AsyncOperation"])
        in_progress = polled.json()
        wait_for_operation(client, created)
        after = client.put(endpoint_url("busy"), params=V, json=endpoint_body(description="again"))
    assert [second_put.status_code, delete.status_code, patch.status_code] == [409, 409, 409]
    assert second_put.json()["error"]["code"] == "Conflict"
    assert in_progress["status"] == "InProgress" and polled.headers["Retry-After"] == "1"
    assert after.status_code == 200 and after.headers["Azure-AsyncOperation"]
