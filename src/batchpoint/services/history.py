"""The run-history view of jobs that ``azure-ai-ml`` reads for ``jobs.stream`` (and the CLI for logs)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from batchpoint.services.blob_auth import sas_for
from batchpoint.services.datastores import Datastores
from batchpoint.services.pipeline_jobs import child_name
from batchpoint.services.resources import Resources
from batchpoint.store.entities import Resource

LOG_LINK_LIFETIME = timedelta(hours=12)
OUTPUT_ASSET = re.compile(r"^azureml://jobs/(?P<job>[^/]+)/outputs/(?P<output>[^/]+)$")


def _logs_dir(job: Resource) -> Path | None:
    """A model job's logs folder; pipeline jobs and their steps keep their logs outside the datastores."""
    return Path(job.secrets["spec"]["output_dir"]) / "logs" if "spec" in job.secrets else None


def _run_of_child(parent: str, child: Resource) -> dict[str, Any]:
    properties = child.body["properties"]
    return {
        "runId": child.name,
        "parentRunId": parent,
        "rootRunId": parent,
        "experimentId": parent,
        "name": properties["displayName"],
        "displayName": properties["displayName"],
        "status": properties["status"],
        "runType": "azureml.StepRun",
        "createdUtc": child.body.get("systemData", {}).get("createdAt"),
        "startTimeUtc": properties.get("startTime"),
        "endTimeUtc": properties.get("endTime"),
        "properties": properties.get("properties", {}),
        "tags": {},
        "services": {},
    }


def output_asset_id(job_name: str, output: str) -> str:
    return f"azureml://jobs/{job_name}/outputs/{output}"


@dataclass
class History:
    resources: Resources
    datastores: Datastores

    def details(self, base_url: str, job_id: str) -> dict[str, Any]:
        job = self.resources.get(job_id)
        properties = job.body["properties"]
        details: dict[str, Any] = {
            "runId": job.name,
            "status": properties["status"],
            "startTimeUtc": properties.get("startTime"),
            "endTimeUtc": properties.get("endTime"),
            "logFiles": self._log_links(base_url, _logs_dir(job)),
            "warnings": [],
            "services": {},
            "properties": properties.get("properties", {}),
        }
        if "error" in properties:
            details["error"] = {"error": properties["error"]}
        return details

    def children(self, job_id: str) -> list[dict[str, Any]]:
        """A pipeline job's steps as run-history runs (``jobs.list(parent_job_name=...)``); none for a model job."""
        job = self.resources.get(job_id)
        workspace_id = job.id.rsplit("/jobs/", 1)[0]
        runs = []
        for step in (job.secrets.get("pipeline") or {}).get("steps", []):
            child = self.resources.store.get(f"{workspace_id}/jobs/{child_name(job.name, step['name'])}")
            if child is not None:
                runs.append(_run_of_child(job.name, child))
        return runs

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

    def _log_links(self, base_url: str, logs: Path | None) -> dict[str, str]:
        """Each log file as a read-only SAS link of the blob API (only for outputs on a local datastore)."""
        if logs is None:
            return {}
        root = self.datastores.storage_root.resolve()
        folder = logs.resolve()
        if root not in folder.parents or not folder.is_dir():
            return {}
        account, container, *rest = folder.relative_to(root).parts
        prefix = "/".join(rest)
        sas = sas_for(account, self.datastores.account(account).key, container, prefix, "r", LOG_LINK_LIFETIME)
        return {
            path.relative_to(folder).as_posix(): f"{base_url}/blob/{account}/{container}/{prefix}/"
            f"{path.relative_to(folder).as_posix()}?{sas}"
            for path in sorted(folder.rglob("*"))
            if path.is_file()
        }
