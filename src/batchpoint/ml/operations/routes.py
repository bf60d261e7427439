"""ARM operation status (``Azure-AsyncOperation``) and operation results (``Location``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Request, Response

from batchpoint.access.authentication import check_permission
from batchpoint.access.permissions import Permission, arm_action
from batchpoint.api.deps import MlContext, ResourcesDep
from batchpoint.api.docs import responses
from batchpoint.api.responses import RETRY_AFTER_SECONDS, arm_json, error_of, location_headers
from batchpoint.api.routing import routes
from batchpoint.arm.errors import ArmError
from batchpoint.arm.operations import status_body
from batchpoint.arm.schemas import OperationStatusResult
from batchpoint.store.entities import Operation, OperationKind, OperationStatus

router = routes(tags=["Operations"])

LOCATION = "/subscriptions/{subscriptionId}/providers/Microsoft.MachineLearningServices/locations/{location}"
OperationId = Annotated[str, Path(min_length=1, max_length=64)]


def _operation(request: Request, ctx: MlContext, resources: ResourcesDep, operation_id: str) -> Operation:
    """The operation, if the caller may read the resource it works on."""
    operation = resources.store.get_operation(operation_id)
    if operation is None:
        raise ArmError(404, "OperationNotFound", f"The operation '{operation_id}' was not found.")
    permission = Permission(arm_action("GET", operation.resource_id), operation.resource_id)
    check_permission(request, ctx.caller, permission)
    return operation


@router.get(
    LOCATION + "/mfeOperationsStatus/{operationId}",
    operation_id="Operations_GetStatus",
    responses=responses({200: OperationStatusResult}),
)
def operation_status(
    request: Request,
    ctx: MlContext,
    resources: ResourcesDep,
    operationId: OperationId,  # noqa: N803
) -> Response:
    operation = _operation(request, ctx, resources, operationId)
    headers = {"Retry-After": RETRY_AFTER_SECONDS} if operation.status is OperationStatus.IN_PROGRESS else None
    return arm_json(status_body(operation, str(request.url)), ctx.base_url, headers=headers)


@router.get(
    LOCATION + "/mfeOperationResults/{operationId}",
    operation_id="Operations_GetResult",
    responses=responses({200: None, 202: None, 204: None}),
)
def operation_result(
    request: Request,
    ctx: MlContext,
    resources: ResourcesDep,
    operationId: OperationId,  # noqa: N803
) -> Response:
    """202 while running; then the resource (PATCH) or no content (DELETE); a failure as its error."""
    operation = _operation(request, ctx, resources, operationId)
    if operation.status is OperationStatus.IN_PROGRESS:
        return Response(status_code=202, headers=location_headers(ctx, operation))
    if operation.status is not OperationStatus.SUCCEEDED:
        raise error_of(operation)
    if operation.kind is OperationKind.DELETE:
        return Response(status_code=204)
    return arm_json(resources.get_json(operation.resource_id), ctx.base_url)
