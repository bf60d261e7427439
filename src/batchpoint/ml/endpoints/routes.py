"""The 11 ARM operations of batch endpoints and batch deployments."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request, Response

from batchpoint.api.deps import (
    CHILD_NAME_PATTERN,
    MlContext,
    ResourceGroupName,
    ServicesDep,
    SubscriptionId,
    WorkspaceId,
    WorkspaceName,
    checked_workspace_id,
)
from batchpoint.api.docs import responses
from batchpoint.api.listing import list_response, paging_parameters
from batchpoint.api.responses import accepted_response, arm_json, put_response
from batchpoint.api.routing import routes
from batchpoint.arm.context import RequestContext
from batchpoint.arm.ids import BATCH_DEPLOYMENT_TYPE, BATCH_ENDPOINT_TYPE, child_id
from batchpoint.arm.tracked import TrackedResources
from batchpoint.ml.endpoints.wire import (
    BatchDeploymentList,
    BatchDeploymentPatch,
    BatchDeploymentTrackedResource,
    BatchEndpointList,
    BatchEndpointPatch,
    BatchEndpointTrackedResource,
    EndpointAuthKeys,
)

router = routes(tags=["Batch"])

WS = (
    "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}"
    "/providers/Microsoft.MachineLearningServices/workspaces/{workspaceName}"
)
ENDPOINTS = WS + "/batchEndpoints"
ENDPOINT = ENDPOINTS + "/{endpointName}"
DEPLOYMENTS = ENDPOINT + "/deployments"
DEPLOYMENT = DEPLOYMENTS + "/{deploymentName}"

AnyName = Annotated[str, Path(min_length=1)]
NewName = Annotated[str, Path(pattern=CHILD_NAME_PATTERN)]
READ_ONLY = {"id", "name", "type", "systemData"}


async def endpoint_id(
    subscriptionId: SubscriptionId,  # noqa: N803
    resourceGroupName: ResourceGroupName,  # noqa: N803
    workspaceName: WorkspaceName,  # noqa: N803
    endpointName: AnyName,  # noqa: N803
) -> str:
    return _endpoint_id(subscriptionId, resourceGroupName, workspaceName, endpointName)


async def deployment_id(
    subscriptionId: SubscriptionId,  # noqa: N803
    resourceGroupName: ResourceGroupName,  # noqa: N803
    workspaceName: WorkspaceName,  # noqa: N803
    endpointName: AnyName,  # noqa: N803
    deploymentName: AnyName,  # noqa: N803
) -> str:
    return child_id(
        _endpoint_id(subscriptionId, resourceGroupName, workspaceName, endpointName), "deployments", deploymentName
    )


async def new_endpoint_id(
    subscriptionId: SubscriptionId,  # noqa: N803
    resourceGroupName: ResourceGroupName,  # noqa: N803
    workspaceName: WorkspaceName,  # noqa: N803
    endpointName: NewName,  # noqa: N803
) -> str:
    return _endpoint_id(subscriptionId, resourceGroupName, workspaceName, endpointName)


async def new_deployment_id(
    subscriptionId: SubscriptionId,  # noqa: N803
    resourceGroupName: ResourceGroupName,  # noqa: N803
    workspaceName: WorkspaceName,  # noqa: N803
    endpointName: NewName,  # noqa: N803
    deploymentName: NewName,  # noqa: N803
) -> str:
    return child_id(
        _endpoint_id(subscriptionId, resourceGroupName, workspaceName, endpointName), "deployments", deploymentName
    )


def _endpoint_id(subscription: str, group: str, workspace: str, endpoint: str) -> str:
    """The four id dependencies differ only in which name pattern FastAPI checks; they build ids alike."""
    return child_id(checked_workspace_id(subscription, group, workspace), "batchEndpoints", endpoint)


EndpointId = Annotated[str, Depends(endpoint_id)]
DeploymentId = Annotated[str, Depends(deployment_id)]
NewEndpointId = Annotated[str, Depends(new_endpoint_id)]
NewDeploymentId = Annotated[str, Depends(new_deployment_id)]


def _put(
    ctx: RequestContext,
    service: TrackedResources,
    resource_id: str,
    body: BatchEndpointTrackedResource | BatchDeploymentTrackedResource,
) -> Response:
    request = body.model_dump(mode="json", exclude=READ_ONLY)
    return put_response(ctx, service.put(ctx, resource_id, request))


@router.get(
    ENDPOINTS,
    operation_id="BatchEndpoints_List",
    responses=responses({200: BatchEndpointList}),
    openapi_extra=paging_parameters("count"),
)
def list_endpoints(request: Request, ctx: MlContext, services: ServicesDep, workspace: WorkspaceId) -> Response:
    path = workspace + "/batchEndpoints"
    return list_response(ctx, services, workspace, BATCH_ENDPOINT_TYPE, path, request.query_params, "count")


@router.get(ENDPOINT, operation_id="BatchEndpoints_Get", responses=responses({200: BatchEndpointTrackedResource}))
def get_endpoint(ctx: MlContext, services: ServicesDep, resource_id: EndpointId) -> Response:
    return arm_json(services.resources.get_json(resource_id), ctx.base_url)


@router.put(
    ENDPOINT,
    operation_id="BatchEndpoints_CreateOrUpdate",
    responses=responses({200: BatchEndpointTrackedResource, 201: BatchEndpointTrackedResource}),
)
def put_endpoint(
    ctx: MlContext, services: ServicesDep, resource_id: NewEndpointId, body: BatchEndpointTrackedResource
) -> Response:
    return _put(ctx, services.endpoints, resource_id, body)


@router.patch(
    ENDPOINT,
    operation_id="BatchEndpoints_Update",
    responses=responses({200: BatchEndpointTrackedResource, 202: None}),
)
def patch_endpoint(
    ctx: MlContext, services: ServicesDep, resource_id: NewEndpointId, body: BatchEndpointPatch
) -> Response:
    return accepted_response(
        ctx, services.endpoints.patch(ctx, resource_id, body.model_dump(mode="json", exclude_unset=True))
    )


@router.delete(ENDPOINT, operation_id="BatchEndpoints_Delete", responses=responses({200: None, 202: None, 204: None}))
def delete_endpoint(ctx: MlContext, services: ServicesDep, resource_id: EndpointId) -> Response:
    return accepted_response(ctx, services.endpoints.delete(ctx, resource_id))


@router.post(
    ENDPOINT + "/listkeys", operation_id="BatchEndpoints_ListKeys", responses=responses({200: EndpointAuthKeys})
)
def list_keys(ctx: MlContext, services: ServicesDep, resource_id: EndpointId) -> Response:
    resource = services.resources.get(resource_id)
    keys = {name: resource.secrets.get(name) for name in ("primaryKey", "secondaryKey")}
    return arm_json(keys, ctx.base_url)


@router.get(
    DEPLOYMENTS,
    operation_id="BatchDeployments_List",
    responses=responses({200: BatchDeploymentList}),
    openapi_extra=paging_parameters("$top"),
)
def list_deployments(request: Request, ctx: MlContext, services: ServicesDep, parent_id: EndpointId) -> Response:
    path = parent_id + "/deployments"
    return list_response(ctx, services, parent_id, BATCH_DEPLOYMENT_TYPE, path, request.query_params, "$top")


@router.get(DEPLOYMENT, operation_id="BatchDeployments_Get", responses=responses({200: BatchDeploymentTrackedResource}))
def get_deployment(ctx: MlContext, services: ServicesDep, resource_id: DeploymentId) -> Response:
    return arm_json(services.resources.get_json(resource_id), ctx.base_url)


@router.put(
    DEPLOYMENT,
    operation_id="BatchDeployments_CreateOrUpdate",
    responses=responses({200: BatchDeploymentTrackedResource, 201: BatchDeploymentTrackedResource}),
)
def put_deployment(
    ctx: MlContext, services: ServicesDep, resource_id: NewDeploymentId, body: BatchDeploymentTrackedResource
) -> Response:
    return _put(ctx, services.deployments, resource_id, body)


@router.patch(
    DEPLOYMENT,
    operation_id="BatchDeployments_Update",
    responses=responses({200: BatchDeploymentTrackedResource, 202: None}),
)
def patch_deployment(
    ctx: MlContext, services: ServicesDep, resource_id: NewDeploymentId, body: BatchDeploymentPatch
) -> Response:
    return accepted_response(
        ctx, services.deployments.patch(ctx, resource_id, body.model_dump(mode="json", exclude_unset=True))
    )


@router.delete(
    DEPLOYMENT, operation_id="BatchDeployments_Delete", responses=responses({200: None, 202: None, 204: None})
)
def delete_deployment(ctx: MlContext, services: ServicesDep, resource_id: DeploymentId) -> Response:
    return accepted_response(ctx, services.deployments.delete(ctx, resource_id))
