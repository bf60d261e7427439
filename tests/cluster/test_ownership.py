"""Jobs are owned by one replica at a time through leases: when the owner dies or stops, another replica takes the
job over and finishes it exactly once; a cancel reaches whichever replica owns the job, and outlives restarts."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy

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
from tests.jobs.test_placement import deploy_gated, one_running_one_queued
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


def queued_behind_a_gated_job(pair: Replicas, endpoint: str) -> tuple[Path, Path, str, str]:
    """On A, a one-node compute: a first job running (its run() waits for the gate file), a second queued behind it.
    Returns the gate, the input folder and the two jobs."""
    inputs = write_inputs(pair.shared / f"in-{endpoint}", 2)
    with pair.a.client() as client:
        gate = deploy_gated(client, pair.shared, endpoint, endpoint, endpoint)  # a compute of its name
        first, second = one_running_one_queued(client, endpoint, inputs)
    return gate, inputs, first, second


def invoke_through_a_completes(pair: Replicas, endpoint: str, inputs: Path) -> None:
    """A later job through A on the same compute starts and completes: nothing waits ahead of it in A's queue."""
    with pair.a.client() as client:
        third = invoke(client, endpoint, str(inputs)).json()["name"]
    assert wait_for_end(pair.a, third, timeout=30)["status"] == "Completed"
    assert pair.predictions(third) == input_names(2)


def lease_epoch(pair: Replicas, name: str) -> int:
    """How many times the job's lease was claimed (0 once it ended)."""
    assert pair.a.database_url is not None
    engine = sqlalchemy.create_engine(pair.a.database_url)
    try:
        with engine.connect() as connection:
            query = sqlalchemy.text("SELECT max(epoch) FROM leases WHERE subject LIKE :subject")
            return connection.execute(query, {"subject": f"%/jobs/{name}"}).scalar() or 0
    finally:
        engine.dispose()


def test_a_queued_job_taken_over_from_a_frozen_replica_holds_back_no_later_job_there(replicas: Replicas) -> None:
    gate, inputs, first, second = queued_behind_a_gated_job(replicas, "frozen-queue")
    assert replicas.a.process is not None
    os.kill(replicas.a.process.pid, signal.SIGSTOP)
    try:
        wait_until(lambda: lease_epoch(replicas, second) >= 2, LEASE_SECONDS + 30, "B to take the queued job over")
        wait_until(lambda: lease_epoch(replicas, first) >= 2, LEASE_SECONDS + 30, "B to take the running job over")
    finally:
        os.kill(replicas.a.process.pid, signal.SIGCONT)
    log = replicas.a.home / f"server-{replicas.a.port}.log"
    wait_until(lambda: "lost the lease" in log.read_text(errors="replace"), 30, "A to stop the job it lost")
    gate.touch()
    assert wait_for_end(replicas.b, first, timeout=30)["status"] == "Completed"
    assert wait_for_end(replicas.b, second, timeout=30)["status"] == "Completed"

    invoke_through_a_completes(replicas, "frozen-queue", inputs)


def test_a_queued_job_canceled_through_another_replica_ends_at_once(replicas: Replicas) -> None:
    gate, inputs, first, second = queued_behind_a_gated_job(replicas, "cancel-queued")
    with replicas.b.client() as client:
        assert client.post(f"{WORKSPACE_ID}/jobs/{second}/cancel", params=V).status_code == 200

    assert wait_for_end(replicas.a, second, timeout=10)["status"] == "Canceled"
    gate.touch()
    assert wait_for_end(replicas.a, first, timeout=30)["status"] == "Completed"
    invoke_through_a_completes(replicas, "cancel-queued", inputs)
