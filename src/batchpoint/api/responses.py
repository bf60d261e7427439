"""JSON responses with this server's base URL filled into stored links, and LRO headers."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Response

from batchpoint.arm.context import BASE_URL, HOST, RequestContext
from batchpoint.arm.errors import ArmError
from batchpoint.arm.operations import polling_urls
from batchpoint.arm.resources import Upserted
from batchpoint.arm.tracked import Accepted
from batchpoint.store.entities import Operation

RETRY_AFTER_SECONDS = "1"
OPERATION_TIMEOUT = "PT1H"


def render(body: str | dict[str, Any], base_url: str) -> str:
    text = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))
    return text.replace(BASE_URL, base_url).replace(HOST, base_url.split("://", 1)[-1])


def arm_json(
    body: str | dict[str, Any] | None, base_url: str, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    content = render(body, base_url) if body is not None else None
    return Response(content=content, status_code=status, headers=headers, media_type="application/json")


def async_operation_headers(ctx: RequestContext, operation: Operation) -> dict[str, str]:
    """For PUT: ARM clients poll the operation-status resource, then GET the resource itself."""
    return _polling_headers(
        "Azure-AsyncOperation", polling_urls(ctx.base_url, operation, ctx.api_version).async_operation
    )


def location_headers(ctx: RequestContext, operation: Operation) -> dict[str, str]:
    """For PATCH and DELETE: clients poll Location until it stops answering 202."""
    return _polling_headers("Location", polling_urls(ctx.base_url, operation, ctx.api_version).location)


def put_response(ctx: RequestContext, accepted: Accepted) -> Response:
    """A tracked resource's PUT: 200 when nothing changed, else 201 (created) or 200 with the operation to poll."""
    if accepted.operation is None:
        return arm_json(accepted.resource.body_json(), ctx.base_url, 200)
    status = 201 if accepted.created else 200
    return arm_json(
        accepted.resource.body_json(), ctx.base_url, status, async_operation_headers(ctx, accepted.operation)
    )


def upserted_response(ctx: RequestContext, upserted: Upserted) -> Response:
    """A synchronous PUT: the resource, 201 when it was created, else 200."""
    return arm_json(upserted.resource.body_json(), ctx.base_url, 201 if upserted.created else 200)


def accepted_response(ctx: RequestContext, accepted: Accepted) -> Response:
    """A tracked resource's PATCH or DELETE: 202 with the operation to poll."""
    assert accepted.operation is not None
    return Response(status_code=202, headers=location_headers(ctx, accepted.operation))


def _polling_headers(header: str, url: str) -> dict[str, str]:
    return {header: url, "Retry-After": RETRY_AFTER_SECONDS, "x-ms-async-operation-timeout": OPERATION_TIMEOUT}


def error_of(operation: Operation) -> ArmError:
    return ArmError(400, operation.error_code or "OperationFailed", operation.error_message or "The operation failed.")
