"""The gauges of ``/metrics`` read when Prometheus scrapes: jobs by state from the database (right whichever
replica answers), and what this process's job runner is doing now (queue, busy workers, throughput)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from batchpoint.jobs.activity import RunnerActivity
from batchpoint.store import Store


class ServerCollector(Collector):
    def __init__(self, store: Store, activity: RunnerActivity) -> None:
        self._store = store
        self._activity = activity

    def collect(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily(
            "batchpoint_jobs", "Jobs by state, in the database (every replica's).", labels=["state"]
        )
        for state, count in sorted(self._store.jobs_by_status().items()):
            jobs.add_metric([state], count)
        yield jobs
        yield GaugeMetricFamily(
            "batchpoint_job_queue_depth",
            "Jobs accepted by this process and waiting for a runner.",
            self._activity.queue_depth(),
        )
        yield GaugeMetricFamily(
            "batchpoint_busy_workers",
            "Workers of this process running a mini-batch now.",
            self._activity.busy_workers(),
        )
        yield GaugeMetricFamily(
            "batchpoint_items_per_second",
            "Items per second the running jobs of this process score now.",
            self._activity.items_per_second(),
        )
