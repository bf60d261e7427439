"""Ray scale-out benchmark: one 2,000-file job on 1, 2 and 3 Ray nodes, with the nodes reading the inputs
themselves, and the bytes that pass through the coordinator.

The cluster is three nodes on this machine (``ray.cluster_utils.Cluster``, one logical CPU each); the job runs one
worker per node (``instance_count`` 1, 2, 3). Its input is 2,000 files of 8 KiB (16 MB), read by the nodes in
place on a shared path (``RayExecutor(shared_paths=...)``) or downloaded by them from an AzureBlob container on
Azurite (``spec.remote_input``). The script's ``run()`` waits 50 ms per mini-batch of 10 files (a stand-in for
I/O- or GPU-bound scoring: this machine has two cores, so three nodes cannot show CPU scaling; the curve is the data
path's and the coordination's) and returns one short row per file.

Figures, per input kind and node count: the job's wall time (from ``run_job`` to the output written: the workers'
start included) and files per second; the coordinator's transfer as ``RayExecutor.transfer`` counts it (names,
rows, logs, settings, the code archive) and as a share of the input bytes; and, as an independent check, the
driver process's ``/proc/self/io`` ``rchar + wchar`` growth over the job (every read and write system call:
sockets, the output and log files; the ledger is in memory). A first, unreported job on all nodes warms up the
imports and Ray's worker processes.

Targets: the counted transfer under 1% of the input on every run, and on the shared path 3 nodes at least 2.5x
the throughput of 1 node in the run phase (from the first try's start to the last try's end, as the workers time
them: what the data path and the coordination scale, without the workers' start, which every node pays at once).

Usage: python benchmarks/ray_scale_bench.py [--no-fail] [--files N] [--skip-blob]
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from targets import arguments, verdict

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.azurite and tests.server: Azurite from npm
from batchpoint.runtime.coordinator import run_job
from batchpoint.runtime.ledger import Attempt, InMemoryLedger, Success
from batchpoint.runtime.ray_executor import RayExecutor
from batchpoint.runtime.spec import JobSpec
from tests.azurite import ACCOUNT, AZURITE, KEY
from tests.ports import free_port
from tests.server import stop_process, wait_for_port

FILES = 2_000
FILE_BYTES = 8192
MINI_BATCH_SIZE = 10
RUN_SLEEP_SECONDS = 0.05
NODES = (1, 2, 3)
NODE: dict[str, Any] = {"num_cpus": 1, "object_store_memory": 100 * 1024**2}
TARGET_TRANSFER_SHARE = 0.01
TARGET_SCALING = 2.5

SCRIPT = """
import os
import signal
import time

def run(mini_batch):
    time.sleep(float(os.environ["RUN_SLEEP"]))
    return [os.path.basename(path) + " " + str(os.path.getsize(path)) for path in mini_batch]
