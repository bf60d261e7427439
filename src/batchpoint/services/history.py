"""The run-history view of jobs that ``azure-ai-ml`` reads for ``jobs.stream`` (and the CLI for logs)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from batchpoint.services.blob_auth import sas_for
from batchpoint.services.datastores import Datastores
from batchpoint.services.resources import Resources

LOG_LINK_LIFETIME = timedelta(hours=12)


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
            "logFiles": self._log_links(base_url, Path(job.secrets["spec"]["output_dir"]) / "logs"),
            "warnings": [],
            "services": {},
            "properties": properties.get("properties", {}),
        }
        if "error" in properties:
            details["error"] = {"error": properties["error"]}
        return details

    def _log_links(self, base_url: str, logs: Path) -> dict[str, str]:
        """Each log file as a read-only SAS link of the blob API (only for outputs on a local datastore)."""
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
