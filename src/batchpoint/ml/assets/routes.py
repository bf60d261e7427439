"""A version's GET (``azureml_default`` names the latest) and a code version's ``startPendingUpload``: the registry
routes the other operations of asset containers and versions (``resource_types.py``).

No postponed annotations here: FastAPI must see the per-type dependency types defined inside ``route_get``.
"""

from typing import Annotated

from fastapi import Response

from batchpoint.api.crud import action, id_dependency
from batchpoint.api.deps import MlContext, provided, provided_service
from batchpoint.api.docs import responses
from batchpoint.api.responses import arm_json
from batchpoint.api.routing import routes
from batchpoint.arm.ids import ArmPath
from batchpoint.arm.registry import ResourceType, Verb
from batchpoint.ml.assets.resource_types import ASSET_VERSIONS, CODE_VERSIONS
from batchpoint.ml.assets.service import AssetVersions
from batchpoint.ml.assets.wire import AssetVersion, PendingUpload
from batchpoint.ml.datastores.service import Datastores

router = routes(tags=["Assets"])


def route_get(versions: ResourceType) -> None:
    @router.get(
        versions.item_path,
        operation_id=versions.operation_id(Verb.GET),
        summary="Get Version",
        responses=responses({200: AssetVersion}),
    )
    def get_version(
        ctx: MlContext,
        service: Annotated[AssetVersions, provided_service(versions)],
        resource_id: Annotated[str, id_dependency(versions)],
    ) -> Response:
        return arm_json(service.get_json(resource_id), ctx.base_url)


for _versions in ASSET_VERSIONS:
    route_get(_versions)


@action(router, CODE_VERSIONS, "startPendingUpload", PendingUpload, operation="CreateOrGetStartPendingUpload")
def start_pending_upload(
    ctx: MlContext,
    datastores: Annotated[Datastores, provided(Datastores)],
    resource_id: Annotated[str, id_dependency(CODE_VERSIONS)],
) -> Response:
    workspace_id = ArmPath.parse(resource_id).workspace_id
    return arm_json(datastores.start_pending_upload(ctx.base_url, workspace_id), ctx.base_url)
