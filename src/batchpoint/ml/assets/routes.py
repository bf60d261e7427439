"""Versioned assets: ``{workspace}/{models|codes|environments|data|components}/{name}[/versions/{version}]``.

Each asset kind gets its own routes (and OpenAPI operations) from one template. No postponed annotations here:
FastAPI must see the per-kind dependency types defined inside ``register``.
"""

from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request, Response

from batchpoint.api.deps import MlContext, ResourcesDep, WorkspaceId, provided
from batchpoint.api.docs import responses
from batchpoint.api.listing import list_response, paging_parameters
from batchpoint.api.responses import arm_json
from batchpoint.api.routing import routes
from batchpoint.arm.ids import child_id
from batchpoint.arm.registry import CHILD_NAME_PATTERN, WORKSPACE_PATH
from batchpoint.arm.resources import Upserted
from batchpoint.ml.assets.service import COLLECTIONS, Assets, container_type, version_type
from batchpoint.ml.assets.wire import AssetContainer, AssetList, AssetVersion, PendingUpload
from batchpoint.ml.components.from_jobs import component_from_job
from batchpoint.ml.datastores.service import Datastores

router = routes(tags=["Assets"])

AssetsDep = Annotated[Assets, provided(Assets)]

AssetName = Annotated[str, Path(min_length=1, max_length=255, pattern=CHILD_NAME_PATTERN)]
VersionName = Annotated[str, Path(min_length=1, max_length=255, pattern=r"^[a-zA-Z0-9][a-zA-Z0-9\-_.]*$")]
ListViewType = Annotated[str | None, Query(alias="listViewType", description="ActiveOnly, ArchivedOnly or All")]


def _upserted(ctx: MlContext, upserted: Upserted) -> Response:
    return arm_json(upserted.resource.body_json(), ctx.base_url, 201 if upserted.created else 200)


def register(collection: str) -> None:
    containers = f"{WORKSPACE_PATH}/{collection}"
    container = containers + "/{name}"
    versions = container + "/versions"
    version = versions + "/{version}"
    title = collection[:1].upper() + collection[1:]

    async def container_id(workspace: WorkspaceId, name: AssetName) -> str:
        return child_id(workspace, collection, name)

    async def version_id(parent: Annotated[str, Depends(container_id)], version: VersionName) -> str:
        return child_id(parent, "versions", version)

    ContainerId = Annotated[str, Depends(container_id)]  # noqa: N806
    VersionId = Annotated[str, Depends(version_id)]  # noqa: N806

    @router.get(
        containers,
        operation_id=f"{title}Containers_List",
        responses=responses({200: AssetList}),
        openapi_extra=paging_parameters("$top"),
    )
    def list_containers(
        request: Request,
        ctx: MlContext,
        resources: ResourcesDep,
        workspace: WorkspaceId,
        list_view_type: ListViewType = None,
    ) -> Response:
        path = f"{workspace}/{collection}"
        return list_response(ctx, resources, workspace, container_type(collection), path, request.query_params, "$top")

    @router.put(
        container,
        operation_id=f"{title}Containers_CreateOrUpdate",
        responses=responses({200: AssetContainer, 201: AssetContainer}),
    )
    def put_container(ctx: MlContext, assets: AssetsDep, resource_id: ContainerId, body: AssetContainer) -> Response:
        request: dict[str, Any] = body.model_dump(mode="json", exclude_none=True)
        return _upserted(ctx, assets.put_container(ctx, collection, resource_id, request))

    @router.get(container, operation_id=f"{title}Containers_Get", responses=responses({200: AssetContainer}))
    def get_container(ctx: MlContext, resources: ResourcesDep, resource_id: ContainerId) -> Response:
        return arm_json(resources.get_json(resource_id), ctx.base_url)

    @router.delete(container, operation_id=f"{title}Containers_Delete", responses=responses({200: None}))
    def delete_container(assets: AssetsDep, ctx: MlContext, resource_id: ContainerId) -> Response:
        assets.delete(resource_id)
        return Response(status_code=200)

    @router.get(
        versions,
        operation_id=f"{title}Versions_List",
        responses=responses({200: AssetList}),
        openapi_extra=paging_parameters("$top"),
    )
    def list_versions(
        request: Request,
        ctx: MlContext,
        assets: AssetsDep,
        resources: ResourcesDep,
        workspace: WorkspaceId,
        resource_id: ContainerId,
        list_view_type: ListViewType = None,
        hash: Annotated[str | None, Query(description="Content hash of a code folder")] = None,  # noqa: A002
        hash_version: Annotated[str | None, Query(alias="hashVersion")] = None,
    ) -> Response:
        if hash is not None:
            found = assets.code_versions_with_hash(workspace, hash, hash_version or "")
            return arm_json({"value": [resource.body for resource in found]}, ctx.base_url)
        path = f"{resource_id}/versions"
        return list_response(ctx, resources, resource_id, version_type(collection), path, request.query_params, "$top")

    @router.put(
        version,
        operation_id=f"{title}Versions_CreateOrUpdate",
        responses=responses({200: AssetVersion, 201: AssetVersion}),
    )
    def put_version(ctx: MlContext, assets: AssetsDep, resource_id: VersionId, body: AssetVersion) -> Response:
        request: dict[str, Any] = body.model_dump(mode="json", exclude_none=True)
        if collection == "components":
            resource_id, request = component_from_job(assets.store, resource_id, request)
        return _upserted(ctx, assets.put_version(ctx, collection, resource_id, request))

    if collection == "codes":

        @router.post(
            version + "/startPendingUpload",
            operation_id="CodeVersions_CreateOrGetStartPendingUpload",
            responses=responses({200: PendingUpload}),
        )
        def start_pending_upload(
            ctx: MlContext,
            datastores: Annotated[Datastores, provided(Datastores)],
            workspace: WorkspaceId,
            resource_id: VersionId,
        ) -> Response:
            return arm_json(datastores.start_pending_upload(ctx.base_url, workspace), ctx.base_url)

    @router.get(version, operation_id=f"{title}Versions_Get", responses=responses({200: AssetVersion}))
    def get_version(ctx: MlContext, assets: AssetsDep, resource_id: VersionId) -> Response:
        return arm_json(assets.get_version_json(resource_id), ctx.base_url)

    @router.delete(version, operation_id=f"{title}Versions_Delete", responses=responses({200: None}))
    def delete_version(ctx: MlContext, assets: AssetsDep, resource_id: VersionId) -> Response:
        assets.delete(resource_id)
        return Response(status_code=200)


for _collection in COLLECTIONS:
    register(_collection)