"""


@dataclass(frozen=True)
class Result:
    inputs: str
    nodes: int
    seconds: float
    run_phase: float
    """From the first try's start to the last try's end, as the workers timed them: the job without its workers'
    start."""
    to_nodes: int
    from_nodes: int
    syscall_bytes: int

    @property
    def files_per_second(self) -> float:
        return FILES / self.seconds

    @property
    def run_phase_files_per_second(self) -> float:
        return FILES / self.run_phase

    @property
    def transfer_share(self) -> float:
        return (self.to_nodes + self.from_nodes) / (FILES * FILE_BYTES)


class TimedLedger(InMemoryLedger):
    """Also keeps when the first try started and the last one ended."""

    first, last = float("inf"), 0.0

    def record_tries(self, job_id: str, started: Sequence[Attempt], succeeded: Sequence[Success]) -> None:
        for success in succeeded:
            self.first = min(self.first, success.end.started)
            self.last = max(self.last, success.end.started + success.end.elapsed_seconds)
        super().record_tries(job_id, started, succeeded)

    @property
    def run_phase(self) -> float:
        return self.last - self.first


def io_bytes() -> int:
    counters = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    return int(counters["rchar"]) + int(counters["wchar"])


def run(address: str, work: Path, name: str, nodes: int, input_paths: list[Path], **settings: Any) -> Result:
    shared = settings.pop("shared_paths", ())
    spec = JobSpec(
        job_id=f"{name}-{nodes}",
        input_paths=input_paths,
        output_dir=work / f"out-{name}-{nodes}",
        code_dir=work / "code",
        scoring_script="score.py",
        mini_batch_size=MINI_BATCH_SIZE,
        instance_count=nodes,
        timeout_seconds=120,
        environment_variables={"RUN_SLEEP": str(RUN_SLEEP_SECONDS)},
        **settings,
    )
    executor = RayExecutor(address, shared_paths=shared)
    ledger = TimedLedger()
    before, started = io_bytes(), time.perf_counter()
    outcome = run_job(spec, ledger, executor)
    seconds, syscalls = time.perf_counter() - started, io_bytes() - before
    assert outcome.status == "Completed", outcome.message
    rows = (spec.output_dir / "predictions.csv").read_text().splitlines()
    assert rows == [f"f{index:05d}.bin {FILE_BYTES}" for index in range(FILES)], "the output differs"
    transfer = executor.transfer
    result = Result(name, nodes, seconds, ledger.run_phase, transfer.to_nodes, transfer.from_nodes, syscalls)
    print(
        f"{name:6s} {nodes} node(s): {seconds:6.2f} s ({result.files_per_second:4.0f} files/s), run phase "
        f"{result.run_phase:5.2f} s ({result.run_phase_files_per_second:4.0f} files/s); coordinator "
        f"{result.to_nodes:,} B to the nodes + {result.from_nodes:,} B back = {result.transfer_share:.2%} of the "
        f"input; driver rchar+wchar {syscalls / 1e6:.2f} MB",
        flush=True,
    )
    return result


@contextmanager
def azurite(work: Path) -> Iterator[dict[str, str]]:
    """Azurite from node_modules on a free port; yields the storage options of its development account."""
    port = free_port()
    command = [str(AZURITE), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", str(work / "azurite")]
    command += ["--silent", "--skipApiVersionCheck", "--loose", "--disableTelemetry"]
    with (work / "azurite.log").open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for_port(process, port, "Azurite", log.name, timeout=30)
            connection = (
                f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
                f"BlobEndpoint=http://127.0.0.1:{port}/{ACCOUNT};"
            )
            yield {"account_name": ACCOUNT, "connection_string": connection}
        finally:
            stop_process(process, signal.SIGTERM, timeout=10)


def upload(options: dict[str, str]) -> dict[str, Any]:
    import adlfs

    container = f"c{uuid.uuid4().hex}"
    blobs = adlfs.AzureBlobFileSystem(**options)
    blobs.mkdir(container)
    blobs.pipe({f"{container}/in/f{index:05d}.bin": content(index) for index in range(FILES)})
    return {"uri": f"abfs://{container}/in", "protocol": "abfs", "path": f"{container}/in", "storage_options": options}


def content(index: int) -> bytes:
    return bytes([index % 251]) * FILE_BYTES


def main() -> int:
    parser = arguments(__doc__)
    parser.add_argument("--skip-blob", action="store_true", help="only the shared path (no Azurite)")
    args = parser.parse_args()
    import ray
    from ray.cluster_utils import Cluster

    work = Path(tempfile.mkdtemp(prefix="ray-scale-bench-"))
    (work / "code").mkdir()
    (work / "code" / "score.py").write_text(SCRIPT)
    shared = work / "shared"
    shared.mkdir()
    for index in range(FILES):
        (shared / f"f{index:05d}.bin").write_bytes(content(index))
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; {FILES:,} files of {FILE_BYTES:,} B")
    cluster = Cluster(initialize_head=True, head_node_args=NODE)
    results: list[Result] = []
    try:
        for _ in NODES[1:]:
            cluster.add_node(**NODE)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, logging_level=logging.WARNING, log_to_driver=False)
        run(cluster.address, work, "warmup", NODES[-1], [shared], shared_paths=[shared])  # imports, worker processes
        for nodes in NODES:
            results.append(run(cluster.address, work, "shared", nodes, [shared], shared_paths=[shared]))
        if not args.skip_blob:
            with azurite(work) as options:
                remote = upload(options)
                for nodes in NODES:
                    results.append(run(cluster.address, work, "blob", nodes, [work / "copy"], remote_input=remote))
    finally:
        ray.shutdown()
        cluster.shutdown()
    print(f"load average {os.getloadavg()[0]:.1f} after")
    return report(results, args.no_fail)


def report(results: list[Result], no_fail: bool) -> int:
    shared = {result.nodes: result for result in results if result.inputs == "shared"}
    scaling = shared[NODES[-1]].run_phase_files_per_second / shared[NODES[0]].run_phase_files_per_second
    worst = max(results, key=lambda result: result.transfer_share)
    checks = [
        (
            worst.transfer_share < TARGET_TRANSFER_SHARE,
            f"coordinator transfer at most {worst.transfer_share:.2%} of the input ({worst.inputs}, {worst.nodes} "
            f"node(s); target < {TARGET_TRANSFER_SHARE:.0%})",
        ),
        (
            scaling >= TARGET_SCALING,
            f"run-phase throughput on {NODES[-1]} nodes / 1 node (shared path): {scaling:.2f}x "
            f"(target >= {TARGET_SCALING})",
        ),
    ]
    return verdict(checks, no_fail)


if __name__ == "__main__":
    sys.exit(main())
