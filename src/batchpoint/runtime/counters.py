"""Counters of what the runtime did in this process, for ``/metrics`` (prometheus-client, process-local).

Each is touched once per mini-batch try or per environment build, never per item; the label children are made
once here, so an increment is a lock and an addition.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from batchpoint.runtime.executor import TaskFailed

MINI_BATCHES = Counter(
    "batchpoint_mini_batches", "Mini-batches that ended, by outcome: succeeded, or failed on every try.", ["outcome"]
)
MINI_BATCHES_SUCCEEDED = MINI_BATCHES.labels("succeeded")
MINI_BATCHES_FAILED = MINI_BATCHES.labels("failed")
ITEMS = Counter("batchpoint_items", "Items (input files) of ended mini-batches, by outcome.", ["outcome"])
ITEMS_SUCCEEDED = ITEMS.labels("succeeded")
ITEMS_FAILED = ITEMS.labels("failed")
RETRIES = Counter("batchpoint_mini_batch_retries", "Failed tries of mini-batches that were tried again.")
TIMEOUTS = Counter("batchpoint_mini_batch_timeouts", "run() calls stopped at the deployment's time limit.")
WORKER_RESTARTS = Counter(
    "batchpoint_worker_restarts", "Workers replaced because they died, exceeded the time limit or failed init()."
)
RUN_SECONDS = Histogram(
    "batchpoint_run_duration_seconds",
    "Duration of each try of a mini-batch (one run() call, as the coordinator sees it).",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
COORDINATOR_BYTES = Counter(
    "batchpoint_ray_coordinator_bytes",
    "Bytes the coordinator sent to Ray nodes (task file names, inputs the nodes cannot read, the job's code and model "
    "archive once per node, the workers' settings) and received from them (rows, tracebacks, printed output).",
    ["direction"],
)
COORDINATOR_BYTES_TO_NODES = COORDINATOR_BYTES.labels("to_nodes")
COORDINATOR_BYTES_FROM_NODES = COORDINATOR_BYTES.labels("from_nodes")
ENVIRONMENT_BUILDS = Counter("batchpoint_environment_builds", "Python environments built, by outcome.", ["outcome"])

RESTARTING_FAILURES = ("timeout", "died", "init", "lost")


def mini_batch_succeeded(seconds: float, items_succeeded: int, items_failed: int) -> None:
    RUN_SECONDS.observe(seconds)
    MINI_BATCHES_SUCCEEDED.inc()
    ITEMS_SUCCEEDED.inc(items_succeeded)
    ITEMS_FAILED.inc(items_failed)


def try_failed(failure: TaskFailed, seconds: float) -> None:
    """A failed try; ``init`` failures ran no ``run()`` and count as a worker restart only."""
    if failure.kind != "init":
        RUN_SECONDS.observe(seconds)
    if failure.kind == "timeout":
        TIMEOUTS.inc()
    if failure.kind in RESTARTING_FAILURES:
        WORKER_RESTARTS.inc()


def mini_batch_retried() -> None:
    RETRIES.inc()


def mini_batch_exhausted(items: int) -> None:
    MINI_BATCHES_FAILED.inc()
    ITEMS_FAILED.inc(items)
