"""Compute clusters: Compute_CreateOrUpdate, Compute_Get, Compute_List and Compute_Delete."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

from fastapi import Depends, Path, Query, Request, Response

from batchpoint.api.deps import MlContext, ServicesDep, WorkspaceId
from batchpoint.api.docs import responses
from batchpoint.api.listing import list_response, paging_parameters
from batchpoint.api.responses import accepted_response, arm_json, put_response
from batchpoint.api.routing import routes
from batchpoint.arm.ids import COMPUTE_TYPE
from batchpoint.ml.computes.rules import compute_id, refuse_builtin_change
from batchpoint.ml.computes.wire import ComputeResource, ComputeResourceList

router = routes(tags=["Computes"])

WS = (
    "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}"
    "/providers/Microsoft.MachineLearningServices/workspaces/{workspaceName}"
)
COMPUTES = WS + "/computes"
COMPUTE = COMPUTES + "/{computeName}"
READ_ONLY = {"id", "name", "type", "systemData"}


class UnderlyingResourceAction(str, Enum):
    DELETE = "Delete"
    DETACH = "Detach"


async def the_compute_id(workspace: WorkspaceId, computeName: Annotated[str, Path(min_length=1)]) -> str:  # noqa: N803
    return compute_id(workspace, computeName)


ComputeId = Annotated[str, Depends(the_compute_id)]


@router.get(
    COMPUTES,
    operation_id="Compute_List",
    responses=responses({200: ComputeResourceList}),
    openapi_extra=paging_parameters("count", ordered=False),
)
def list_computes(request: Request, ctx: MlContext, services: ServicesDep, workspace: WorkspaceId) -> Response:
    return list_response(ctx, services, workspace, COMPUTE_TYPE, workspace + "/computes", request.query_params, "count")


@router.get(COMPUTE, operation_id="Compute_Get", responses=responses({200: ComputeResource}))
def get_compute(ctx: MlContext, services: ServicesDep, resource_id: ComputeId) -> Response:
    return arm_json(services.resources.get_json(resource_id), ctx.base_url)


@router.put(
    COMPUTE,
    operation_id="Compute_CreateOrUpdate",
    responses=responses({200: ComputeResource, 201: ComputeResource}),
)
def put_compute(ctx: MlContext, services: ServicesDep, resource_id: ComputeId, body: ComputeResource) -> Response:
    request = body.model_dump(mode="json", exclude=READ_ONLY)
    if not request.get("location"):
        request["location"] = services.resources.get(resource_id.rsplit("/computes/", 1)[0]).body["location"]
    return put_response(ctx, services.computes.put(ctx, resource_id, request))


@router.delete(COMPUTE, operation_id="Compute_Delete", responses=responses({200: None, 202: None, 204: None}))
def delete_compute(
    ctx: MlContext,
    services: ServicesDep,
    resource_id: ComputeId,
    underlying_resource_action: Annotated[UnderlyingResourceAction, Query(alias="underlyingResourceAction")],
) -> Response:
    """Delete and Detach both remove the compute: batchpoint clusters have no underlying machines to keep."""
    refuse_builtin_change(resource_id)
    return accepted_response(ctx, services.computes.delete(ctx, resource_id))
