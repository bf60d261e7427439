"""A job's run record: what the server keeps with a job to run it (and run it again after a restart, on any
replica), and never shows. It is stored in the job's `Resource.private`, with the job's kind as an explicit field
(migration 0010 gave jobs stored before it theirs).

A model job's record holds its runtime spec, where it runs, its remote input and its environment; a pipeline job's
holds its planned steps. The steps of a pipeline, and a model job's scoring step, have none: they run with their
parent.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

from batchpoint.jobs.placement import Placement
from batchpoint.runtime.environments.spec import EnvironmentSpec, environment_from_record, environment_record
from batchpoint.runtime.spec import JobSpec, RemoteFolder
from batchpoint.store.entities import Resource

PATH_FIELDS = ("output_dir", "code_dir", "model_dir", "python")
REMOTE_FIELDS = ("remote_input", "remote_output")


class JobKind(StrEnum):
    MODEL = "model"
    """A model deployment's job: the runtime scores its input with the deployment's script or model."""
    PIPELINE = "pipeline"
    """A pipeline job (of a pipeline deployment, or submitted on its own): its steps run as child jobs."""


@dataclass(frozen=True)
class RemoteInput:
    """An input on remote storage (a remote datastore or a URL), and where a copy of it is made for workers on this
    machine."""

    source: RemoteFolder
    target: Path


@dataclass(frozen=True)
class ModelRun:
    spec: JobSpec
    placement: Placement | None
    """None for jobs stored before computes existed."""
    fetch: RemoteInput | None = None
    environment: EnvironmentSpec | None = None
    """None: the workers run in the server's own interpreter."""
    scoring_child: str | None = None
    """The id of the job's scoring step (None for a job stored before those existed)."""

    def record(self) -> dict[str, Any]:
        return {
            "kind": JobKind.MODEL,
            "spec": spec_to_record(self.spec),
            "placement": self.placement.record() if self.placement else None,
            "fetch": _fetch_record(self.fetch),
            "environment": environment_record(self.environment),
            "scoring_child": self.scoring_child,
        }


@dataclass(frozen=True)
class PipelineRun:
    pipeline: dict[str, Any]
    """The planner's record (`jobs/pipelines/planner.py`): the steps and whether a failed step stops the rest."""

    @property
    def steps(self) -> list[dict[str, Any]]:
        return list(self.pipeline.get("steps", []))

    def record(self) -> dict[str, Any]:
        return {"kind": JobKind.PIPELINE, "pipeline": self.pipeline}


JobRun = ModelRun | PipelineRun


def run_of(job: Resource | None) -> JobRun | None:
    """The job's run record; None for a job that has none (a step) or no job."""
    record = job.private if job is not None else {}
    kind = record.get("kind")
    if kind == JobKind.MODEL:
        return ModelRun(
            spec=spec_from_record(record["spec"]),
            placement=Placement.of(record.get("placement")),
            fetch=_fetch_of(record.get("fetch")),
            environment=environment_from_record(record.get("environment")),
            scoring_child=record.get("scoring_child"),
        )
    if kind == JobKind.PIPELINE:
        return PipelineRun(record["pipeline"])
    return None


def model_run_of(job: Resource | None) -> ModelRun | None:
    run = run_of(job)
    return run if isinstance(run, ModelRun) else None


def keep_run(job: Resource, run: JobRun) -> None:
    """Give a job (not stored yet, or about to be written) its run record."""
    job.private = run.record()


def spec_to_record(spec: JobSpec) -> dict[str, Any]:
    """What the runner needs to (re)build the spec after a restart."""
    record = {field.name: getattr(spec, field.name) for field in fields(spec)}
    record["input_paths"] = [str(path) for path in spec.input_paths]
    record["input_roots"] = [str(path) for path in spec.input_roots]
    for name in PATH_FIELDS:
        record[name] = str(record[name]) if record[name] is not None else None
    record["environment_variables"] = dict(spec.environment_variables)
    for name in REMOTE_FIELDS:
        record[name] = _remote_record(record[name])
    return record


def spec_from_record(record: dict[str, Any]) -> JobSpec:
    """The spec of a stored record; a field an older server recorded and the spec no longer has
    (``unset_variables``) is left out."""
    paths = {name: Path(record[name]) if record.get(name) is not None else None for name in PATH_FIELDS}
    known = {field.name for field in fields(JobSpec)}
    kept = {name: value for name, value in record.items() if name in known}
    return JobSpec(**{**kept, **paths, "input_paths": [Path(path) for path in record["input_paths"]]}, stored=True)


def _remote_record(folder: RemoteFolder | None) -> dict[str, Any] | None:
    return asdict(folder) if folder is not None else None


def _fetch_record(fetch: RemoteInput | None) -> dict[str, Any] | None:
    return {**asdict(fetch.source), "target": str(fetch.target)} if fetch is not None else None


def _fetch_of(record: dict[str, Any] | None) -> RemoteInput | None:
    if not record:
        return None
    source = {name: value for name, value in record.items() if name != "target"}
    return RemoteInput(RemoteFolder(**source), Path(record["target"]))
