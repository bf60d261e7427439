"""BatchEndpoints_ListKeys: the registry routes the CRUD operations of endpoints and deployments
(``resource_types.py``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Response

from batchpoint.access.authentication import KEY_NAMES
from batchpoint.api.crud import action, id_dependency
from batchpoint.api.deps import MlContext, ResourcesDep
from batchpoint.api.responses import arm_json
from batchpoint.api.routing import routes
from batchpoint.ml.endpoints.resource_types import BATCH_ENDPOINTS
from batchpoint.ml.endpoints.wire import EndpointAuthKeys

router = routes(tags=[BATCH_ENDPOINTS.operations.tag])

EndpointId = Annotated[str, id_dependency(BATCH_ENDPOINTS)]


@action(router, BATCH_ENDPOINTS, "listkeys", EndpointAuthKeys, operation="ListKeys")
def list_keys(ctx: MlContext, resources: ResourcesDep, resource_id: EndpointId) -> Response:
    resource = resources.get(resource_id)
    keys = {name: resource.private.get(name) for name in KEY_NAMES}
    return arm_json(keys, ctx.base_url)
