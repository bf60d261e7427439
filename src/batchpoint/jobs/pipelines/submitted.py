"""Pipeline jobs submitted directly (``PUT {workspace}/jobs/{name}``: ``ml_client.jobs.create_or_update(job)``,
``az ml job create -f pipeline.yml``), and the pipeline components made from them for ``job_definition``
deployments (the SDK registers ``{"componentSpec": {"sourceJobId": <job>}}``; the server fills in the graph).

A submitted job runs like an invoked pipeline deployment's job: its steps are child jobs, run by the same runner.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from batchpoint.arm.context import RequestContext
from batchpoint.arm.errors import bad_request, conflict
from batchpoint.arm.ids import JOB_TYPE
from batchpoint.arm.resources import OnResources, Resources, new_version
from batchpoint.jobs.invoke import insert_job
from batchpoint.jobs.pipelines.planner import PipelinePlanner, PlannedPipeline, Requested, child_rows
from batchpoint.jobs.run_record import PipelineRun, keep_run
from batchpoint.jobs.studio_link import studio_services
from batchpoint.jobs.wire import SubmittedJob
from batchpoint.ml.components.pipelines import job_component_spec, pipeline_of_spec
from batchpoint.runtime.status import JobStatus
from batchpoint.store.entities import Resource, parent_of

DEFAULT_EXPERIMENT = "Default"
"""Azure's experiment for a job submitted without one."""


@dataclass
class SubmittedJobs(OnResources):
    resources: Resources
    pipelines: PipelinePlanner
    runner: Any
    """The JobRunner that takes accepted jobs to their end."""

    def create(self, ctx: RequestContext, job_id: str, body: SubmittedJob) -> Resource:
        """Check and plan a pipeline job, store it with its steps (child jobs) and start it."""
        job_type = body.properties.jobType
        if job_type.lower() != "pipeline":
            raise bad_request(
                f"batchpoint runs pipeline jobs (jobType 'Pipeline'); a '{job_type}' job cannot be submitted. "
                "Put the command in a pipeline (a pipeline job with one step) instead.",
                "UserError",
            )
        self.resources.require(parent_of(job_id))
        if self.store.get_body_json(job_id) is not None:
            raise conflict(f"A job named '{job_id.rsplit('/', 1)[-1]}' already exists in this workspace.")
        workspace_id, job_name = job_id.rsplit("/jobs/", 1)
        properties = body.properties.model_dump(mode="json", exclude_none=True)
        spec = job_component_spec(self.store, workspace_id, properties)
        component_id = str(properties.get("componentId") or "")
        pipeline = pipeline_of_spec(self.store, workspace_id, component_id, spec, f"The pipeline job '{job_name}'")
        settings = properties.get("settings") or {}
        planned = self.pipelines.plan_pipeline(
            job_name, workspace_id, pipeline, Requested({}, body.properties.outputs or {}), settings
        )
        job = new_version(ctx, job_id, JOB_TYPE, _job_document(workspace_id, job_name, properties, planned), None)
        keep_run(job, PipelineRun(planned.record))
        with self.store.transaction():
            insert_job(self.store, self.runner, job, child_rows(ctx, workspace_id, planned))
        self.runner.submit(job.id)
        return job


def _job_document(
    workspace_id: str, job_name: str, properties: dict[str, Any], planned: PlannedPipeline
) -> dict[str, Any]:
    """The job as sent, with Azure's defaults for what was left out, its status and where its outputs go."""
    return {
        "properties": {
            **properties,
            "status": JobStatus.NOT_STARTED,
            "displayName": properties.get("displayName") or job_name,
            "experimentName": properties.get("experimentName") or DEFAULT_EXPERIMENT,
            "properties": properties.get("properties") or {},
            "tags": properties.get("tags") or {},
            "inputs": properties.get("inputs") or {},
            "outputs": planned.document["outputs"],
            "settings": planned.document["settings"],
            "services": studio_services(workspace_id, job_name),
        }
    }
