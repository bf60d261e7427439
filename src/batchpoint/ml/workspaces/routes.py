"""Resource groups, workspaces and the workspace discovery document."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse

from batchpoint.api.deps import ArmContext, GroupId, MlContext, ResourcesDep, WorkspaceId, base_url, provided
from batchpoint.api.docs import responses
from batchpoint.api.listing import list_response, paging_parameters
from batchpoint.api.responses import arm_json
from batchpoint.api.routing import routes
from batchpoint.arm.ids import WORKSPACE_TYPE
from batchpoint.arm.registry import WORKSPACE_PATH
from batchpoint.arm.resources import Upserted
from batchpoint.ml.workspaces.service import Workspaces, discovery_document
from batchpoint.ml.workspaces.wire import ResourceGroup, Workspace, WorkspaceList

router = routes(tags=["Workspaces"])

WorkspacesDep = Annotated[Workspaces, provided(Workspaces)]

GROUP = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}"
WORKSPACES = GROUP + "/providers/Microsoft.MachineLearningServices/workspaces"


def _upserted(ctx: Any, upserted: Upserted) -> Response:
    return arm_json(upserted.resource.body_json(), ctx.base_url, 201 if upserted.created else 200)


@router.put(
    GROUP, operation_id="ResourceGroups_CreateOrUpdate", responses=responses({200: ResourceGroup, 201: ResourceGroup})
)
def put_resource_group(ctx: ArmContext, workspaces: WorkspacesDep, group: GroupId, body: ResourceGroup) -> Response:
    request = body.model_dump(mode="json", exclude_none=True)
    return _upserted(ctx, workspaces.put_resource_group(ctx, group, request))


@router.get(GROUP, operation_id="ResourceGroups_Get", responses=responses({200: ResourceGroup}))
def get_resource_group(ctx: ArmContext, resources: ResourcesDep, group: GroupId) -> Response:
    return arm_json(resources.get_json(group), ctx.base_url)


@router.delete(GROUP, operation_id="ResourceGroups_Delete", responses=responses({200: None}))
def delete_resource_group(ctx: ArmContext, workspaces: WorkspacesDep, group: GroupId) -> Response:
    workspaces.delete(group)
    return Response(status_code=200)


@router.get(
    WORKSPACES,
    operation_id="Workspaces_ListByResourceGroup",
    responses=responses({200: WorkspaceList}),
    openapi_extra=paging_parameters("count", ordered=False),
)
def list_workspaces(request: Request, ctx: MlContext, resources: ResourcesDep, group: GroupId) -> Response:
    path = group + "/providers/Microsoft.MachineLearningServices/workspaces"
    return list_response(ctx, resources, group, WORKSPACE_TYPE, path, request.query_params, "count")


@router.put(
    WORKSPACE_PATH, operation_id="Workspaces_CreateOrUpdate", responses=responses({200: Workspace, 201: Workspace})
)
def put_workspace(ctx: MlContext, workspaces: WorkspacesDep, workspace: WorkspaceId, body: Workspace) -> Response:
    request = body.model_dump(mode="json", exclude_none=True)
    return _upserted(ctx, workspaces.put_workspace(ctx, workspace, request))


@router.get(WORKSPACE_PATH, operation_id="Workspaces_Get", responses=responses({200: Workspace}))
def get_workspace(ctx: MlContext, resources: ResourcesDep, workspace: WorkspaceId) -> Response:
    return arm_json(resources.get_json(workspace), ctx.base_url)


@router.delete(WORKSPACE_PATH, operation_id="Workspaces_Delete", responses=responses({200: None}))
def delete_workspace(ctx: MlContext, workspaces: WorkspacesDep, workspace: WorkspaceId) -> Response:
    workspaces.delete(workspace)
    return Response(status_code=200)


@router.get("/discovery", operation_id="Workspaces_Discovery", tags=["Discovery"], response_class=JSONResponse)
def discovery(request: Request) -> dict[str, str]:
    """Read without a token, as azure-ai-ml does: where the data-plane and history services are."""
    return discovery_document(base_url(request))
