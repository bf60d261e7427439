"""The parts of a model job's page drawn from its mini-batches: the throughput chart, the timeline, the failed
files and the outputs with a preview of their first rows (``job_view.py`` reads them, ``charts.py`` lays them out)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from batchpoint.jobs.run_record import model_run_of
from batchpoint.store.entities import Resource
from batchpoint.web.charts import Throughput, Timeline, span_of, throughput, timeline
from batchpoint.web.job_view import FailedFile, Preview, TryView, failed_files, ledger_tries, preview, report_tries
from batchpoint.web.views import JobView, OutputView, Studio


@dataclass(frozen=True)
class OutputDetails:
    output: OutputView
    preview: Preview | None


@dataclass(frozen=True)
class JobDetails:
    timeline: Timeline | None = None
    """None: the job has no mini-batches (yet), or is no model job."""
    throughput: Throughput | None = None
    failures: list[FailedFile] = field(default_factory=list)
    failed_total: int = 0
    outputs: list[OutputDetails] = field(default_factory=list)


def job_details(studio: Studio, job: Resource, view: JobView) -> JobDetails:
    run = model_run_of(job)
    if run is None or view.kind != "model":
        return JobDetails(outputs=[OutputDetails(output, None) for output in view.outputs])
    spec = run.spec
    tries = _tries(studio, job, view, spec.job_id, spec.logs_dir)
    outputs = [
        OutputDetails(output, preview(spec, studio.output_folder(job.parent_id, output.uri), output.files))
        for output in view.outputs
    ]
    if tries is None:
        return JobDetails(outputs=outputs)
    now = time.time()
    span = span_of(tries, _seconds(view.started), _seconds(view.ended), now)
    failures, failed_total = failed_files(tries, spec, view.logs)
    return JobDetails(
        timeline(tries, span, now, spec.input_paths), throughput(tries, span), failures, failed_total, outputs
    )


def _tries(studio: Studio, job: Resource, view: JobView, job_id: str, logs_dir: Path) -> list[TryView] | None:
    """From the ledger while the job runs; from its report once it ended (the ledger forgets an ended job)."""
    if not view.finished:
        tries = ledger_tries(studio.resources.store.ledger(), job_id)
        if tries is not None or not _ended_meanwhile(studio, job):
            return tries
    return report_tries(logs_dir)


def _ended_meanwhile(studio: Studio, job: Resource) -> bool:
    now = studio.resources.store.get(job.id)
    return now is not None and bool(now.body["properties"].get("endTime"))


def _seconds(moment: str) -> float | None:
    return datetime.fromisoformat(moment).timestamp() if moment else None
