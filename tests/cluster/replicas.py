"""Two `batchpoint serve` replicas on one PostgreSQL database: each its own data directory, one shared storage root."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.api.jobs import TERMINAL, V
from tests.server import WORKSPACE_ID, Server

LEASE_SECONDS = 3.0
SLOW_ECHO = """
import os
import time

def run(mini_batch):
    time.sleep(0.01)
    return [os.path.basename(path) for path in mini_batch]
"""
"""A scoring script whose rows are its files' names, slow enough to be caught mid-job."""


def input_names(count: int) -> list[str]:
    """The rows SLOW_ECHO writes for `write_inputs(folder, count)`, in input order."""
    return [f"f{index:05d}.txt" for index in range(count)]


@dataclass
class Replicas:
    a: Server
    b: Server
    shared: Path
    """The shared storage root, which also holds the tests' inputs and code."""

    def outputs(self, job_name: str) -> list[Path]:
        return list((self.shared / "storage").glob(f"*/azureml-blobstore-*/azureml/{job_name}/score"))

    def predictions(self, job_name: str) -> list[str]:
        folders = self.outputs(job_name)
        assert len(folders) == 1, f"no output folder for {job_name}"
        return (folders[0] / "predictions.csv").read_text().splitlines()

    def stop(self) -> None:
        for server in (self.a, self.b):
            if server.process is not None and server.process.poll() is None:
                server.stop()


def replica(home: Path, database_url: str, shared: Path, env: dict[str, str] | None = None) -> Server:
    args = ["--storage-root", str(shared), "--allow-local-path", str(shared), "--lease-seconds", str(LEASE_SECONDS)]
    return Server(home=home, database_url=database_url, args=args, env=env or {})


def job_of(server: Server, name: str) -> dict[str, Any]:
    """The job as `server` shows it; a request that meets a passing fault (a 5xx) is asked again."""
    for _ in range(50):
        try:
            with server.client() as client:
                response = client.get(f"{WORKSPACE_ID}/jobs/{name}", params=V)
        except httpx.TransportError:
            response = None
        if response is not None and response.status_code == 200:
            return response.json()["properties"]
        time.sleep(0.1)
    raise AssertionError(f"could not read job {name} from {server.base_url}")


def done_fraction(server: Server, name: str) -> float:
    batches = job_of(server, name)["progress"]["miniBatches"]
    return (batches["succeeded"] + batches["failed"]) / batches["total"] if batches["total"] else 0.0


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Seconds it took for `condition` to hold."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"timed out waiting for {what}"
        time.sleep(0.05)
    return time.monotonic() - started


def wait_for_end(server: Server, name: str, timeout: float) -> dict[str, Any]:
    wait_until(lambda: job_of(server, name)["status"] in TERMINAL, timeout, f"job {name} to end")
    return job_of(server, name)
