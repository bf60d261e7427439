"""OpenAPI response declarations shared by the routes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from batchpoint.arm.schemas import ErrorResponse

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in (
        (400, "Bad request (validation, api-version, paging)"),
        (401, "Missing or invalid credentials"),
        (404, "Resource or parent not found"),
        (409, "Another operation is in progress"),
    )
}


def responses(ok: Mapping[int, Any]) -> dict[int | str, dict[str, Any]]:
    declared: dict[int | str, dict[str, Any]] = {}
    for status, model in ok.items():
        declared[status] = {"model": model} if model is not None else {"description": "No content"}
    return {**declared, **ERRORS}
