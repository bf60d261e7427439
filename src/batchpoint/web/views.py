"""What the studio web page shows, read from the resources: workspaces, endpoints with their deployments, jobs
with their progress, failure, logs, outputs and steps. No HTTP here: ``api/web`` renders these views."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from batchpoint.arm.context import BASE_URL
from batchpoint.arm.ids import ALL_SUBSCRIPTIONS, WORKSPACE_TYPE
from batchpoint.arm.resources import Resources
from batchpoint.jobs.history import History
from batchpoint.jobs.invoke import Jobs
from batchpoint.jobs.logs import streamed_log
from batchpoint.jobs.run_record import PipelineRun, run_of
from batchpoint.ml.datastores.uris import UriResolver
from batchpoint.ml.endpoints.resource_types import BATCH_DEPLOYMENT_TYPE, BATCH_ENDPOINT_TYPE
from batchpoint.runtime.layout import FAILED_ITEMS
from batchpoint.runtime.report import Counts
from batchpoint.runtime.status import TERMINAL
from batchpoint.store.entities import Resource, utcnow

LISTED = 200
"""At most this many workspaces, endpoints, deployments, jobs or output files per list on a page."""
TAIL_LINES = 200


@dataclass(frozen=True)
class DeploymentView:
    """A deployment's settings as the page lists them."""

    name: str
    is_default: bool
    state: str
    settings: dict[str, Any]
    model: str
    environment: str
    compute: str


@dataclass(frozen=True)
class EndpointView:
    """A batch endpoint with its deployments."""

    id: str
    name: str
    workspace_id: str
    default: str
    state: str
    auth_mode: str
    scoring_uri: str
    deployments: list[DeploymentView]


@dataclass(frozen=True)
class WorkspaceView:
    """A workspace with its batch endpoints."""

    id: str
    name: str
    endpoints: list[EndpointView]


@dataclass(frozen=True)
class Progress:
    """A job's counts, and its throughput and time left when it has done some items."""

    counts: Counts
    items_per_second: float | None = None
    """Items done per second since the job started (until it ended)."""
    seconds_left: float | None = None


@dataclass(frozen=True)
class OutputView:
    """A job output: its URI and the files in it (at most ``LISTED``)."""

    name: str
    uri: str
    files: list[str]


@dataclass(frozen=True)
class StepView:
    """A pipeline job's step (a child job) with its log files."""

    job_name: str
    name: str
    status: str
    error: str
    logs: list[str]
    after: list[str] = field(default_factory=list)
    """The steps this one needs (whose outputs it reads), of a pipeline job."""


@dataclass(frozen=True)
class JobView:
    id: str
    name: str
    workspace_id: str
    endpoint: str
    deployment: str
    kind: str
    """``model``, ``pipeline`` or ``step``."""
    status: str
    created: str
    started: str
    ended: str
    progress: Progress
    error: str
    logs: list[str]
    streamed_log: str | None
    outputs: list[OutputView] = field(default_factory=list)
    steps: list[StepView] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL

    @property
    def endpoint_id(self) -> str:
        return f"{self.workspace_id}/batchEndpoints/{self.endpoint}"

    @property
    def rerunnable(self) -> bool:
        """Ended with items that failed or never ran (the runtime listed them in ``failed_items.txt``)."""
        return self.finished and self.kind == "model" and FAILED_ITEMS in self.logs


def _name(resource_id: str) -> str:
    return resource_id.rsplit("/", 1)[-1]


def _reference(value: Any) -> str:
    """An asset reference as a short name: ``name:version`` of an ARM id, else the reference itself."""
    text = str(value or "")
    parts = text.split("/")
    if len(parts) > 4 and parts[-2] == "versions":
        return f"{parts[-3]}:{parts[-1]}"
    return text


