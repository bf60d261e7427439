"""Pure-ASGI middleware for what every ARM response needs: canonical paths and request-id headers; and the
api-version gate of the Microsoft.MachineLearningServices paths."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qs

from batchpoint.api.errors import error_response
from batchpoint.api.paths import PathCanonicalizer
from batchpoint.api.versions import (
    NEWEST_ML_VERSION,
    VERSION_FORMAT,
    is_known_ml_version,
    is_newer_ml_version,
    no_registered_provider,
)
from batchpoint.arm.ids import PROVIDER
from batchpoint.config import DEFAULT_LOCATION

Scope = dict[str, Any]

ECHOED = (b"x-ms-client-request-id", b"x-ms-correlation-request-id")


class ArmMiddleware:
    def __init__(self, app: Any, paths: PathCanonicalizer) -> None:
        self.app = app
        self.canonical_path = paths.canonical_path

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        canonical = self.canonical_path(path)
        if canonical != path:
            raw = scope.get("raw_path")
            scope = {
                **scope,
                "path": canonical,
                "raw_path": self.canonical_path(raw.decode("latin-1")).encode("latin-1") if raw else None,
            }
        request_id = str(uuid.uuid4()).encode()
        extra = [(b"x-ms-request-id", request_id)]
        sent = {name.lower(): value for name, value in scope["headers"] if name.lower() in ECHOED}
        extra.append((b"x-ms-correlation-request-id", sent.get(b"x-ms-correlation-request-id", request_id)))
        if b"x-ms-client-request-id" in sent:
            extra.append((b"x-ms-client-request-id", sent[b"x-ms-client-request-id"]))

        async def send_with_ids(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_ids)


ML_PROVIDER = f"/providers/{PROVIDER}/"
SERVED_VERSION_HEADER = b"x-ms-batchpoint-served-api-version"
"""On the answer to a request with a newer api-version than batchpoint knows: the version it was served as."""


class ApiVersionGate:
    """Well-formed api-versions of Microsoft.MachineLearningServices that batchpoint does not know: a newer one is
    served as the newest known, saying so in ``SERVED_VERSION_HEADER``; an older one (or, with ``strict``, a
    newer one) gets Azure's ``NoRegisteredProviderFound``. Malformed ones are left to the routes, which refuse them
    (after authentication and authorization) with ``InvalidApiVersionParameter``. Sits inside ``ArmMiddleware``,
    so the path is canonical and a refusal carries request ids."""

    def __init__(self, app: Any, strict: bool) -> None:
        self.app = app
        self.strict = strict

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        version = _ml_api_version(scope)
        if version is None or not VERSION_FORMAT.match(version) or is_known_ml_version(version):
            await self.app(scope, receive, send)
            return
        if self.strict or not is_newer_ml_version(version):
            refusal = no_registered_provider(version, _resource_type(scope["path"]), DEFAULT_LOCATION)
            await error_response(refusal.status, refusal.code, refusal.message)(scope, receive, send)
            return

        async def send_with_version(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                served = (SERVED_VERSION_HEADER, NEWEST_ML_VERSION.encode())
                message = {**message, "headers": [*message.get("headers", []), served]}
            await send(message)

        await self.app(scope, receive, send_with_version)


def _ml_api_version(scope: Scope) -> str | None:
    """The api-version of a request to a Microsoft.MachineLearningServices ARM path, else None."""
    path = scope["path"] if scope["type"] == "http" else ""
    if not path.startswith("/subscriptions/") or not _last_provider(path).startswith(ML_PROVIDER):
        return None  # another provider's path (role assignments below a workspace are Microsoft.Authorization's)
    query = scope.get("query_string", b"")
    if b"api-version=" not in query:
        return None
    values = parse_qs(query.decode("latin-1")).get("api-version")
    return values[0] if values else None


def _last_provider(path: str) -> str:
    """The path from its last ``/providers/`` on: the provider whose resource the path names."""
    at = path.rfind("/providers/")
    return path[at:] if at >= 0 else ""


def _resource_type(path: str) -> str:
    """``workspaces/batchEndpoints/deployments`` for a path below the provider, as Azure's message names it."""
    segments = _last_provider(path).removeprefix(ML_PROVIDER).strip("/").split("/")
    return "/".join(segments[0::2])
