"""Datastores_ListSecrets: the registry routes the CRUD operations of datastores (``resource_types.py``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Response

from batchpoint.api.crud import action, id_dependency
from batchpoint.api.deps import MlContext, provided
from batchpoint.api.responses import arm_json
from batchpoint.api.routing import routes
from batchpoint.ml.assets.wire import DatastoreSecrets
from batchpoint.ml.datastores.resource_types import DATASTORES
from batchpoint.ml.datastores.service import Datastores

router = routes(tags=[DATASTORES.operations.tag])


DatastoresDep = Annotated[Datastores, provided(Datastores)]
DatastoreId = Annotated[str, id_dependency(DATASTORES)]


@action(router, DATASTORES, "listSecrets", DatastoreSecrets)
def list_secrets(ctx: MlContext, datastores: DatastoresDep, resource_id: DatastoreId) -> Response:
    return arm_json(datastores.list_secrets(resource_id), ctx.base_url)
