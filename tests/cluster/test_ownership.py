"""Jobs are owned by one replica at a time through leases: when the owner dies or stops, another replica takes the
job over and finishes it exactly once; a cancel reaches whichever replica owns the job, and outlives restarts."""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.api.jobs import TERMINAL, V, deploy_script, invoke, write_inputs
from tests.cluster.replicas import (
    LEASE_SECONDS,
    SLOW_ECHO,
    Replicas,
    done_fraction,
    input_names,
    job_of,
    wait_for_end,
    wait_until,
)
from tests.server import WORKSPACE_ID, Server

FILES = 3000
EXPECTED = input_names(FILES)
TAKEOVER_ECHO = SLOW_ECHO.replace("time.sleep(0.01)", "time.sleep(0.03)")
"""A few seconds of work, so that a good part of it is left when A stops."""
SLOWER_ECHO = SLOW_ECHO.replace("time.sleep(0.01)", "time.sleep(0.2)")
"""Slow enough that a job is still running when its cancel arrives."""


def start_long_job(pair: Replicas, endpoint: str, script: str) -> str:
    """A job of FILES files invoked through A (which has room, so A runs it), mid-way when this returns."""
    inputs = write_inputs(pair.shared / f"in-{endpoint}", FILES)
    with pair.a.client() as client:
        deploy_script(client, pair.shared, endpoint, "dep", script, miniBatchSize=20, maxConcurrencyPerInstance=2)
        name = invoke(client, endpoint, str(inputs)).json()["name"]
    wait_until(lambda: done_fraction(pair.a, name) >= 0.2, 120, "the job to be under way on A")
    return name


def assert_no_private_state(pair: Replicas, name: str) -> None:
    for folder in pair.outputs(name):
        assert not (folder / ".batchpoint").exists()
        assert not [path.name for path in folder.iterdir() if path.name.startswith(".")]


@pytest.mark.parametrize("stop_signal", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
def test_a_job_whose_replica_dies_or_stops_is_finished_by_the_other_exactly_once(
    replicas: Replicas, stop_signal: signal.Signals
) -> None:
    name = start_long_job(replicas, f"takeover-{stop_signal.name.lower()}", TAKEOVER_ECHO)
    stopped_at = time.monotonic()
    assert replicas.a.stop(stop_signal) in (0, -stop_signal)
    if stop_signal == signal.SIGTERM:
        assert time.monotonic() - stopped_at < 10, "a stopping replica must hand its work over within 10 s"
    assert job_of(replicas.b, name)["status"] not in TERMINAL, "A finished the job before it stopped"

    job = wait_for_end(replicas.b, name, timeout=LEASE_SECONDS + 60)
    took = time.monotonic() - stopped_at

    assert job["status"] == "Completed", job
    assert took < LEASE_SECONDS + 10, f"B finished {took:.1f} s after A stopped"
    assert replicas.predictions(name) == EXPECTED
    assert_no_private_state(replicas, name)


def test_a_cancel_sent_to_another_replica_stops_the_job_within_5_seconds(replicas: Replicas) -> None:
    name = start_long_job(replicas, "cancel-remote", SLOWER_ECHO)
    asked = time.monotonic()
    with replicas.b.client() as client:
        assert client.post(f"{WORKSPACE_ID}/jobs/{name}/cancel", params=V).status_code == 200

    job = wait_for_end(replicas.a, name, timeout=30)

    assert job["status"] == "Canceled", job
    assert time.monotonic() - asked < 5
    assert not any((folder / "predictions.csv").exists() for folder in replicas.outputs(name))
    assert_no_private_state(replicas, name)


def test_a_cancel_survives_a_restart_of_both_replicas(replicas: Replicas) -> None:
    name = start_long_job(replicas, "cancel-restart", SLOWER_ECHO)
    replicas.a.stop(signal.SIGKILL)
    with replicas.b.client() as client:  # A's lease has not expired: B cannot have taken the job over yet
        assert client.post(f"{WORKSPACE_ID}/jobs/{name}/cancel", params=V).status_code == 200
    replicas.b.stop(signal.SIGKILL)
    replicas.a.start()
    replicas.b.start()

    job = wait_for_end(replicas.b, name, timeout=LEASE_SECONDS + 30)

    assert job["status"] == "Canceled", job
    assert not any((folder / "predictions.csv").exists() for folder in replicas.outputs(name))


def test_repeated_invokes_racing_on_both_replicas_make_one_job_each(replicas: Replicas) -> None:
    empty = replicas.shared / "empty"
    empty.mkdir()
    with replicas.a.client() as client:
        deploy_script(client, replicas.shared, "repeat", "dep", SLOW_ECHO)
    request_ids = [f"request-{index:03d}" for index in range(100)]

    def send(server: Server, request_id: str) -> str:
        with server.client() as client:
            response = invoke(client, "repeat", str(empty), headers={"repeatability-request-id": request_id})
        assert response.status_code in (200, 201, 202), response.text
        return response.json()["name"]

    with ThreadPoolExecutor(max_workers=16) as pool:
        pairs = [(pool.submit(send, replicas.a, rid), pool.submit(send, replicas.b, rid)) for rid in request_ids]
        names = [(first.result(), second.result()) for first, second in pairs]

    assert all(first == second for first, second in names)
    assert len({first for first, _ in names}) == 100
    assert len(jobs_of_endpoint(replicas.b, "repeat")) == 100


def jobs_of_endpoint(server: Server, endpoint: str) -> list[str]:
    names, url = [], f"{WORKSPACE_ID}/jobs"
    params: dict[str, str] | None = dict(V)
    with server.client() as client:
        while url:
            page = client.get(url, params=params).json()
            names += [
                job["name"]
                for job in page["value"]
                if job["properties"]["properties"].get("azureml.endpointname") == endpoint
            ]
            url, params = page.get("nextLink"), None  # httpx drops a URL's own query when given params={}
    return names
