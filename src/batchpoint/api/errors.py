"""Every failure leaves as an ARM error body ``{"error": {"code", "message"}}`` with a 4xx status."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from batchpoint.services.errors import ArmError

log = logging.getLogger(__name__)


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The ARM error body; ``x-ms-error-code`` carries the code too, where storage clients look for it."""
    headers = {**(headers or {}), "x-ms-error-code": code}
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def describe_validation_errors(errors: list[dict[str, Any]]) -> tuple[str, str]:
    """A readable message naming each bad field, and the ARM code for where the problem is."""
    parts, code = [], "InvalidRequestContent"
    for error in errors[:10]:
        location = [str(part) for part in error.get("loc", ())]
        if location and location[0] in ("path", "query", "header"):
            code = "BadRequest"
        field = ".".join(location[1:]) if location[:1] == ["body"] else ".".join(location)
        parts.append(f"{field or 'body'}: {error.get('msg', 'invalid')}")
    return "The request is invalid. " + "; ".join(parts), code


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ArmError)
    async def arm_error(_request: Request, exc: ArmError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        message, code = describe_validation_errors(list(exc.errors()))
        return error_response(400, code, message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return error_response(404, "NotFound", f"No route matches '{request.method} {request.url.path}'.")
        if exc.status_code == 405:
            return error_response(405, "MethodNotAllowed", f"'{request.method}' is not supported on this path.")
        return error_response(exc.status_code, "BadRequest", str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return error_response(500, "InternalServerError", "The server hit an unexpected error; see its log.")
