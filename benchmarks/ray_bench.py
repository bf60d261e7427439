"""Ray executor benchmark: a job run by batchpoint's Ray executor against a hand-written ``ray.util.ActorPool``
doing the same work on the same cluster, in the same run.

The cluster is two nodes on this machine (``ray.cluster_utils.Cluster``, 2 logical CPUs each); both contenders
use 4 actors, 2 per node. The job is 4,000 small files in mini-batches of 10 with a ``run()`` that sleeps 10 ms.
batchpoint runs it through ``run_job`` with an ``InMemoryLedger`` and a ``RayExecutor`` (``instance_count`` 2,
``max_concurrency_per_instance`` 2); the baseline is what a user would write by hand: an ``ActorPool`` of 4 actors
that import the same script and call its ``init()`` once, ``map`` over the same mini-batches in order (each
mini-batch's file contents sent with it, as batchpoint sends them), and the rows written to one output file.
Both outputs must be identical.

Figures: the throughput ratio (batchpoint / ActorPool on the 4,000-file job, target >= 0.9), the overhead per mini-batch
(how much longer a worker takes from the start of one mini-batch to the start of its next than an ActorPool actor:
the median of those intervals over all workers, each contender's best round; target <= 1 ms), and the coordinator's
peak RSS for a 10,000-file and a 100,000-file job with a trivial ``run()``, each in a fresh spawned driver
process (target: the larger job's peak at most 1.5x the smaller's, i.e. flat apart from the plan it holds).

Usage: python benchmarks/ray_bench.py [--no-fail] [--rounds N]
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import resource
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from targets import arguments, verdict

FILES = 4_000
MEMORY_FILES = (10_000, 100_000)
MINI_BATCH_SIZE = 10
NODES, WORKERS_PER_NODE = 2, 2
WORKERS = NODES * WORKERS_PER_NODE
SLEEP_SECONDS = 0.010
TARGET_RATIO = 0.9
TARGET_OVERHEAD_MS = 1.0
TARGET_MEMORY_GROWTH = 1.5
NODE: dict[str, Any] = {"num_cpus": WORKERS_PER_NODE, "object_store_memory": 100 * 1024**2}
MB = 1_000_000

SCRIPT = """
import os
import time

SLEEP = float(os.environ.get("RAY_BENCH_SLEEP", "0"))

def init():
    pass

def run(mini_batch):
    if SLEEP:
        time.sleep(SLEEP)
    return [os.path.basename(path) for path in mini_batch]
"""


@dataclass(frozen=True)
class Run:
    seconds: float
    output: str
    period: float
    """The median time from the start of a worker's mini-batch to the start of its next one: the steady-state cost
    of a mini-batch, which neither side's start-up (placement group, actors, init()) nor the last ones' tail is in.
    The difference of two job sizes' times, measured before, swung across the target (12.6, 11.4, 0.00 ms)."""


def median_period(starts: Iterable[tuple[object, float]]) -> float:
    """The median interval between consecutive starts on the same worker, from (worker, start time) pairs."""
    by_worker: dict[object, list[float]] = defaultdict(list)
    for worker, started in starts:
        by_worker[worker].append(started)
    intervals = []
    for times in by_worker.values():
        times.sort()
        intervals += [b - a for a, b in zip(times, times[1:], strict=False)]
    return statistics.median(intervals)


