"""ARM operation status (``Azure-AsyncOperation``) and operation results (``Location``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request, Response

from batchpoint.access.authentication import check_permission
from batchpoint.access.permissions import Permission, arm_action
from batchpoint.api.deps import MlContext, ResourcesDep
from batchpoint.api.docs import responses
from batchpoint.api.responses import RETRY_AFTER_SECONDS, arm_json, error_of, location_headers
from batchpoint.api.routing import routes
from batchpoint.arm.errors import ArmError
from batchpoint.arm.ids import PROVIDER
from batchpoint.arm.operations import status_body
from batchpoint.arm.registry import SUBSCRIPTION_PATH
from batchpoint.arm.schemas import OperationStatusResult
from batchpoint.store.entities import Operation, OperationKind, OperationStatus

router = routes(tags=["Operations"])

LOCATION = SUBSCRIPTION_PATH + f"/providers/{PROVIDER}/locations/{{location}}"


def readable_operation(
    request: Request,
    ctx: MlContext,
    resources: ResourcesDep,
    operationId: Annotated[str, Path(min_length=1, max_length=64)],  # noqa: N803 - the path's spelling
) -> Operation:
    """The operation, if the caller may read the resource it works on. Plain ``def``: it reads the database, which
    FastAPI then does on its thread pool."""
    operation = resources.store.get_operation(operationId)
    if operation is None:
        raise ArmError(404, "OperationNotFound", f"The operation '{operationId}' was not found.")
    permission = Permission(arm_action("GET", operation.resource_id), operation.resource_id)
    check_permission(request, ctx.caller, permission)
    return operation


ReadableOperation = Annotated[Operation, Depends(readable_operation)]


@router.get(
    LOCATION + "/mfeOperationsStatus/{operationId}",
    operation_id="Operations_GetStatus",
    responses=responses({200: OperationStatusResult}),
)
def operation_status(request: Request, ctx: MlContext, operation: ReadableOperation) -> Response:
    headers = {"Retry-After": RETRY_AFTER_SECONDS} if operation.status is OperationStatus.IN_PROGRESS else None
    return arm_json(status_body(operation, str(request.url)), ctx.base_url, headers=headers)


@router.get(
    LOCATION + "/mfeOperationResults/{operationId}",
    operation_id="Operations_GetResult",
    responses=responses({200: None, 202: None, 204: None}),
)
def operation_result(ctx: MlContext, resources: ResourcesDep, operation: ReadableOperation) -> Response:
    """202 while running; then the resource (PATCH) or no content (DELETE); a failure as its error."""
    if operation.status is OperationStatus.IN_PROGRESS:
        return Response(status_code=202, headers=location_headers(ctx, operation))
    if operation.status is not OperationStatus.SUCCEEDED:
        raise error_of(operation)
    if operation.kind is OperationKind.DELETE:
        return Response(status_code=204)
    return arm_json(resources.get_json(operation.resource_id), ctx.base_url)
