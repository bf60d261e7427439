"""Passing faults pause a job instead of failing it: every database connection cut, or a full disk while the output
is written; the job completes once the fault has passed, with every row exactly once. A request that meets the
database down is told to try again (503 with Retry-After), never answered 500."""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from batchpoint.cluster.faults import describe
from batchpoint.runtime.executor import TransientFault
from tests.api.jobs import V, deploy_script, invoke, predictions, write_inputs
from tests.cluster.replicas import SLOW_ECHO, done_fraction, input_names, job_of, wait_for_end, wait_until
from tests.conftest import database_url_for
from tests.server import POSTGRES_ADMIN_URL, WORKSPACE_ID, Server

FILES = 1000
EXPECTED = input_names(FILES)
SLOWER_ECHO = SLOW_ECHO.replace("time.sleep(0.01)", "time.sleep(0.1)")
"""Slow enough that the job still runs when the fault comes."""


def terminate_backends(database: str) -> int:
    """Cut every connection to `database` (this test's own), as a restart of PostgreSQL would."""
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchall()
    return len(rows)


@contextlib.contextmanager
def database_down(database: str) -> Iterator[None]:
    """`database` refuses new connections and loses its open ones, as while PostgreSQL restarts."""
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        try:
            terminate_backends(database)
            yield
        finally:
            admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')


def test_a_request_that_meets_the_database_down_is_told_to_try_again(tmp_path: Path) -> None:
    database_url = database_url_for("postgresql")
    assert database_url is not None
    server = Server(home=tmp_path / "home", database_url=database_url).start()
    try:
        with server.client() as client:
            with database_down(database_url.rsplit("/", 1)[1]):
                down = client.get(f"{WORKSPACE_ID}/batchEndpoints/absent", params=V)
            again = client.get(f"{WORKSPACE_ID}/batchEndpoints/absent", params=V)
    finally:
        server.stop()
    assert down.status_code == 503, down.text
    assert down.headers["Retry-After"] == "2"
    assert down.json()["error"]["code"] == "ServiceUnavailable"
    assert again.status_code == 404, again.text


def test_a_job_completes_although_every_database_connection_is_cut_while_it_runs(tmp_path: Path) -> None:
    database_url = database_url_for("postgresql")
    assert database_url is not None
    data = tmp_path / "data"
    inputs = write_inputs(data / "in", FILES)
    server = Server(home=tmp_path / "home", database_url=database_url, args=["--allow-local-path", str(data)]).start()
    try:
        with server.client() as client:
            deploy_script(client, data, "cut", "dep", SLOWER_ECHO, miniBatchSize=10, maxConcurrencyPerInstance=2)
            name = invoke(client, "cut", str(inputs)).json()["name"]
        wait_until(lambda: done_fraction(server, name) >= 0.1, 120, "the job to be under way")
        cut = 0
        for _ in range(10):
            cut += terminate_backends(database_url.rsplit("/", 1)[1])
            time.sleep(0.2)
        during = job_of(server, name)
        job = wait_for_end(server, name, timeout=120)
    finally:
        server.stop()
    assert cut > 0
    assert during["status"] == "Running", "the job ended before its connections were cut"
    assert job["status"] == "Completed", job
    assert predictions(server.home, name) == EXPECTED


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MB tmpfs, mounted for the test (root only: CI runs as root)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount_point)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "--lazy", str(mount_point)], check=True)


def fill(disk: Path) -> Path:
    """Write a ballast file until the disk is full."""
    ballast = disk / "ballast"
    with open(ballast, "wb", buffering=0) as out, pytest.raises(OSError) as full:
        while True:
            out.write(b"\0" * (1 << 16))
    assert full.value.errno == errno.ENOSPC
    return ballast


def paused(seen: list[dict[str, Any]], job: dict[str, Any]) -> bool:
    if job.get("statusMessage", "").startswith("Paused"):
        seen.append(job)
    return bool(seen)


def test_a_full_disk_pauses_the_job_until_space_comes_back(tmp_path: Path, small_disk: Path) -> None:
    data = tmp_path / "data"
    inputs = write_inputs(data / "in", FILES)
    output = small_disk / "out"
    args = ["--allow-local-path", str(data), "--allow-local-path", str(small_disk)]
    server = Server(home=tmp_path / "home", args=args).start()
    try:
        with server.client() as client:
            deploy_script(client, data, "full", "dep", SLOWER_ECHO, miniBatchSize=10, maxConcurrencyPerInstance=2)
            output_data = {"score": {"jobOutputType": "UriFolder", "uri": str(output)}}
            name = invoke(client, "full", str(inputs), outputData=output_data).json()["name"]
        wait_until(lambda: done_fraction(server, name) >= 0.1, 120, "the job to be under way")
        ballast = fill(small_disk)
        seen: list[dict[str, Any]] = []
        wait_until(lambda: paused(seen, job_of(server, name)), 30, "the job to pause")
        time.sleep(2)
        while_full = job_of(server, name)
        ballast.unlink()
        job = wait_for_end(server, name, timeout=120)
    finally:
        server.stop()
    assert seen[0]["status"] == "Running", seen[0]
    assert "the disk is full" in seen[0]["statusMessage"]
    assert while_full["status"] == "Running", while_full
    assert job["status"] == "Completed", job
    assert (output / "predictions.csv").read_text().splitlines() == EXPECTED
    assert sorted(path.name for path in output.iterdir()) == ["logs", "predictions.csv"]


@pytest.mark.parametrize(
    ("error", "described"),
    [
        (OSError(errno.ENOSPC, "No space left on device", "/data/out"), "the disk is full (/data/out)"),
        (sqlite3.OperationalError("database is locked"), "the database is unavailable"),
        (sqlite3.IntegrityError("UNIQUE constraint failed: jobs.key"), "IntegrityError: UNIQUE constraint failed"),
        (TransientFault("the node of the Ray worker process000 is out of space"), "the node of the Ray worker"),
        (ValueError("first line\nsecond line"), "ValueError: first line"),
    ],
    ids=["full-disk", "database-down", "integrity", "executor-fault", "other"],
)
def test_a_job_status_message_says_what_went_wrong_in_one_line(error: Exception, described: str) -> None:
    """Paused jobs say why, and since jobs failed outside their script say it too, a constraint violation no longer
    reads 'the database is unavailable'."""
    assert describe(error).startswith(described)
    assert "\n" not in describe(error)
