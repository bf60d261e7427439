"""Every failure leaves as an ARM error body ``{"error": {"code", "message"}}`` with a 4xx status; a passing fault
of the database (a restart, cut connections) as a 503 with ``Retry-After``, which ARM clients retry.

Messages may echo what the client sent (a name, a path, a bad value); the echo is clipped, and the request's own
credentials are blanked out wherever they appear. An unexpected error says nothing of itself: its traceback, and
the server paths in it, go to the log only.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from batchpoint.arm.errors import ArmError
from batchpoint.cluster.faults import DATABASE_ERRORS, database_unavailable
from batchpoint.store import AlreadyExists, VersionConflict

log = logging.getLogger(__name__)

ECHO_LIMIT = 200
"""Characters of one echoed input in a validation message (a field name, what pydantic says of it)."""
MESSAGE_LIMIT = 2000
REDACTED = "[redacted]"
UNAVAILABLE_RETRY_AFTER = "2"
"""Seconds a client waits before it tries again a request that met a passing fault of the database."""


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The ARM error body; ``x-ms-error-code`` carries the code too, where storage clients look for it."""
    headers = {**(headers or {}), "x-ms-error-code": code}
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def clip(text: str, limit: int = ECHO_LIMIT) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def redacted(text: str, request: Request) -> str:
    """The text without the credentials of the request's ``Authorization`` header."""
    credentials = request.headers.get("authorization", "").partition(" ")[2].strip()
    if len(credentials) < 8:  # no secret, and blanking it would garble the message
        return text
    return text.replace(credentials, REDACTED)


def scrubbed(message: str, request: Request) -> str:
    """The message without the request's credentials, then clipped (so no part of them is left either)."""
    return clip(redacted(message, request), MESSAGE_LIMIT)


def describe_validation_errors(errors: list[dict[str, Any]], request: Request) -> tuple[str, str]:
    """A readable message naming each bad field, and the ARM code for where the problem is."""
    parts, code = [], "InvalidRequestContent"
    for error in errors[:10]:
        location = [str(part) for part in error.get("loc", ())]
        if location and location[0] in ("path", "query", "header"):
            code = "BadRequest"
        field = ".".join(location[1:]) if location[:1] == ["body"] else ".".join(location)
        problem = str(error.get("msg", "invalid"))
        parts.append(f"{clip(redacted(field, request)) or 'body'}: {clip(redacted(problem, request))}")
    return "The request is invalid. " + "; ".join(parts), code


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ArmError)
    async def arm_error(request: Request, exc: ArmError) -> JSONResponse:
        return error_response(exc.status, exc.code, scrubbed(exc.message, request), exc.headers)

    @app.exception_handler(AlreadyExists)
    async def already_exists(request: Request, exc: AlreadyExists) -> JSONResponse:
        message = f"The resource '{exc}' already exists (another request created it at the same time)."
        return error_response(409, "Conflict", scrubbed(message, request))

    @app.exception_handler(VersionConflict)
    async def version_conflict(request: Request, exc: VersionConflict) -> JSONResponse:
        message = f"The resource '{exc}' was changed by another request while this one was applied; retry."
        return error_response(409, "Conflict", scrubbed(message, request))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, code = describe_validation_errors(list(exc.errors()), request)
        return error_response(400, code, scrubbed(message, request))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            message = f"No route matches '{request.method} {request.url.path}'."
            return error_response(404, "NotFound", scrubbed(message, request))
        if exc.status_code == 405:
            return error_response(405, "MethodNotAllowed", f"'{request.method}' is not supported on this path.")
        return error_response(exc.status_code, "BadRequest", scrubbed(str(exc.detail), request))

    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        return unexpected_error(exc)

    for error_type in (*DATABASE_ERRORS, Exception):
        app.add_exception_handler(error_type, unexpected)


def unexpected_error(exc: Exception) -> JSONResponse:
    """503 for a passing fault of the database (a restart, a cut connection: the client tries again), else 500."""
    if database_unavailable(exc):
        log.warning("a request met a passing fault of the database: %s", exc)
        message = "The database is unavailable for a moment; try the request again."
        return error_response(503, "ServiceUnavailable", message, {"Retry-After": UNAVAILABLE_RETRY_AFTER})
    log.exception("unhandled error", exc_info=exc)
    return error_response(500, "InternalServerError", "The server hit an unexpected error; see its log.")
