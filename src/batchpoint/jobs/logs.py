"""Where each kind of job keeps its log files, under the names Azure ML clients look for, and the signed,
read-only links the run details hand out for them.

- A model job: its output folder's ``logs/`` (Azure's layout, ``runtime/layout.py``: ``job_result.txt``, ``user/...``,
  and ``user_logs/std_log.txt``, the log ``jobs.stream`` prints).
- A pipeline job: ``logs/azureml/executionlogs.txt`` (step states and every step's output) in its job folder.
- A pipeline step (a child job): ``user_logs/std_log.txt`` in its working folder.

A link is ``/logs/v1.0{job id}/{name}?se={expiry}&sig={signature}``: like a SAS link, it works without a token
(``jobs.stream`` downloads logs with a plain HTTP client), only for that file of that job and until it expires.
It is signed with the key of the workspace's storage account, which every replica reads from the database.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlencode

from batchpoint.arm.errors import ArmError
from batchpoint.jobs.run_record import PipelineRun, model_run_of, run_of
from batchpoint.runtime.pipeline import step_log
from batchpoint.storage.auth import denied, sign
from batchpoint.store.entities import Resource, utcnow

LOG_LINK_LIFETIME = timedelta(hours=12)
EXPIRY_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
PIPELINE_LOGS = "logs"
EXECUTION_LOG = Path(PIPELINE_LOGS) / "azureml" / "executionlogs.txt"
"""A pipeline job's log, relative to its job folder: the name ``jobs.stream`` streams for pipeline jobs."""
STREAMED_LOGS = (re.compile(r"user_logs/std_log[\D]*0*(?:_ps)?\.txt"), re.compile(r"logs/azureml/executionlogs\.txt"))
"""The log ``jobs.stream`` prints, as azure-ai-ml picks it: a job's ``std_log.txt``, else a pipeline's log."""


@dataclass(frozen=True)
class LogFolder:
    root: Path
    """Log names are paths relative to this folder."""
    listed: str = ""
    """The sub-folder whose files are logs ("" for all of ``root``)."""

    def names(self) -> list[str]:
        folder = self.root / self.listed
        if not folder.is_dir():
            return []
        return sorted(path.relative_to(self.root).as_posix() for path in folder.rglob("*") if _is_log(path))

    def path(self, name: str) -> Path:
        """The file ``name`` names, else a 404: never a file outside the listed folder, nor a hidden one."""
        folder = (self.root / self.listed).resolve()
        path = (self.root / name).resolve()
        if (folder not in path.parents and path != folder) or not _is_log(path):
            raise ArmError(404, "LogFileNotFound", f"The job has no log file '{name}'.")
        return path


def _is_log(path: Path) -> bool:
    return path.is_file() and not path.name.startswith(".")


def streamed_log(names: list[str]) -> str | None:
    return next((name for pattern in STREAMED_LOGS for name in sorted(names) if pattern.fullmatch(name)), None)


def pipeline_execution_log(jobs_root: Path, job_name: str) -> Path:
    return jobs_root / job_name / EXECUTION_LOG


def log_folder(job: Resource, parent: Resource | None, jobs_root: Path) -> LogFolder | None:
    """The log folder of ``job``; ``parent`` is the job of a step, else None. A model job's scoring step has its
    parent's logs."""
    for owner in (job, parent):
        model_run = model_run_of(owner)
        if model_run is not None:
            return LogFolder(model_run.spec.logs_dir)
    if isinstance(run_of(job), PipelineRun):
        return LogFolder(jobs_root / job.name, PIPELINE_LOGS)
    node = job.body["properties"].get("properties", {}).get("azureml.nodeid")
    parent_run = run_of(parent)
    steps = parent_run.steps if isinstance(parent_run, PipelineRun) else []
    work_dir = next((Path(step["work_dir"]) for step in steps if step["name"] == node), None)
    if work_dir is None:
        return None
    return LogFolder(work_dir, step_log(work_dir).parent.name)


def _signed_text(job_id: str, name: str, expiry: str) -> str:
    return f"{job_id.lower()}\n{name}\n{expiry}"


def log_link(base_url: str, job_id: str, name: str, key: str) -> str:
    expiry = (utcnow() + LOG_LINK_LIFETIME).strftime(EXPIRY_FORMAT)
    query = urlencode({"se": expiry, "sig": sign(key, _signed_text(job_id, name, expiry))})
    return f"{base_url}/logs/v1.0{job_id}/{quote(name)}?{query}"


def check_log_link(job_id: str, name: str, expiry: str, signature: str, key: str) -> None:
    try:
        expires = datetime.strptime(expiry, EXPIRY_FORMAT).replace(tzinfo=utcnow().tzinfo)
    except ValueError:
        raise denied("The link's expiry is malformed.") from None
    if not hmac.compare_digest(signature, sign(key, _signed_text(job_id, name, expiry))):
        raise denied("Signature did not match the link.")
    if expires <= utcnow():
        raise denied("The link has expired.")
