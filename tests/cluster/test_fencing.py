"""Split brain: a replica frozen (SIGSTOP) past its lease right before one of its writes resumes after another
replica took the job over and completed it. Its write is refused: the job stays Completed, the output stays
byte for byte what the other replica committed, the frozen replica's workers are gone and its log says it lost
the lease.

Replica A freezes itself at a named point (`runtime/stop_points.py`, test-only) of one job per point; the test
waits for B to complete the job, then resumes A (SIGCONT). The points: a ledger group, the output's commit, the
job's terminal write, a pipeline step's (a child job's) terminal write, and the terminal write of a model job's
scoring step (its child job), where A freezes inside the transaction that writes the job (PostgreSQL ends A's
session after 10 s idle in it, which lets B take the job over)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from batchpoint.runtime.stop_points import VARIABLE
from tests.api.jobs import deploy_script, invoke, write_inputs
from tests.cluster.replicas import (
    LEASE_SECONDS,
    SLOW_ECHO,
    Replicas,
    input_names,
    job_of,
    replica,
    wait_for_end,
    wait_until,
)
from tests.conftest import database_url_for
from tests.jobs.pipelines.test_pipelines import V, component, node, provision
from tests.server import WORKSPACE_ID

FILES = 200
JOBS = {
    "ledger-group": "fenced-ledger",
    "output-commit": "fenced-commit",
    "terminal-write": "fenced-final",
    "child-write": "fenced-step",
    "scoring-child-write": "fenced-scoring",
}
"""The job A freezes in, per point (no name is part of another)."""
TEMPORARY = "a-tmp"
"""Replica A's TMPDIR: its workers and steps have their HOME there, so the test finds them."""
STEP = {
    "type": "command",
    "command": "seq 1 500 > ${{outputs.y}}/numbers.txt",
    "outputs": {"y": {"type": "uri_folder"}},
}


@dataclass
class Fencing:
    pair: Replicas
    mark: str
    """A's TMPDIR, with a slash: the beginning of its workers' and steps' HOME."""

    def a_processes(self) -> list[psutil.Process]:
        """A's workers and steps: live processes whose HOME is in A's TMPDIR. Not A's warm template
        (`boot.py template`) nor its spares, which A keeps for its next jobs: the workers it forked have its HOME
        too, and are counted (runtime/templates.py)."""
        found = []
        for process in psutil.process_iter(["pid"]):
            try:
                if (
                    process.environ().get("HOME", "").startswith(self.mark)
                    and process.status() != psutil.STATUS_ZOMBIE
                    and not is_template_or_spare(process)
                ):
                    found.append(process)
            except psutil.Error:
                continue
        return found

    def a_log(self) -> str:
        return (self.pair.a.home / f"server-{self.pair.a.port}.log").read_text(errors="replace")


def is_template_or_spare(process: psutil.Process) -> bool:
    """A warm template (`python -I -S .../boot.py template FD` started by its server) or a spare child it forked
    for the next job, which works in its template's folder. The workers it forks have its command line too, and it
    is their parent, but they work in their own folder."""
    if process.cmdline()[-2:-1] != ["template"]:
        return False
    parent = process.parent()
    return parent is None or parent.cmdline()[-2:-1] != ["template"] or process.cwd() == parent.cwd()


@pytest.fixture(scope="module")
def fencing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fencing]:
    database_url = database_url_for("postgresql")
    assert database_url is not None
    root = tmp_path_factory.mktemp("fencing")
    shared = root / "shared"
    shared.mkdir()
    (root / TEMPORARY).mkdir()
    mark = f"{root / TEMPORARY}/"
    stops = ",".join(f"{point}@{job}" for point, job in JOBS.items())
    pair = Replicas(
        replica(root / "a", database_url, shared, env={VARIABLE: stops, "TMPDIR": str(root / TEMPORARY)}).start(),
        replica(root / "b", database_url, shared).start(),
        shared,
    )
    try:
        with pair.a.client() as client:
            deploy_script(client, shared, "fence", "dep", SLOW_ECHO, miniBatchSize=5, maxConcurrencyPerInstance=2)
            step = component(client, "fence-step", STEP)
            spec = {
                "type": "pipeline",
                "outputs": {"result": {"type": "uri_folder"}},
                "jobs": {"write": {**node(step), "outputs": {"y": {"value": "${{parent.outputs.result}}"}}}},
            }
            assert provision(client, "fence-pipe", component(client, "fence-pipe", spec))["status"] == "Succeeded"
        yield Fencing(pair, mark)
    finally:
        for server in (pair.a, pair.b):
            if server.process is not None and server.process.poll() is None:
                os.kill(server.process.pid, signal.SIGCONT)
        pair.stop()


def start(fencing: Fencing, point: str) -> str:
    """Invoke the point's job through A, which runs it (it has room) and freezes at the point."""
    name = JOBS[point]
    with fencing.pair.a.client() as client:
        if point == "child-write":
            scoring = client.get(f"{WORKSPACE_ID}/batchEndpoints/fence-pipe", params=V).json()["properties"]
            answer = client.post(
                scoring["scoringUri"], json={"properties": {"name": name}}, headers={"azureml-model-deployment": "main"}
            )
        else:
            answer = invoke(client, "fence", str(write_inputs(fencing.pair.shared / f"in-{name}", FILES)), name=name)
    assert answer.status_code == 200, answer.text
    a = psutil.Process(fencing.pair.a.process.pid)  # type: ignore[union-attr]
    wait_until(lambda: a.status() == psutil.STATUS_STOPPED, 60, f"A to freeze at {point}")
    return name


def output_of(fencing: Fencing, name: str, point: str) -> Path:
    folder, file = ("result", "numbers.txt") if point == "child-write" else ("score", "predictions.csv")
    found = list((fencing.pair.shared / "storage").glob(f"*/azureml-blobstore-*/azureml/{name}/{folder}/{file}"))
    assert len(found) == 1, f"no output of {name}"
    return found[0]


@pytest.mark.parametrize("point", list(JOBS))
def test_a_replica_frozen_past_its_lease_before_a_write_writes_nothing_when_it_resumes(
    fencing: Fencing, point: str
) -> None:
    name = start(fencing, point)
    a_workers = fencing.a_processes()

    completed = wait_for_end(fencing.pair.b, name, timeout=LEASE_SECONDS + 60)
    output = output_of(fencing, name, point)
    committed = output.read_bytes()
    os.kill(fencing.pair.a.process.pid, signal.SIGCONT)  # type: ignore[union-attr]
    wait_until(lambda: f"jobs/{name}: lost the lease" in fencing.a_log(), 60, "A to say it lost the lease")

    assert completed["status"] == "Completed", completed
    assert job_of(fencing.pair.b, name) == completed, "the job changed after A resumed"
    child = f"{name}-write" if point == "child-write" else f"{name}-batchscoring"
    assert job_of(fencing.pair.b, child)["status"] == "Completed"
    assert output.read_bytes() == committed
    if point == "child-write":
        assert committed.decode().split() == [str(number) for number in range(1, 501)]
    else:
        assert committed.decode().splitlines() == input_names(FILES)
        assert not [path.name for path in output.parent.iterdir() if path.name.startswith(".")], "a leftover"
    wait_until(lambda: not fencing.a_processes(), 10, "A's workers to be gone")  # killed, perhaps not reaped yet
    assert point != "ledger-group" or a_workers, "A had no workers running when it froze"