def _progress(properties: dict[str, Any], now: datetime) -> Progress:
    recorded = properties.get("progress") or {}
    mini_batches, items = recorded.get("miniBatches") or {}, recorded.get("items") or {}
    counts = Counts(
        **{
            f"mini_batches_{name}": mini_batches.get(name, 0)
            for name in ("total", "succeeded", "failed", "running", "retried")
        },
        **{f"items_{name}": items.get(name, 0) for name in ("total", "succeeded", "failed")},
    )
    progress = Progress(counts)
    started = properties.get("startTime")
    if not started or not counts.items_done:
        return progress
    until = datetime.fromisoformat(properties["endTime"]) if properties.get("endTime") else now
    elapsed = (until - datetime.fromisoformat(started)).total_seconds()
    if elapsed <= 0:
        return progress
    rate = counts.items_done / elapsed
    left = None if properties.get("endTime") else max(counts.items_total - counts.items_done, 0) / rate
    return Progress(counts, rate, left)


def _files(folder: Path | None) -> list[str]:
    if folder is None or not folder.is_dir():
        return []
    found: list[str] = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(folder).parts):
            found.append(path.relative_to(folder).as_posix())
            if len(found) >= LISTED:
                break
    return found


@dataclass
class Studio:
    resources: Resources
    jobs: Jobs
    history: History
    uris: UriResolver

    def workspaces(self, base_url: str) -> list[WorkspaceView]:
        store = self.resources.store
        return [
            WorkspaceView(
                workspace.id,
                workspace.name,
                [
                    self.endpoint(endpoint, base_url)
                    for endpoint in store.list_below(workspace.id, BATCH_ENDPOINT_TYPE, None, LISTED)
                ],
            )
            for workspace in self._workspaces()
        ]

    def endpoint(self, endpoint: Resource, base_url: str) -> EndpointView:
        properties = endpoint.body["properties"]
        default = (properties.get("defaults") or {}).get("deploymentName") or ""
        deployments = self.resources.store.list_below(endpoint.id, BATCH_DEPLOYMENT_TYPE, None, LISTED)
        return EndpointView(
            id=endpoint.id,
            name=endpoint.name,
            workspace_id=endpoint.id.rsplit("/batchEndpoints/", 1)[0],
            default=default,
            state=properties.get("provisioningState", ""),
            auth_mode=properties.get("authMode", ""),
            scoring_uri=properties.get("scoringUri", "").replace(BASE_URL, base_url),
            deployments=[_deployment(deployment, default) for deployment in deployments],
        )

    def endpoint_by_id(self, endpoint_id: str, base_url: str) -> EndpointView:
        return self.endpoint(self.resources.get(endpoint_id), base_url)

    def has_deployment(self, endpoint_id: str, deployment: str) -> bool:
        return self.resources.store.get_body_json(f"{endpoint_id}/deployments/{deployment}") is not None

    def find_job(self, name: str, workspace_ids: Iterator[str]) -> Resource | None:
        """The job ``name`` in the first of ``workspace_ids`` that has one (``/jobs/{name}`` names no workspace)."""
        for workspace_id in workspace_ids:
            job = self.resources.store.get(f"{workspace_id}/jobs/{name}")
            if job is not None:
                return job
        return None

    def workspace_ids(self) -> Iterator[str]:
        for workspace in self._workspaces():
            yield workspace.id

    def _workspaces(self) -> list[Resource]:
        return self.resources.store.list_below(ALL_SUBSCRIPTIONS, WORKSPACE_TYPE, None, LISTED)

    def job(self, job: Resource, with_details: bool = True) -> JobView:
        properties = job.body["properties"]
        tags = properties.get("properties") or {}
        folder = self.history.log_folder(job) if with_details else None
        logs = folder.names() if folder is not None else []
        parent = tags.get("azureml.pipelinerunid")
        return JobView(
            id=job.id,
            name=job.name,
            workspace_id=job.parent_id,
            endpoint=tags.get("azureml.endpointname", ""),
            deployment=tags.get("azureml.deploymentname", ""),
            kind=_kind(job, parent),
            status=properties.get("status", ""),
            created=(job.body.get("systemData") or {}).get("createdAt", ""),
            started=properties.get("startTime") or "",
            ended=properties.get("endTime") or "",
            progress=_progress(properties, utcnow()),
            error=(properties.get("error") or {}).get("message", ""),
            logs=logs,
            streamed_log=streamed_log(logs),
            outputs=self._outputs(job) if with_details else [],
            steps=self._steps(job) if with_details else [],
        )

    def _outputs(self, job: Resource) -> list[OutputView]:
        workspace_id = job.parent_id
        views = []
        for name, output in (job.body["properties"].get("outputs") or {}).items():
            views.append(
                OutputView(name, output.get("uri", ""), _files(self.output_folder(workspace_id, output.get("uri", ""))))
            )
        return views

    def output_folder(self, workspace_id: str, uri: str) -> Path | None:
        try:
            return self.uris.resolve(workspace_id, uri).local_path
        except Exception:  # noqa: BLE001 - an output the server cannot resolve any more lists no files
            return None

    def _steps(self, job: Resource) -> list[StepView]:
        run = run_of(job)
        needs = {step["name"]: step.get("depends_on", []) for step in run.steps} if isinstance(run, PipelineRun) else {}
        views = []
        for step_name, child in self.history.steps(job):
            folder = self.history.log_folder(child, parent=job)
            properties = child.body["properties"]
            views.append(
                StepView(
                    child.name,
                    step_name,
                    properties.get("status", ""),
                    (properties.get("error") or {}).get("message", ""),
                    folder.names() if folder else [],
                    needs.get(step_name, []),
                )
            )
        return views

    def tail(self, job: Resource, name: str | None) -> tuple[str, int]:
        """The last lines of a log and its size (where live updates continue from)."""
        if name is None:
            return "", 0
        try:
            data = self.history.log_path(job, name).read_bytes()
        except OSError:
            return "", 0
        whole = data[: data.rfind(b"\n") + 1]
        return "\n".join(whole.decode("utf-8", errors="replace").splitlines()[-TAIL_LINES:]), len(whole)

    def log_since(self, job: Resource, name: str, offset: int) -> tuple[str, int]:
        """The whole lines a log gained after ``offset``, and the new offset."""
        try:
            with open(self.history.log_path(job, name), "rb") as log:
                log.seek(offset)
                chunk = log.read()
        except OSError:
            return "", offset
        whole = chunk[: chunk.rfind(b"\n") + 1]
        return whole.decode("utf-8", errors="replace"), offset + len(whole)