def write_inputs(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        (folder / f"f{index:06d}.txt").write_text(str(index))
    return folder


def spec_for(root: Path, inputs: Path, code: Path, sleep: float, name: str):  # type: ignore[no-untyped-def]
    from batchpoint.runtime.spec import JobSpec

    return JobSpec(
        job_id=name,
        input_paths=[inputs],
        output_dir=root / name,
        code_dir=code,
        scoring_script="score.py",
        mini_batch_size=MINI_BATCH_SIZE,
        instance_count=NODES,
        max_concurrency_per_instance=WORKERS_PER_NODE,
        timeout_seconds=60,
        environment_variables={"RAY_BENCH_SLEEP": str(sleep)},
    )


def run_batchpoint(address: str, root: Path, inputs: Path, code: Path, sleep: float, name: str) -> Run:
    from batchpoint.runtime.coordinator import run_job
    from batchpoint.runtime.ledger import InMemoryLedger
    from batchpoint.runtime.ray_executor import RayExecutor

    spec = spec_for(root, inputs, code, sleep, name)
    ledger = InMemoryLedger()
    started = time.perf_counter()
    outcome = run_job(spec, ledger, RayExecutor(address))
    elapsed = time.perf_counter() - started
    assert outcome.status == "Completed", outcome.message
    starts = [(attempt.worker, attempt.end.started) for attempt in ledger.attempts(name) if attempt.end is not None]
    return Run(elapsed, (spec.output_dir / "predictions.csv").read_text(), median_period(starts))


def run_actor_pool(root: Path, inputs: Path, code: Path, sleep: float, name: str) -> Run:
    """The hand-written baseline: the same script on an ActorPool of as many actors, one per CPU."""
    import ray
    from ray.util import ActorPool
    from ray.util.placement_group import placement_group, remove_placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    @ray.remote(num_cpus=1)
    class Scorer:
        def __init__(self, source: str) -> None:
            os.environ["RAY_BENCH_SLEEP"] = str(sleep)
            self.folder = Path(tempfile.mkdtemp())
            namespace: dict[str, object] = {}
            exec(compile(source, "score.py", "exec"), namespace)  # the benchmark's own script
            self.run = namespace["run"]
            namespace["init"]()  # type: ignore[operator]

        def score(self, index: int, names: list[str], contents: list[bytes]) -> tuple[str, int, float]:
            """The rows, and which actor started the mini-batch when (for the steady-state period)."""
            started = time.time()
            paths = []
            for name, content in zip(names, contents, strict=True):
                path = self.folder / name
                path.write_bytes(content)
                paths.append(str(path))
            return "".join(f"{row}\n" for row in self.run(paths)), os.getpid(), started  # type: ignore[operator]

    files = sorted(inputs.iterdir())
    batches = [files[start : start + MINI_BATCH_SIZE] for start in range(0, len(files), MINI_BATCH_SIZE)]
    started = time.perf_counter()
    group = placement_group([{"CPU": WORKERS_PER_NODE}] * NODES, strategy="SPREAD")
    ray.get(group.ready())
    source = (code / "score.py").read_text()
    actors = [
        Scorer.options(  # type: ignore[attr-defined]  # ray.remote's annotation keeps the class's own type
            scheduling_strategy=PlacementGroupSchedulingStrategy(group, slot // WORKERS_PER_NODE)
        ).remote(source)
        for slot in range(WORKERS)
    ]
    pool = ActorPool(actors)
    output = root / name
    output.mkdir(parents=True)
    starts = []
    with open(output / "predictions.csv", "w") as predictions:
        work = (
            (index, [path.name for path in batch], [path.read_bytes() for path in batch])
            for index, batch in enumerate(batches)
        )
        for rows, actor, began in pool.map(lambda actor, task: actor.score.remote(*task), work):  # type: ignore[arg-type]  # any iterable
            predictions.write(rows)
            starts.append((actor, began))
        predictions.flush()
        os.fsync(predictions.fileno())
    elapsed = time.perf_counter() - started
    for actor in actors:
        ray.kill(actor)
    remove_placement_group(group)
    return Run(elapsed, (output / "predictions.csv").read_text(), median_period(starts))


def memory_job(address: str, root: str, inputs: str, code: str, name: str) -> int:
    """In a fresh driver process: run the job, return this process's peak RSS in bytes."""
    import ray

    ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
    run_batchpoint(address, Path(root), Path(inputs), Path(code), 0.0, name)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main() -> int:
    parser = arguments(__doc__)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    import ray
    from ray.cluster_utils import Cluster

    work = Path(tempfile.mkdtemp(prefix="ray-bench-"))
    code = work / "code"
    code.mkdir()
    (code / "score.py").write_text(SCRIPT)
    inputs = write_inputs(work / "inputs", FILES)
    cluster = Cluster(initialize_head=True, head_node_args=NODE)
    try:
        cluster.add_node(**NODE)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, logging_level=logging.WARNING, log_to_driver=False)
        runs: dict[str, list[Run]] = {"batchpoint": [], "ActorPool": []}
        for round_number in range(args.rounds):
            order = ["batchpoint", "ActorPool"] if round_number % 2 == 0 else ["ActorPool", "batchpoint"]
            for contender in order:
                name = f"{contender}-{round_number}"
                if contender == "batchpoint":
                    run = run_batchpoint(cluster.address, work, inputs, code, SLEEP_SECONDS, name)
                else:
                    run = run_actor_pool(work, inputs, code, SLEEP_SECONDS, name)
                runs[contender].append(run)
                print(
                    f"round {round_number + 1}: {contender:10s} {FILES:,} files {run.seconds:6.2f} s "
                    f"({FILES / run.seconds:,.0f} files/s), {run.period * 1000:.2f} ms from a mini-batch's start "
                    "to its worker's next"
                )
            assert runs["batchpoint"][-1].output == runs["ActorPool"][-1].output, "the outputs differ"
        ray.shutdown()
        peaks = measure_memory(cluster.address, work, code)
    finally:
        cluster.shutdown()
    return report(runs, peaks, args.no_fail)


def measure_memory(address: str, work: Path, code: Path) -> dict[int, int]:
    peaks = {}
    for count in MEMORY_FILES:
        inputs = write_inputs(work / f"memory-{count}", count)
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as driver:
            peaks[count] = driver.submit(
                memory_job, address, str(work), str(inputs), str(code), f"memory-{count}"
            ).result()
        print(f"memory: {count:,} files, coordinator peak RSS {peaks[count] / MB:.0f} MB")
    return peaks


def report(runs: dict[str, list[Run]], peaks: dict[int, int], no_fail: bool) -> int:
    ours, theirs = runs["batchpoint"], runs["ActorPool"]
    ratio = min(run.seconds for run in theirs) / min(run.seconds for run in ours)
    overhead_ms = (min(run.period for run in ours) - min(run.period for run in theirs)) * 1000
    small, large = MEMORY_FILES
    growth = peaks[large] / peaks[small]
    checks = [
        (ratio >= TARGET_RATIO, f"throughput ratio at a 10 ms run(): {ratio:.2f} (target >= {TARGET_RATIO})"),
        (
            overhead_ms <= TARGET_OVERHEAD_MS,
            f"overhead per mini-batch: {overhead_ms:+.2f} ms (target <= {TARGET_OVERHEAD_MS} ms)",
        ),
        (
            growth <= TARGET_MEMORY_GROWTH,
            f"coordinator peak RSS {large:,} / {small:,} files: {growth:.2f}x "
            f"({peaks[large] / MB:.0f} / {peaks[small] / MB:.0f} MB; target <= {TARGET_MEMORY_GROWTH}x)",
        ),
    ]
    return verdict(checks, no_fail)


if __name__ == "__main__":
    sys.exit(main())
