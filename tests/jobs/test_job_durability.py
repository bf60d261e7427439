"""A job survives kill -9 of the server at any moment: after restarts its output holds every row exactly once, and
no worker outlives its server. Kill points come from a printed seed (`BATCHPOINT_KILL_SEED` replays them); the test
process is a child subreaper, so orphans are not re-parented to PID 1 and are found by their environment: the
server's by an entry of its own, its workers (which carry none of the server's environment) by their HOME, inside
the server's TMPDIR."""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.api.jobs import V, deploy_script, invoke, predictions, wait_for_job, write_inputs
from tests.processes import processes_with, reap
from tests.runtime.conftest import check_completed_report, report
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


def kill_when(
    server: Server, name: str, fraction: float, before: Callable[[], None] = lambda: None, timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while progress(server, name) < fraction:
        assert time.monotonic() < deadline, "the job made no progress"
        time.sleep(0.02)
    before()
    server.stop(signal.SIGKILL)


def server_processes(tmp_path: Path) -> list[int]:
    """The server's processes: itself, and its workers (their folders are in its TMPDIR)."""
    return processes_with(f"BATCHPOINT_TEST_SERVER={tmp_path}") + processes_with(f"HOME={tmp_path / 'tmp'}/", True)


def wait_until_gone(tmp_path: Path, seed: int, seconds: float = 5) -> None:
    """Every process of the server is gone in time."""
    deadline = time.monotonic() + seconds
    while left := server_processes(tmp_path):
        assert time.monotonic() < deadline, f"seed {seed}: processes outlived their server: {left}"
        time.sleep(0.05)


def killable_job(tmp_path: Path, endpoint: str, script: str, files: int) -> tuple[Server, str]:
    """A started server whose processes are found by `tmp_path`, running a job of `script` over `files` files in
    mini-batches of 10 on 2 workers; the server and the job's name."""
    data = tmp_path / "data"
    inputs = write_inputs(data / "in", files)
    (tmp_path / "tmp").mkdir()
    environment = {"BATCHPOINT_TEST_SERVER": str(tmp_path), "TMPDIR": str(tmp_path / "tmp")}
    server = Server(home=tmp_path / "home", args=["--allow-local-path", str(data)], env=environment).start()
    try:
        with server.client() as client:
            deploy_script(client, data, endpoint, "dep", script, miniBatchSize=10, maxConcurrencyPerInstance=2)
            return server, invoke(client, endpoint, str(inputs)).json()["name"]
    except BaseException:
        server.stop()
        raise


def kill_and_start_again(server: Server, name: str, moment: float, seen: set[int], seed: int) -> None:
    """kill -9 of the server at `moment` of job `name` (its processes added to `seen`), every process of it gone
    and reaped, then the server started again."""
    tmp_path = server.home.parent
    kill_when(server, name, moment, lambda: seen.update(server_processes(tmp_path)))
    wait_until_gone(tmp_path, seed)
    reap(seen)
    server.start()


def ended_job(server: Server, name: str) -> dict[str, Any]:
    with server.client() as client:
        return wait_for_job(client, name, timeout=120)


def stop_if_running(server: Server) -> None:
    if server.process and server.process.poll() is None:
        server.stop()


def test_job_survives_repeated_kill_9(tmp_path: Path, subreaper: None, kill_seed: int) -> None:
    server, name = killable_job(tmp_path, "durable", SLOW_ECHO, FILES)
    seen: set[int] = set()
    try:
        draw = random.Random(kill_seed)
        for moment in sorted(draw.uniform(low, low + 0.2) for low in (0.1, 0.4, 0.65)):
            kill_and_start_again(server, name, moment, seen, kill_seed)
            assert len(seen) > 1, f"seed {kill_seed}: no worker of the server found: {seen}"
        job = ended_job(server, name)
    finally:
        stop_if_running(server)
    assert job["properties"]["status"] == "Completed", f"seed {kill_seed}: {job['properties']}"
    assert predictions(server.home, name) == [f"f{index:05d}.txt" for index in range(FILES)], f"seed {kill_seed}"
    logs = next((server.home / "storage").glob(f"*/azureml-blobstore-*/azureml/{name}/score/logs"))
    check_completed_report(logs, FILES // 10, FILES)
    assert len(list(logs.glob("job_progress_overview.*.txt"))) >= 1
    wait_until_gone(tmp_path, kill_seed)


FAILS_EVERY_20TH = """
import os
import time

def run(mini_batch):
    time.sleep(0.01)
    names = [os.path.basename(path) for path in mini_batch]
    if int(names[0][1:6]) % 200 == 0:
        raise ValueError("cannot score this mini-batch")
    return names
"""
"""Mini-batches 0, 20, 40, ... of 10 files fail on every try."""


def test_a_failing_jobs_logs_stay_consistent_through_kill_9(tmp_path: Path, subreaper: None, kill_seed: int) -> None:
    """After a kill -9 mid-job and a resume: one final row per mini-batch in processed_mini-batches.csv (the
    failing ones RUN_EXCEPTION after all their tries, the others RUN_DONE), and job_error.txt counting exactly the
    failed tries the CSV lists, with the traceback and the file that holds it."""
    files, failing = 1000, set(range(0, 100, 20))
    server, name = killable_job(tmp_path, "failing", FAILS_EVERY_20TH, files)
    inputs = tmp_path / "data" / "in"
    seen: set[int] = set()
    try:
        kill_and_start_again(server, name, random.Random(kill_seed).uniform(0.2, 0.6), seen, kill_seed)
        job = ended_job(server, name)
    finally:
        stop_if_running(server)
    assert job["properties"]["status"] == "Completed", f"seed {kill_seed}: {job['properties']}"
    logs = next((server.home / "storage").glob(f"*/azureml-blobstore-*/azureml/{name}/score/logs"))
    rows = report(logs)
    final = {int(row["Mini-batch Id"]): row for row in rows}
    assert sorted(final) == list(range(files // 10)), f"seed {kill_seed}"
    assert {index for index, row in final.items() if row["Status"] == "RUN_EXCEPTION"} == failing, f"seed {kill_seed}"
    assert {row["Status"] for index, row in final.items() if index not in failing} == {"RUN_DONE"}
    failed_tries = [row for row in rows if row["Status"] == "RUN_EXCEPTION"]
    assert all(int(row["Picked Count"]) <= 4 for row in failed_tries), f"seed {kill_seed}"
    assert {int(final[index]["Picked Count"]) for index in failing} == {4}, f"seed {kill_seed}"
    job_error = (logs / "job_error.txt").read_text()
    assert f"RUN_EXCEPTION: ValueError: cannot score this mini-batch\n   {len(failed_tries)} times;" in job_error
    assert 'raise ValueError("cannot score this mini-batch")' in job_error and "Details: logs/user/error/" in job_error
    assert (logs / "failed_items.txt").read_text().splitlines() == [
        str(inputs / f"f{index * 10 + offset:05d}.txt") for index in sorted(failing) for offset in range(10)
    ]
