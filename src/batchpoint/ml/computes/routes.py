"""Compute_Delete: the registry routes the other compute operations (``resource_types.py``)."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

from fastapi import Query, Response

from batchpoint.api.crud import id_dependency
from batchpoint.api.deps import MlContext, provided_service
from batchpoint.api.docs import responses
from batchpoint.api.responses import accepted_response
from batchpoint.api.routing import routes
from batchpoint.arm.registry import ResourceService, Verb
from batchpoint.ml.computes.resource_types import COMPUTES
from batchpoint.ml.computes.rules import refuse_builtin_change

router = routes(tags=[COMPUTES.operations.tag])

ComputeId = Annotated[str, id_dependency(COMPUTES)]
Computes = Annotated[ResourceService, provided_service(COMPUTES)]


class UnderlyingResourceAction(str, Enum):
    DELETE = "Delete"
    DETACH = "Detach"


@router.delete(
    COMPUTES.item_path,
    operation_id=COMPUTES.operation_id(Verb.DELETE),
    responses=responses({200: None, 202: None, 204: None}),
)
def delete_compute(
    ctx: MlContext,
    computes: Computes,
    resource_id: ComputeId,
    underlying_resource_action: Annotated[UnderlyingResourceAction, Query(alias="underlyingResourceAction")],
) -> Response:
    """Delete and Detach both remove the compute: batchpoint clusters have no underlying machines to keep."""
    refuse_builtin_change(resource_id)
    return accepted_response(ctx, computes.delete(ctx, resource_id))
