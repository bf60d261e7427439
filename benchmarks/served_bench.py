"""Served-path benchmark: a batch job as a user runs it, through a real server, against a multiprocessing.Pool.

A real user's path: ``batchpoint serve --http`` (SQLite, so the production SQL ledger), a code version and a
deployment created over HTTP, then per measured job an invoke over HTTP (``POST`` to the endpoint's scoring URI)
and polling ``GET`` of the job every 25 ms until it reads ``Completed``. The job: 2,000 files, mini-batches of
10, 2 workers, a ``run()`` that sleeps 1 ms per file. The baseline, in the same run, is runtime_bench's
hand-written spawn ``multiprocessing.Pool`` of 2 processes doing the same work (import the script, ``init()``,
``imap`` over the same mini-batches, rows written in order and fsynced). Both outputs must be byte-identical.

Usage: python benchmarks/served_bench.py [--no-fail] [--rounds N]
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runtime_bench import MARKS_ENV, POOL, SLEEP_ENV, Job, Run, first_run_time, run_pool, sha256
from runtime_bench import SCORING_SCRIPT as RUNTIME_SCRIPT
from targets import arguments, check, exit_status

if TYPE_CHECKING:
    import httpx

# httpx and api_bench (Starlette) are imported only in `benchmark`: the Pool's spawned processes import this
# module too, and must not pay for more than the baseline needs.

TICKS = os.sysconf("SC_CLK_TCK")
API = "2025-12-01"
WORKSPACE = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local"
    "/providers/Microsoft.MachineLearningServices/workspaces/default"
)

FILES = 2_000
MINI_BATCH_SIZE = 10
MINI_BATCHES = FILES // MINI_BATCH_SIZE
WORKERS = 2
SLEEP_PER_FILE = 0.001
POLL_SECONDS = 0.025
SERVED = "served"
TARGET_OVERHEAD_MS = 0.5
TARGET_RATIO = 0.9
ENDPOINT = "bench"
V = {"api-version": API}

PER_MINI_BATCH_SLEEP = "    if SLEEP:\n        time.sleep(SLEEP)\n"
assert PER_MINI_BATCH_SLEEP in RUNTIME_SCRIPT
SCORING_SCRIPT = RUNTIME_SCRIPT.replace(PER_MINI_BATCH_SLEEP, "    for _ in mini_batch:\n        time.sleep(SLEEP)\n")
"""runtime_bench's script with 1 ms of work per file; rows are the input file names."""


