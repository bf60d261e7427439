"""ARM operation status (``Azure-AsyncOperation``) and operation results (``Location``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from batchpoint.api.deps import MlContext, ServicesDep
from batchpoint.api.responses import RETRY_AFTER_SECONDS, arm_json, error_of, location_headers
from batchpoint.api.routes.docs import responses
from batchpoint.schemas.common import OperationStatusResult
from batchpoint.services.errors import ArmError
from batchpoint.services.operations import status_body
from batchpoint.store.entities import Operation, OperationKind, OperationStatus

router = APIRouter(tags=["Operations"])

LOCATION = "/subscriptions/{subscriptionId}/providers/Microsoft.MachineLearningServices/locations/{location}"
OperationId = Annotated[str, Path(min_length=1, max_length=64)]


def _operation(services: ServicesDep, operation_id: str) -> Operation:
    operation = services.store.get_operation(operation_id)
    if operation is None:
        raise ArmError(404, "OperationNotFound", f"The operation '{operation_id}' was not found.")
    return operation


@router.get(
    LOCATION + "/mfeOperationsStatus/{operationId}",
    operation_id="Operations_GetStatus",
    responses=responses({200: OperationStatusResult}),
)
def operation_status(
    request: Request, ctx: MlContext, services: ServicesDep, operationId: OperationId  # noqa: N803
) -> Response:
    operation = _operation(services, operationId)
    headers = {"Retry-After": RETRY_AFTER_SECONDS} if operation.status is OperationStatus.IN_PROGRESS else None
    return arm_json(status_body(operation, str(request.url)), ctx.base_url, headers=headers)


@router.get(
    LOCATION + "/mfeOperationResults/{operationId}",
    operation_id="Operations_GetResult",
    responses=responses({200: None, 202: None, 204: None}),
)
def operation_result(ctx: MlContext, services: ServicesDep, operationId: OperationId) -> Response:  # noqa: N803
    """202 while running; then the resource (PATCH) or no content (DELETE); a failure as its error."""
    operation = _operation(services, operationId)
    if operation.status is OperationStatus.IN_PROGRESS:
        return Response(status_code=202, headers=location_headers(ctx, operation))
    if operation.status is not OperationStatus.SUCCEEDED:
        raise error_of(operation)
    if operation.kind is OperationKind.DELETE:
        return Response(status_code=204)
    return arm_json(services.resources.get_json(operation.resource_id), ctx.base_url)
