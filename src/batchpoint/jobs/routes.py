"""Invoking a batch endpoint (``POST {scoringUri}``), and batch jobs as ARM resources."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Query, Request, Response

from batchpoint.access.authentication import endpoint_key_caller
from batchpoint.api.crud import Handler, action, id_dependency
from batchpoint.api.deps import MlContext, ResourcesDep, WorkspaceId, authorized_caller, base_url, provided
from batchpoint.api.docs import responses
from batchpoint.api.listing import paged_response, paging_parameters
from batchpoint.api.responses import arm_json
from batchpoint.api.routing import routes
from batchpoint.arm.context import RequestContext
from batchpoint.arm.ids import child_id
from batchpoint.arm.registry import ResourceType
from batchpoint.jobs.history import History
from batchpoint.jobs.invoke import Jobs
from batchpoint.jobs.pipelines.submitted import SubmittedJobs
from batchpoint.jobs.resource_types import JOBS
from batchpoint.jobs.wire import (
    InvokeRequest,
    InvokeResponse,
    ResolveUrisRequest,
    RunDataRequest,
    RunDetails,
    SubmittedJob,
)
from batchpoint.ml.assets.wire import AssetList, AssetVersion
from batchpoint.ml.endpoints.resource_types import BATCH_DEPLOYMENTS, BATCH_ENDPOINTS
from batchpoint.ml.endpoints.routes import EndpointId
from batchpoint.ml.workspaces.resource_types import WORKSPACE_PATH
from batchpoint.store.entities import JobFilter, parent_of

router = routes(tags=["Jobs"])

INVOKE = "/inference" + BATCH_ENDPOINTS.item_path + "/jobs"
JOB = JOBS.item_path
REPEATABILITY_HEADERS = ("repeatability_request-id", "repeatability-request-id", "x-ms-client-request-id")

JobsDep = Annotated[Jobs, provided(Jobs)]
HistoryDep = Annotated[History, provided(History)]


def data_plane_context(request: Request) -> RequestContext:
    """Data-plane calls (invoke, run history) carry no api-version, but the same authentication and authorization."""
    return RequestContext(
        base_url=base_url(request), caller=authorized_caller(request, data_plane=True), api_version=""
    )


async def invoke_context(request: Request) -> RequestContext:
    return data_plane_context(request)


def invoke_endpoint_context(request: Request, resources: ResourcesDep, resource_id: EndpointId) -> RequestContext:
    """A ``Key`` endpoint's own keys may invoke it; anything else needs a token with the invoke permission. Plain
    ``def``: it reads the endpoint from the database, which FastAPI then does on its thread pool."""
    caller = endpoint_key_caller(request, resources.store.get(resource_id))
    if caller is None:
        return data_plane_context(request)
    return RequestContext(base_url=base_url(request), caller=caller, api_version="")


JobId = Annotated[str, id_dependency(JOBS)]
DataplaneContext = Annotated[RequestContext, Depends(invoke_context)]


def invoke_answer(job_body: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": job_body["id"],
        "name": job_body["name"],
        "type": job_body["type"],
        "properties": {"status": job_body["properties"]["status"]},
    }


@router.post(INVOKE, operation_id="BatchEndpoints_Invoke", responses=responses({200: InvokeResponse}))
def invoke(
    request: Request,
    ctx: Annotated[RequestContext, Depends(invoke_endpoint_context)],
    jobs: JobsDep,
    resource_id: EndpointId,
    body: InvokeRequest,
) -> Response:
    """Start a batch job on the deployment named by ``azureml-model-deployment``, else the endpoint's default."""
    request_id = next((request.headers[name] for name in REPEATABILITY_HEADERS if request.headers.get(name)), None)
    header = request.headers.get("azureml-model-deployment")
    job = jobs.invoke(ctx, resource_id, body.properties, header, request_id)
    return arm_json(invoke_answer(job.body), ctx.base_url)


@router.put(JOB, operation_id="Jobs_CreateOrUpdate", responses=responses({201: AssetVersion}))
def create_job(
    ctx: MlContext, submitted: Annotated[SubmittedJobs, provided(SubmittedJobs)], resource_id: JobId, body: SubmittedJob
) -> Response:
    """A pipeline job (``jobs.create_or_update``, ``az ml job create``): checked, then its steps run as child jobs."""
    job = submitted.create(ctx, resource_id, body)
    return arm_json(job.body_json(), ctx.base_url, 201)


@action(router, JOBS, "cancel", None)
def cancel_job(ctx: MlContext, jobs: JobsDep, resource_id: JobId) -> Response:
    """Cancellation is asynchronous: the job reads Canceled once its workers have stopped."""
    jobs.cancel(resource_id)
    return Response(status_code=200)