def _deployment(deployment: Resource, default: str) -> DeploymentView:
    properties = deployment.body["properties"]
    retry = properties.get("retrySettings") or {}
    settings = {
        "Mini-batch size": properties.get("miniBatchSize"),
        "Instances": (properties.get("resources") or {}).get("instanceCount"),
        "Workers per instance": properties.get("maxConcurrencyPerInstance"),
        "Retries": retry.get("maxRetries"),
        "Timeout": retry.get("timeout"),
        "Error threshold": properties.get("errorThreshold"),
        "Output action": properties.get("outputAction"),
        "Output file": properties.get("outputFileName"),
        "Logging level": properties.get("loggingLevel"),
    }
    model = (properties.get("model") or {}).get("assetId") or (
        (properties.get("deploymentConfiguration") or {}).get("componentId") or {}
    ).get("assetId")
    return DeploymentView(
        name=deployment.name,
        is_default=deployment.name.lower() == default.lower(),
        state=properties.get("provisioningState", ""),
        settings={key: value for key, value in settings.items() if value is not None},
        model=_reference(model),
        environment=_reference(properties.get("environmentId")),
        compute=_name(str(properties.get("compute") or "")) if properties.get("compute") else "",
    )


def _kind(job: Resource, parent: str | None) -> str:
    """What the page shows a job as: a pipeline job, a step (of a pipeline, or a model job's scoring step), or a
    model job."""
    if isinstance(run_of(job), PipelineRun):
        return "pipeline"
    return "step" if parent else "model"
