"""A read fast path for the hottest GETs: a batch endpoint or deployment, and their lists.

FastAPI's routing and dependency solving cost several times the read itself. This ASGI layer answers those
GETs directly, with the same checks the routes use (authentication, authorization, api-version, names, paging),
but only when
everything succeeds; any request it is not sure about (an error of any kind, another method, another path) goes
on to the FastAPI routes, which own every error answer. So both paths answer a request the same way.
"""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response

from batchpoint.api.deps import (
    CHILD_NAME_PATTERN,
    RESOURCE_GROUP_PATTERN,
    UUID,
    WORKSPACE_PATTERN,
    authorized_caller,
    base_url,
)
from batchpoint.api.http_metrics import HOLDER
from batchpoint.api.listing import list_response
from batchpoint.api.responses import arm_json
from batchpoint.api.versions import check_ml_version
from batchpoint.arm.context import RequestContext
from batchpoint.arm.ids import BATCH_DEPLOYMENT_TYPE, BATCH_ENDPOINT_TYPE
from batchpoint.ml.endpoints.routes import DEPLOYMENT, DEPLOYMENTS, ENDPOINT, ENDPOINTS

NAME = CHILD_NAME_PATTERN.strip("^$")
READS = re.compile(
    r"^(?P<workspace>/subscriptions/(?P<subscription>[^/]+)/resourceGroups/(?P<group>[^/]+)"
    r"/providers/Microsoft\.MachineLearningServices/workspaces/(?P<name>[^/]+))"
    rf"/batchEndpoints(?:/(?P<endpoint>{NAME})(?P<deployments>/deployments(?:/(?P<deployment>{NAME}))?)?)?$"
)
READER_THREADS = 2
"""Few on purpose: every reader thread competes with the event loop for the GIL (with 8, the loop waited for it and
fast-path throughput fell below answering on the loop; with 1 or 2 it rose above it, docs/performance.md), and
two keep one slow read from holding up the rest."""
GROUP, WORKSPACE = re.compile(RESOURCE_GROUP_PATTERN), re.compile(WORKSPACE_PATTERN)


class ReadFastPath:
    def __init__(self, app: Any, api: Any) -> None:
        """`app`: what answers the requests this layer passes on; `api`: the FastAPI application, whose state
        (token validator, services) a fast-path read uses as the routes do."""
        self.app = app
        self.api = api
        self._readers = ThreadPoolExecutor(max_workers=READER_THREADS, thread_name_prefix="fast-read")
        """Its own threads, handed work by asyncio directly: several times cheaper per request than anyio's
        thread pool, which FastAPI's routes use."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        match = READS.match(scope["path"]) if scope["type"] == "http" and scope["method"] == "GET" else None
        response = None
        if match and _valid_names(match):
            response = await asyncio.get_running_loop().run_in_executor(self._readers, self._answer, scope, match)
        if response is None:
            await self.app(scope, receive, send)
            return
        holder = scope.get(HOLDER)
        if holder is not None:  # the HTTP metrics need not match the path again
            holder["route"] = _template(match)
        await response(scope, receive, send)

    def _answer(self, scope: dict[str, Any], match: re.Match[str]) -> Response | None:
        """Runs on a reader thread: it reads the database."""
        request = Request({**scope, "app": self.api})  # FastAPI sets it too; authentication reads the app's state
        try:
            ctx = RequestContext(
                base_url=base_url(request),
                caller=authorized_caller(request),
                api_version=check_ml_version(request.query_params.get("api-version")),
            )
            return _read(ctx, self.api.state.services, match, request.query_params)
        except Exception:  # noqa: BLE001 - the routes answer anything unusual, errors included
            return None


def route_template(path: str) -> str | None:
    """The template of the route a fast-path read stands for (for the HTTP metrics), else None."""
    match = READS.match(path)
    return _template(match) if match is not None else None


def _template(match: re.Match[str]) -> str:
    if match["deployment"]:
        return DEPLOYMENT
    if match["deployments"]:
        return DEPLOYMENTS
    return ENDPOINT if match["endpoint"] else ENDPOINTS


def _valid_names(match: re.Match[str]) -> bool:
    return bool(UUID.match(match["subscription"]) and GROUP.match(match["group"]) and WORKSPACE.match(match["name"]))


def _read(ctx: RequestContext, services: Any, match: re.Match[str], query: QueryParams) -> Response | None:
    path = match.group(0)
    if match["deployment"] or (match["endpoint"] and not match["deployments"]):
        body = services.store.get_body_json(path)
        return arm_json(body, ctx.base_url) if body is not None else None
    if match["deployments"]:
        parent = path.rsplit("/", 1)[0]
        return list_response(ctx, services, parent, BATCH_DEPLOYMENT_TYPE, path, query, "$top")
    return list_response(ctx, services, match["workspace"], BATCH_ENDPOINT_TYPE, path, query, "count")
