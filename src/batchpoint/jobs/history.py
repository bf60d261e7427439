"""The run-history view of jobs that ``azure-ai-ml`` reads for ``jobs.stream`` (and the CLI for logs)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchpoint.arm.errors import ArmError
from batchpoint.arm.resources import Resources
from batchpoint.jobs.logs import LogFolder, check_log_link, log_folder, log_link
from batchpoint.jobs.pipelines.planner import child_name
from batchpoint.jobs.run_record import PipelineRun, run_of
from batchpoint.jobs.scoring_step import SCORING_STEP, scoring_child_id
from batchpoint.ml.datastores.service import Datastores, account_name_for
from batchpoint.store.entities import Resource

OUTPUT_ASSET = re.compile(r"^azureml://jobs/(?P<job>[^/]+)/outputs/(?P<output>[^/]+)$")


def _run_of_child(parent: str, child: Resource) -> dict[str, Any]:
    """A child job as run history shows it: what azure-ai-ml's ``jobs.list(parent_job_name=...)`` reads into a job's
    name, status, properties, compute and ``creation_context`` (whose times the notebooks subtract)."""
    properties = child.body["properties"]
    system = child.body.get("systemData") or {}
    compute = properties.get("computeId")
    return {
        "runId": child.name,
        "parentRunId": parent,
        "rootRunId": parent,
        "experimentId": parent,
        "name": properties["displayName"],
        "displayName": properties["displayName"],
        "status": properties["status"],
        "runType": "azureml.StepRun",
        "createdUtc": system.get("createdAt"),
        "createdBy": {"userName": system.get("createdBy")},
        "lastModifiedUtc": system.get("lastModifiedAt") or system.get("createdAt"),
        "lastModifiedBy": {"userName": system.get("lastModifiedBy") or system.get("createdBy")},
        "startTimeUtc": properties.get("startTime"),
        "endTimeUtc": properties.get("endTime"),
        "properties": {name: str(value) for name, value in (properties.get("properties") or {}).items()},
        "tags": {},
        "services": {},
        **({"compute": {"target": compute.rsplit("/", 1)[-1], "targetType": "AmlCompute"}} if compute else {}),
    }


def output_asset_id(job_name: str, output: str) -> str:
    return f"azureml://jobs/{job_name}/outputs/{output}"


@dataclass
class History:
    resources: Resources
    datastores: Datastores
    jobs_root: Path

    def details(self, base_url: str, job_id: str) -> dict[str, Any]:
        job = self.resources.get(job_id)
        properties = job.body["properties"]
        details: dict[str, Any] = {
            "runId": job.name,
            "status": properties["status"],
            "startTimeUtc": properties.get("startTime"),
            "endTimeUtc": properties.get("endTime"),
            "logFiles": self._log_links(base_url, job),
            "warnings": [],
            "services": {},
            "properties": properties.get("properties", {}),
        }
        if "error" in properties:
            details["error"] = {"error": properties["error"]}
        return details

    def children(self, job_id: str) -> list[dict[str, Any]]:
        """A job's child jobs as run-history runs (``jobs.list(parent_job_name=...)``)."""
        job = self.resources.get(job_id)
        return [_run_of_child(job.name, child) for _, child in self.steps(job)]

    def steps(self, job: Resource) -> list[tuple[str, Resource]]:
        """A job's steps that have their child job yet, each with it: a pipeline job's, a model job's scoring step
        (none for a model job stored before those existed)."""
        workspace_id = job.parent_id
        scoring = scoring_child_id(job)
        child = self.resources.store.get(scoring) if scoring else None
        if child is not None:
            return [(SCORING_STEP, child)]
        steps = []
        run = run_of(job)
        for step in run.steps if isinstance(run, PipelineRun) else []:
            child = self.resources.store.get(f"{workspace_id}/jobs/{child_name(job.name, step['name'])}")
            if child is not None:
                steps.append((step["name"], child))
        return steps

    def run_data(self, job_id: str) -> dict[str, Any]:
        """``jobs.download`` asks for the run's outputs, then resolves them with ``resolve_outputs``."""
        job = self.resources.get(job_id)
        outputs = {
            name: {"assetId": output_asset_id(job.name, name), "type": output["jobOutputType"]}
            for name, output in job.body["properties"].get("outputs", {}).items()
        }
        return {"runMetadata": {"runId": job.name, "status": job.body["properties"]["status"], "outputs": outputs}}

    def resolve_outputs(self, workspace_id: str, asset_ids: list[str]) -> dict[str, Any]:
        """The URI behind each job output id that ``run_data`` handed out; other ids are not known here."""
        resolved = {}
        for asset_id in asset_ids:
            match = OUTPUT_ASSET.match(asset_id)
            job = self.resources.store.get(f"{workspace_id}/jobs/{match['job']}") if match else None
            output = job.body["properties"].get("outputs", {}).get(match["output"]) if job and match else None
            if output is not None:
                resolved[asset_id] = {"uri": output["uri"], "type": output["jobOutputType"]}
        return {"values": resolved}

    def log_folder(self, job: Resource, parent: Resource | None = None) -> LogFolder | None:
        """The job's log folder; a step's needs its pipeline job, read here unless the caller has it (``parent``)."""
        parent_name = job.body["properties"].get("properties", {}).get("azureml.pipelinerunid")
        if parent is None and parent_name:
            parent = self.resources.store.get(f"{job.parent_id}/jobs/{parent_name}")
        return log_folder(job, parent, self.jobs_root)

    def log_file(self, job_id: str, name: str, expiry: str, signature: str) -> Path:
        """The log file a signed link names (403 for a bad link, 404 for a job or file that does not exist)."""
        job = self.resources.get(job_id)
        check_log_link(job.id, name, expiry, signature, self._link_key(job))
        return self.log_path(job, name)

    def log_path(self, job: Resource, name: str) -> Path:
        """A log file of the job (a 404 ``ArmError`` for a name that is not one)."""
        folder = self.log_folder(job)
        if folder is None:
            raise ArmError(404, "LogFileNotFound", f"The job has no log file '{name}'.")
        return folder.path(name)

    def _log_links(self, base_url: str, job: Resource) -> dict[str, str]:
        """Each log file as a read-only signed link (see ``job_logs``)."""
        folder = self.log_folder(job)
        names = folder.names() if folder is not None else []
        if not names:
            return {}
        key = self._link_key(job)
        return {name: log_link(base_url, job.id, name, key) for name in names}

    def _link_key(self, job: Resource) -> str:
        workspace = self.resources.get(job.parent_id)
        return self.datastores.accounts.account(account_name_for(workspace.body["properties"]["workspaceId"])).key
