"""Pipeline components made from submitted pipeline jobs, for ``job_definition`` deployments: the SDK registers
``{"componentSpec": {"sourceJobId": <job>}}`` and the server fills in the job's graph."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from batchpoint.arm.context import RequestContext
from batchpoint.arm.errors import bad_request
from batchpoint.arm.ids import ArmPath
from batchpoint.arm.resources import Upserted
from batchpoint.ml.assets.references import ARM_ID_PREFIX
from batchpoint.ml.assets.service import AssetVersions
from batchpoint.ml.components.pipelines import job_component_spec
from batchpoint.store import Store

ANONYMOUS_COMPONENT = "azureml_anonymous"


def component_from_job(store: Store, version_id: str, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A component version whose spec names a `sourceJobId` gets the job's graph (with the job's input values
    as defaults). Anonymous ones are stored under the job's name as their version, so that deployments made
    from different jobs never share one component; the job is recorded by its id, so that naming it another
    way registers the same definition again (not a changed one, which would be refused)."""
    properties = body.get("properties") or {}
    spec = properties.get("componentSpec")
    if not isinstance(spec, dict) or not spec.get("sourceJobId"):
        return version_id, body
    workspace_id = ArmPath.parse(version_id).workspace_id
    job_name = _job_name(str(spec["sourceJobId"]))
    job = store.get(f"{workspace_id}/jobs/{job_name}")
    if job is None or str(job.body["properties"].get("jobType", "")).lower() != "pipeline":
        raise bad_request(f"The job '{spec['sourceJobId']}' does not exist or is not a pipeline job.", "UserError")
    container_id, _, version = version_id.rpartition("/versions/")
    if container_id.rsplit("/", 1)[-1].lower() == ANONYMOUS_COMPONENT:
        version = job.name
    made = job_component_spec(store, workspace_id, job.body["properties"])
    component_spec = {**made, "name": container_id.rsplit("/", 1)[-1], "version": version, "sourceJobId": job.id}
    return f"{container_id}/versions/{version}", {
        **body,
        "properties": {**properties, "componentSpec": component_spec},
    }


@dataclass
class ComponentVersions(AssetVersions):
    """Component versions, which may be made from a submitted pipeline job (``component_from_job``)."""

    def put(self, ctx: RequestContext, version_id: str, body: dict[str, Any]) -> Upserted:
        return super().put(ctx, *component_from_job(self.store, version_id, body))


def _job_name(reference: str) -> str:
    """A job named as the SDK and CLI send it: its name, `azureml:<name>` or its ARM id."""
    return reference.removeprefix(ARM_ID_PREFIX).rstrip("/").rsplit("/jobs/", 1)[-1]
