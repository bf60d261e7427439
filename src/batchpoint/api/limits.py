"""Bounds on hostile requests, enforced in pure ASGI before FastAPI (or the store, or the file system) sees them.

A path with a control character (NUL included: PostgreSQL refuses it in text) gets 400 ``InvalidResourceName``,
as no resource or blob name may hold one.

A body larger than the configured limit gets 413, whether its ``Content-Length`` says so up front or a chunked
body only grows past it; the rest of it is read and dropped first, up to ``DRAIN_BYTES``. A JSON body within the
limit is parsed once here and must also keep to ``MAX_DEPTH``, ``MAX_STRING`` and ``MAX_MEMBERS``, else it gets
400 ``InvalidRequestContent``; every route (typed or taking a plain ``dict``) is covered at once. Malformed JSON
passes on: FastAPI's own 400 names the problem.

The blob API (``/blob/...``) is exempt: it streams uploads of any size to disk and bounds its XML block lists.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.datastructures import Headers

from batchpoint.api.errors import error_response
from batchpoint.config import DEFAULT_MAX_BODY_BYTES

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]

MAX_DEPTH = 64
"""Nested arrays and objects, the outermost counting as one."""
MAX_STRING = 64 * 1024
"""Characters in any string, object keys included."""
MAX_MEMBERS = 1000
"""Members of any one object (tags, properties, environment variables, ...)."""
DRAIN_BYTES = 64 * 1024 * 1024
"""How much of a too-large body is still read (and dropped) before the 413: clients that write their whole body
before reading an answer (requests, under every Azure SDK) get the 413 instead of a connection reset mid-body. A
body declared or grown larger than this is answered at once."""
EXEMPT_PREFIX = "/blob/"
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class BodyTooLarge(Exception):
    def __init__(self, read_whole: bool = False) -> None:
        super().__init__()
        self.read_whole = read_whole
        """Whether the body's last part was received (nothing is left to drain)."""


class RequestLimits:
    def __init__(self, app: Any, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
        elif CONTROL.search(scope["path"]):
            message = "Names and paths may not contain control characters."
            await error_response(400, "InvalidResourceName", message)(scope, receive, send)
        elif scope["path"].startswith(EXEMPT_PREFIX) or not has_body(scope):
            await self.app(scope, receive, send)  # the hot GETs, without a body, pay next to nothing here
        else:
            await self._bounded(scope, receive, send)

    async def _bounded(self, scope: Scope, receive: Receive, send: Any) -> None:
        """Reads the whole body (the routes would), refuses it if it breaks a bound, else hands it on."""
        headers = Headers(scope=scope)
        try:
            body = await self._read_body(headers, receive)
        except BodyTooLarge as refused:
            if not refused.read_whole:
                await _drain(headers, receive)
            await self._too_large()(scope, receive, send)
            return
        if body is None:
            return  # the client went away
        problem = json_problem(body) if body and is_json(headers) else None
        if problem is not None:
            await error_response(400, "InvalidRequestContent", problem)(scope, receive, send)
            return
        await self.app(scope, replay(body, receive), send)

    async def _read_body(self, headers: Headers, receive: Receive) -> bytes | None:
        """The whole body, or None if the client disconnected; BodyTooLarge as soon as it is known to be."""
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            raise BodyTooLarge
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise BodyTooLarge(read_whole=not message.get("more_body", False))
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _too_large(self) -> Any:
        """413, closing the connection, so the rest of an unread body is never waited for."""
        message = f"The request body is larger than this server's limit of {self.max_body_bytes} bytes."
        return error_response(413, "RequestBodyTooLarge", message, {"Connection": "close"})


async def _drain(headers: Headers, receive: Receive) -> None:
    """Read what is left of a too-large body, up to DRAIN_BYTES in all, dropping it."""
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > DRAIN_BYTES:
        return
    size = 0
    while size <= DRAIN_BYTES:
        message = await receive()
        size += len(message.get("body", b""))
        if message["type"] == "http.disconnect" or not message.get("more_body", False):
            return


def has_body(scope: Scope) -> bool:
    """Whether the request announces a body (HTTP/1.1 has none without either header, or with a length of 0)."""
    return any(
        name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0")
        for name, value in scope["headers"]
    )


def is_json(headers: Headers) -> bool:
    """Whether FastAPI would parse the body as JSON: only with a JSON content type (its ``strict_content_type``)."""
    media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json"))


def json_problem(body: bytes) -> str | None:
    """Why a JSON body breaks the bounds, or None (also for malformed JSON, which FastAPI reports)."""
    try:
        document = json.loads(body)
    except RecursionError:  # the parser refuses nesting far beyond MAX_DEPTH before it could be walked
        return f"The JSON body is nested deeper than {MAX_DEPTH} levels."
    except ValueError:
        return None
    return document_problem(document)


def document_problem(document: Any) -> str | None:
    """Walks a parsed JSON document without recursion, checking depth, string lengths and object sizes."""
    pending: list[tuple[Any, int]] = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, str):
            if len(value) > MAX_STRING:
                return f"The JSON body has a string longer than {MAX_STRING} characters."
            continue
        if not isinstance(value, (dict, list)):
            continue
        if depth > MAX_DEPTH:
            return f"The JSON body is nested deeper than {MAX_DEPTH} levels."
        if isinstance(value, dict):
            if len(value) > MAX_MEMBERS:
                return f"The JSON body has an object with more than {MAX_MEMBERS} members."
            pending.extend((key, depth) for key in value)
            value = value.values()
        pending.extend((item, depth + 1) for item in value)
    return None


def replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app the body already read, then whatever the client sends next."""
    delivered = False

    async def receive_again() -> Message:
        nonlocal delivered
        if delivered:
            return await receive()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive_again
