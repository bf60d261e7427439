"""A job survives kill -9 of the server at any moment: after restarts its output holds every row exactly once."""

from __future__ import annotations

import random
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.jobs import V, deploy_script, invoke, predictions, wait_for_job, write_inputs
from tests.server import WORKSPACE_ID, Server

FILES = 5000
SLOW_ECHO = """
import os
import time

def init():
    pass

def run(mini_batch):
    time.sleep(0.01)
    return [os.path.basename(path) for path in mini_batch]
"""


def progress(server: Server, name: str) -> float:
    with server.client() as client:
        job = client.get(f"{WORKSPACE_ID}/jobs/{name}", params=V).json()["properties"]
    batches = job["progress"]["miniBatches"]
    return (batches["succeeded"] + batches["failed"]) / batches["total"] if batches["total"] else 0.0


def kill_when(server: Server, name: str, fraction: float, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while progress(server, name) < fraction:
        assert time.monotonic() < deadline, "the job made no progress"
        time.sleep(0.02)
    server.stop(signal.SIGKILL)


def test_job_survives_repeated_kill_9(tmp_path: Path) -> None:
    data = tmp_path / "data"
    inputs = write_inputs(data / "in", FILES)
    server = Server(home=tmp_path / "home", args=["--allow-local-path", str(data)]).start()
    try:
        with server.client() as client:
            deploy_script(client, data, "durable", "d", SLOW_ECHO, miniBatchSize=10, maxConcurrencyPerInstance=2)
            name = invoke(client, "durable", str(inputs)).json()["name"]
        moments = sorted(random.uniform(low, low + 0.2) for low in (0.1, 0.4, 0.65))
        for moment in moments:
            kill_when(server, name, moment)
            server.start()
        with server.client() as client:
            job = wait_for_job(client, name, timeout=120)
    finally:
        if server.process and server.process.poll() is None:
            server.stop()
    assert job["properties"]["status"] == "Completed", job["properties"]
    assert predictions(server.home, name) == [f"f{index:05d}.txt" for index in range(FILES)]


def orphaned_workers() -> list[str]:
    """Worker processes whose server is gone (re-parented to init)."""
    table = subprocess.run(["ps", "-eo", "ppid=,args="], capture_output=True, text=True).stdout.splitlines()
    return [line for line in table if "batchpoint.runtime.worker" in line and line.split()[0] == "1"]


@pytest.fixture(autouse=True)
def _no_orphans_left() -> Iterator[None]:
    """Workers of a killed server die with it (parent-death signal): none may keep running, or writing."""
    yield
    time.sleep(0.5)
    assert not orphaned_workers()