def write_inputs(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for index in range(FILES):
        (folder / f"f{index:06d}.txt").write_bytes(b"x\n")
    return folder


def deploy(client: httpx.Client, script: Path, marks: Path) -> str:
    """A code version, the endpoint and its default deployment (2 workers); returns the scoring URI."""
    code_id = f"{WORKSPACE}/codes/bench/versions/1"
    client.put(code_id, params=V, json={"properties": {"codeUri": str(script.parent)}}).raise_for_status()
    endpoint = f"{WORKSPACE}/batchEndpoints/{ENDPOINT}"
    put_and_wait(client, endpoint, {"location": "local", "properties": {"authMode": "AADToken"}})
    settings = {
        "codeConfiguration": {"codeId": code_id, "scoringScript": script.name},
        "miniBatchSize": MINI_BATCH_SIZE,
        "maxConcurrencyPerInstance": WORKERS,
        "environmentVariables": {SLEEP_ENV: repr(SLEEP_PER_FILE), MARKS_ENV: str(marks)},
    }
    put_and_wait(client, f"{endpoint}/deployments/main", {"location": "local", "properties": settings})
    body = client.get(endpoint, params=V).json()
    body["properties"]["defaults"] = {"deploymentName": "main"}
    put_and_wait(client, endpoint, body)
    return str(body["properties"]["scoringUri"])


def put_and_wait(client: httpx.Client, url: str, body: dict[str, Any], timeout: float = 60) -> None:
    """PUT a tracked resource and wait until it has provisioned."""
    client.put(url, params=V, json=body).raise_for_status()
    deadline = time.monotonic() + timeout
    while (state := client.get(url, params=V).json()["properties"].get("provisioningState")) not in ("Succeeded", None):
        if state == "Failed" or time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not provision: {client.get(url, params=V).text}")
        time.sleep(0.05)


@dataclass(frozen=True)
class Served:
    """The running server: its client, scoring URI, home and process id."""

    client: httpx.Client
    scoring_uri: str
    home: Path
    pid: int
    cpu_per_poll: float = 0.0
    """Server CPU seconds of one GET of a job, measured once; subtracted from a job's server CPU."""


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (its own threads, not its workers)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def run_served(served: Served, job: Job, number: int) -> Run:
    """Invoke over HTTP and poll the job until it is Completed: the time a user waits."""
    client, scoring_uri, home = served.client, served.scoring_uri, served.home
    name = f"served-{number}"
    body = {
        "properties": {"name": name, "inputData": {"in": {"jobInputType": "UriFolder", "uri": str(job.folders[0])}}}
    }
    started, clock, cpu = time.time(), time.perf_counter(), cpu_seconds(served.pid)
    client.post(scoring_uri, json=body).raise_for_status()
    polls = 1
    while (status := client.get(f"{WORKSPACE}/jobs/{name}", params=V).json()["properties"]["status"]) not in (
        "Completed", "Failed", "Canceled"
    ):  # fmt: skip
        time.sleep(POLL_SECONDS)
        polls += 1
    seconds, cpu = time.perf_counter() - clock, cpu_seconds(served.pid) - cpu - polls * served.cpu_per_poll
    if status != "Completed":
        raise RuntimeError(f"job {name} ended {status}")
    output = next((home / "storage").glob(f"*/azureml-blobstore-*/azureml/{name}/score/predictions.csv"))
    return Run(seconds, first_run_time(job.marks) - started, sha256(output), server_cpu=cpu)


def cpu_per_poll(served: Served, name: str, polls: int = 200) -> float:
    """Server CPU seconds of one GET of the job `name` (the user's polling, not the job's own cost)."""
    cpu = cpu_seconds(served.pid)
    for _ in range(polls):
        served.client.get(f"{WORKSPACE}/jobs/{name}", params=V).raise_for_status()
    return (cpu_seconds(served.pid) - cpu) / polls


def measure(runner: str, job: Job, served: Served, number: int) -> Run:
    job.marks.mkdir(parents=True)
    try:
        return run_pool(job) if runner == POOL else run_served(served, job, number)
    finally:
        shutil.rmtree(job.workdir)


def benchmark(rounds: int, workdir: Path) -> dict[str, list[Run]]:
    import httpx

    from api_bench import batchpoint_command, free_port, mint_token, running
    from batchpoint.app.sandboxing import TEST_READ_WRITE_VARIABLE

    inputs = write_inputs(workdir / "in")
    script = workdir / "code" / "score.py"
    script.parent.mkdir()
    script.write_text(SCORING_SCRIPT)
    home, port = workdir / "home", free_port()
    command = [*batchpoint_command(port, home), "--allow-local-path", str(workdir)]
    runs: dict[str, list[Run]] = {SERVED: [], POOL: []}
    marks = {TEST_READ_WRITE_VARIABLE: str(workdir / "job" / "marks")}  # the script's marks: outside its job
    with running(command, port, workdir / "server.log", marks) as server:
        headers = {"Authorization": f"Bearer {mint_token(home)}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=60) as client:
            job = Job((inputs,), script, SLEEP_PER_FILE, workdir / "job")
            served = Served(client, deploy(client, script, job.marks), home, server.pid)
            measure(SERVED, job, served, 0)  # warm-up: the server's first job imports more
            served = replace(served, cpu_per_poll=cpu_per_poll(served, "served-0"))
            print(f"  a GET of the job costs the server {served.cpu_per_poll * 1e3:.2f} ms of CPU", flush=True)
            for round_ in range(rounds):
                for runner in (SERVED, POOL) if round_ % 2 == 0 else (POOL, SERVED):
                    run = measure(runner, job, served, round_ + 1)
                    runs[runner].append(run)
                    print(f"  round {round_ + 1} {runner:<7} {run.seconds:6.2f} s, first run() after "
                          f"{run.first_run:.2f} s", flush=True)  # fmt: skip
    return runs


def report(runs: dict[str, list[Run]]) -> bool:
    """Per round, the served job against the Pool of the same round; the targets apply to the median round."""
    overheads, ratios = [], []
    for served, pool in zip(runs[SERVED], runs[POOL], strict=True):
        overheads.append((served.seconds - pool.seconds) / MINI_BATCHES * 1e3)
        ratios.append(pool.seconds / served.seconds)
    print(f"\n{FILES:,} files, {MINI_BATCHES} mini-batches of {MINI_BATCH_SIZE}, {WORKERS} workers, "
          f"{SLEEP_PER_FILE * 1e3:g} ms per file; per round (served vs Pool):")  # fmt: skip
    for round_, (overhead, ratio) in enumerate(zip(overheads, ratios, strict=True), 1):
        print(f"  round {round_}: overhead {overhead:.2f} ms per mini-batch, ratio served/Pool {ratio:.2f}")
    overhead, ratio = statistics.median(overheads), statistics.median(ratios)
    print(
        f"  spread: overhead {min(overheads):.2f}..{max(overheads):.2f} ms, ratio {min(ratios):.2f}..{max(ratios):.2f}"
    )
    cpu = ", ".join(f"{run.server_cpu / MINI_BATCHES * 1e3:.2f}" for run in runs[SERVED])
    print(f"  server CPU per mini-batch (invoke, coordinator, ledger, progress; polling excluded): {cpu} ms")
    print(f"  invoke to first run(): {', '.join(f'{run.first_run:.2f}' for run in runs[SERVED])} s")
    outputs = {run.output_sha256 for run in runs[SERVED] + runs[POOL]}
    return all([
        check(overhead <= TARGET_OVERHEAD_MS,
              f"median overhead per mini-batch {overhead:.2f} ms (target <= {TARGET_OVERHEAD_MS} ms)"),
        check(ratio >= TARGET_RATIO, f"median throughput ratio served/Pool {ratio:.2f} (target >= {TARGET_RATIO})"),
        check(len(outputs) == 1, "the served jobs and the Pool wrote byte-identical outputs"),
    ])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__)
    parser.add_argument("--rounds", type=int, default=5, help="served/Pool pairs (default 5)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="served-bench-") as workdir:
        runs = benchmark(args.rounds, Path(workdir))
    return exit_status(report(runs), args.no_fail)


if __name__ == "__main__":
    sys.exit(main())