@action(router, JOBS, "rerunFailed", InvokeResponse)
def rerun_failed(ctx: MlContext, jobs: JobsDep, resource_id: JobId) -> Response:
    """Start a job of the same deployment over the items that failed or never ran in this ended job; answers like
    an invoke (batchpoint's own action; Azure ML has none)."""
    job = jobs.rerun_failed(ctx, resource_id)
    return arm_json(invoke_answer(job.body), ctx.base_url)


@router.get(
    "/history/v1.0" + JOB.replace("/jobs/", "/runs/") + "/details",
    operation_id="Runs_GetDetails",
    responses=responses({200: RunDetails}),
)
def run_details(ctx: DataplaneContext, history: HistoryDep, resource_id: JobId) -> Response:
    """Status, times and log files (read-only links) of a job, as ``jobs.stream`` polls them."""
    return arm_json(history.details(ctx.base_url, resource_id), ctx.base_url)


@router.get("/logs/v1.0" + JOB + "/{logName:path}", operation_id="Runs_GetLogFile", responses=responses({200: None}))
def log_file(
    history: HistoryDep,
    resource_id: JobId,
    logName: str,  # noqa: N803
    se: Annotated[str, Query(description="The link's expiry.")] = "",
    sig: Annotated[str, Query(description="The link's signature.")] = "",
) -> Response:
    """A log file, through the signed link the run details gave out (no token: ``jobs.stream`` sends none)."""
    path = history.log_file(resource_id, logName, se, sig)
    return Response(path.read_bytes(), media_type="text/plain; charset=utf-8")


MFE_PREFIX = "/mferp/managementfrontend"
DeploymentId = Annotated[str, id_dependency(BATCH_DEPLOYMENTS)]


def _list_jobs_route(resource_type: ResourceType) -> Callable[[Handler], Handler]:
    return router.get(
        MFE_PREFIX + resource_type.item_path + "/jobs",
        operation_id=f"{resource_type.operations.group}_ListJobs",
        responses=responses({200: AssetList}),
        openapi_extra=paging_parameters("$top"),
    )


def _jobs_page(
    request: Request, ctx: RequestContext, jobs: Jobs, endpoint_id: str, deployment: str | None = None
) -> Response:
    ran_by = f"{endpoint_id}/deployments/{deployment}" if deployment else endpoint_id
    return paged_response(
        ctx,
        f"{MFE_PREFIX}{ran_by}/jobs",
        request.query_params,
        "$top",
        lambda order, position, size: jobs.of_endpoint(
            endpoint_id, JobFilter(deployment=deployment), order, position, size
        ),
    )


@_list_jobs_route(BATCH_ENDPOINTS)
def list_endpoint_jobs(request: Request, ctx: DataplaneContext, jobs: JobsDep, resource_id: EndpointId) -> Response:
    """``batch_endpoints.list_jobs``: the jobs an endpoint ran, oldest first, paged like every ARM list."""
    return _jobs_page(request, ctx, jobs, resource_id)


@_list_jobs_route(BATCH_DEPLOYMENTS)
def list_deployment_jobs(request: Request, ctx: DataplaneContext, jobs: JobsDep, resource_id: DeploymentId) -> Response:
    """``batch_deployments.list_jobs``: the jobs one deployment ran, oldest first, paged like every ARM list."""
    return _jobs_page(request, ctx, jobs, parent_of(resource_id), resource_id.rsplit("/", 1)[-1])


HISTORY = "/history/v1.0" + WORKSPACE_PATH


@router.post(HISTORY + "/rundata", operation_id="Runs_GetRunData", responses=responses({200: None}))
def run_data(ctx: DataplaneContext, history: HistoryDep, workspace: WorkspaceId, body: RunDataRequest) -> Response:
    """``jobs.download``: the run's named outputs, as asset ids resolved by ``batchGetResolvedUris``."""
    return arm_json(history.run_data(child_id(workspace, "jobs", body.runId)), ctx.base_url)


@router.get(HISTORY + "/runs/{jobName}/children", operation_id="Runs_GetChildren", responses=responses({200: None}))
def run_children(ctx: DataplaneContext, history: HistoryDep, resource_id: JobId) -> Response:
    """A pipeline job's steps; a model job runs as one step and has none."""
    children = history.children(resource_id)
    return arm_json({"value": children, "continuationToken": None, "nextLink": None}, ctx.base_url)


@router.post(
    "/data/v1.0" + WORKSPACE_PATH + "/dataversion/batchGetResolvedUris",
    operation_id="DataVersion_BatchGetResolvedUris",
    responses=responses({200: None}),
)
def resolve_output_uris(
    ctx: DataplaneContext, history: HistoryDep, workspace: WorkspaceId, body: ResolveUrisRequest
) -> Response:
    return arm_json(history.resolve_outputs(workspace, body.values), ctx.base_url)
