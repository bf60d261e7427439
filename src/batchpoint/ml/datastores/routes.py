"""Datastores of a workspace, and their secrets."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query, Request, Response

from batchpoint.api.deps import MlContext, ResourcesDep, WorkspaceId, provided
from batchpoint.api.docs import responses
from batchpoint.api.listing import list_response, paging_parameters
from batchpoint.api.responses import arm_json
from batchpoint.api.routing import routes
from batchpoint.arm.ids import child_id
from batchpoint.arm.registry import CHILD_NAME_PATTERN, WORKSPACE_PATH
from batchpoint.ml.assets.wire import AssetContainer, AssetList, DatastoreSecrets
from batchpoint.ml.datastores.service import DATASTORE_TYPE, Datastores

router = routes(tags=["Datastores"])

DatastoresDep = Annotated[Datastores, provided(Datastores)]

DATASTORES = WORKSPACE_PATH + "/datastores"
DATASTORE = DATASTORES + "/{name}"
DatastoreName = Annotated[str, Path(min_length=1, max_length=255, pattern=CHILD_NAME_PATTERN)]


async def datastore_id(workspace: WorkspaceId, name: DatastoreName) -> str:
    return child_id(workspace, "datastores", name)


DatastoreId = Annotated[str, Depends(datastore_id)]


@router.get(
    DATASTORES,
    operation_id="Datastores_List",
    responses=responses({200: AssetList}),
    openapi_extra=paging_parameters("count", ordered=False),
)
def list_datastores(
    request: Request,
    ctx: MlContext,
    datastores: DatastoresDep,
    resources: ResourcesDep,
    workspace: WorkspaceId,
    is_default: Annotated[bool | None, Query(alias="isDefault")] = None,
) -> Response:
    if is_default:
        default = datastores.default_of(workspace)
        return arm_json({"value": [default.body]}, ctx.base_url)
    path = workspace + "/datastores"
    return list_response(ctx, resources, workspace, DATASTORE_TYPE, path, request.query_params, "count")


@router.get(DATASTORE, operation_id="Datastores_Get", responses=responses({200: AssetContainer}))
def get_datastore(ctx: MlContext, resources: ResourcesDep, resource_id: DatastoreId) -> Response:
    return arm_json(resources.get_json(resource_id), ctx.base_url)


@router.put(
    DATASTORE, operation_id="Datastores_CreateOrUpdate", responses=responses({200: AssetContainer, 201: AssetContainer})
)
def put_datastore(
    ctx: MlContext, datastores: DatastoresDep, resource_id: DatastoreId, body: AssetContainer
) -> Response:
    upserted = datastores.put(ctx, resource_id, body.model_dump(mode="json", exclude_none=True))
    return arm_json(upserted.resource.body_json(), ctx.base_url, 201 if upserted.created else 200)


@router.delete(DATASTORE, operation_id="Datastores_Delete", responses=responses({200: None}))
def delete_datastore(ctx: MlContext, datastores: DatastoresDep, resource_id: DatastoreId) -> Response:
    datastores.delete(resource_id)
    return Response(status_code=200)


@router.post(
    DATASTORE + "/listSecrets", operation_id="Datastores_ListSecrets", responses=responses({200: DatastoreSecrets})
)
def list_secrets(ctx: MlContext, datastores: DatastoresDep, resource_id: DatastoreId) -> Response:
    return arm_json(datastores.list_secrets(resource_id), ctx.base_url)
