"""One pure-ASGI middleware for what every ARM response needs: canonical paths and request-id headers."""

from __future__ import annotations

import uuid
from typing import Any

from batchpoint.api.paths import PathCanonicalizer

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
