"""A model deployment's batch job has one child job on Azure, the scoring step, which carries the ``score`` output
and the logs: the batch notebooks read it (``list(ml_client.jobs.list(parent_job_name=job.name))[0]``, then
``jobs.download(name=child.name, output_name="score")``).

batchpoint stores that child with its parent, in the invoke's transaction (docs/azure-sdk.md):

- a ``Command`` job named ``{parent}-batchscoring`` (Azure ML's ARM API has no "Parallel" job type), with the step
  properties Azure gives pipeline steps (``azureml.moduleName``, ...), the parent's compute, environment, inputs
  and ``score`` output, and the parent's log files;
- its status, times and error follow the parent's, written in the same transaction as each change of the parent's,
  with ``systemData.lastModifiedAt`` (which the notebooks subtract ``createdAt`` from);
- the parent keeps its shape (no ``azureml.batchrun`` tag, which would make ``jobs.download`` of the parent look
  for the output in its children), so downloading the parent's output works as before;
- jobs stored before this have no child and keep working as they did.
"""

from __future__ import annotations

from typing import Any

from batchpoint.arm.context import RequestContext
from batchpoint.arm.ids import JOB_TYPE
from batchpoint.arm.operations import iso
from batchpoint.arm.resources import new_version
from batchpoint.jobs.pipelines.planner import child_name, step_properties
from batchpoint.jobs.run_record import model_run_of
from batchpoint.jobs.studio_link import studio_services
from batchpoint.store.entities import Resource, utcnow

SCORING_STEP = "batchscoring"
"""The step's node and module name."""
FOLLOWED = ("status", "startTime", "endTime", "statusMessage", "error")
"""What the child takes from its parent at each change."""


def scoring_child(
    ctx: RequestContext, job: Resource, scoring_script: str | None, environment_id: str | None
) -> Resource:
    """The child job of the model job ``job`` (not stored yet); ``job``'s run record keeps its id."""
    properties = job.body["properties"]
    name = child_name(job.name, SCORING_STEP)
    document = {
        "properties": {
            "jobType": "Command",
            "displayName": SCORING_STEP,
            "experimentName": properties["experimentName"],
            "command": f"{scoring_script or 'the scorer'}: init() once per worker, run(mini_batch) per mini-batch",
            "computeId": properties.get("computeId"),
            "environmentId": environment_id,
            "properties": step_properties(job.name, SCORING_STEP, SCORING_STEP, None, "ParallelRunStep"),
            "tags": {},
            "inputs": properties["inputs"],
            "outputs": properties["outputs"],
            "services": studio_services(job.parent_id, name),
            **_followed(properties),
        }
    }
    return new_version(ctx, f"{job.parent_id}/jobs/{name}", JOB_TYPE, document, None)


def scoring_child_id(job: Resource) -> str | None:
    """The id of a model job's scoring step; None for other jobs and for those stored before steps existed."""
    run = model_run_of(job)
    return run.scoring_child if run is not None else None


def follow(parent: Resource, child: Resource) -> bool:
    """Give ``child`` its parent's state; False when it has it already (nothing to write)."""
    properties = child.body["properties"]
    followed = _followed(parent.body["properties"])
    if all(properties.get(name) == followed.get(name) for name in FOLLOWED):
        return False
    for name in FOLLOWED:
        properties.pop(name, None)
    properties.update(followed)
    touch(child)
    return True


def touch(job: Resource) -> None:
    """A job changed now: its row's time and ``systemData.lastModifiedAt``, which clients read."""
    job.updated_at = utcnow()
    job.body.setdefault("systemData", {})["lastModifiedAt"] = iso(job.updated_at)


def _followed(properties: dict[str, Any]) -> dict[str, Any]:
    return {name: properties[name] for name in FOLLOWED if name in properties}
