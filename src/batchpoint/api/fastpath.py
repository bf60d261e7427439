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
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response

from batchpoint.api.deps import (
    RESOURCE_GROUP_PATTERN,
    UUID,
    WORKSPACE_PATTERN,
    authorized_caller,
    base_url,
    services_of,
)
from batchpoint.api.http_metrics import HOLDER
from batchpoint.api.listing import list_response
from batchpoint.api.responses import arm_json
from batchpoint.api.versions import check_ml_version
from batchpoint.arm.context import RequestContext
from batchpoint.arm.ids import WORKSPACE_TYPE
from batchpoint.arm.registry import CHILD_NAME_PATTERN, ResourceType
from batchpoint.arm.resources import Resources

WORKSPACE = re.compile(
    r"^(?P<workspace>/subscriptions/(?P<subscription>[^/]+)/resourceGroups/(?P<group>[^/]+)"
    r"/providers/Microsoft\.MachineLearningServices/workspaces/(?P<name>[^/]+))(?P<rest>/.*)$"
)
NAME = re.compile(CHILD_NAME_PATTERN)
READER_THREADS = 2
"""Few on purpose: every reader thread competes with the event loop for the GIL (with 8, the loop waited for it and
fast-path throughput fell below answering on the loop; with 1 or 2 it rose above it, docs/performance.md), and
two keep one slow read from holding up the rest."""
GROUP, WORKSPACE_NAME = re.compile(RESOURCE_GROUP_PATTERN), re.compile(WORKSPACE_PATTERN)


@dataclass(frozen=True)
class Read:
    """A GET the fast path answers: one resource of ``resource_type``, or (``listed``) the collection of them."""

    resource_type: ResourceType
    listed: bool
    path: str
    workspace: str

    @property
    def template(self) -> str:
        return self.resource_type.collection_path if self.listed else self.resource_type.item_path


class FastReads:
    """The table of reads the fast path answers, derived from the declared types that ask for it (``fast_reads``):
    a path below a workspace is looked up by the collections it walks through."""

    def __init__(self, types: Iterable[ResourceType]) -> None:
        self._by_shape = {_below_workspace(each): each for each in types if each.fast_reads}

    def match(self, path: str) -> Read | None:
        found = WORKSPACE.match(path)
        if found is None or not _valid_names(found):
            return None
        segments = found["rest"][1:].split("/")
        collections, names = tuple(segments[0::2]), segments[1::2]
        resource_type = self._by_shape.get(collections)
        if resource_type is None or not all(NAME.match(name) for name in names):
            return None
        return Read(resource_type, len(names) < len(collections), path, found["workspace"])

    def route_template(self, path: str) -> str | None:
        """The template of the route a fast-path read stands for (for the HTTP metrics), else None."""
        read = self.match(path)
        return read.template if read is not None else None


class ReadFastPath:
    def __init__(self, app: Any, api: Any, reads: FastReads) -> None:
        """`app`: what answers the requests this layer passes on; `api`: the FastAPI application, whose state
        (token validator, services) a fast-path read uses as the routes do; `reads`: what it answers."""
        self.app = app
        self.api = api
        self.reads = reads
        self._readers = ThreadPoolExecutor(max_workers=READER_THREADS, thread_name_prefix="fast-read")
        """Its own threads, handed work by asyncio directly: several times cheaper per request than anyio's
        thread pool, which FastAPI's routes use."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        read = self.reads.match(scope["path"]) if scope["type"] == "http" and scope["method"] == "GET" else None
        response = None
        if read is not None:
            response = await asyncio.get_running_loop().run_in_executor(self._readers, self._answer, scope, read)
        if response is None or read is None:
            await self.app(scope, receive, send)
            return
        holder = scope.get(HOLDER)
        if holder is not None:  # the HTTP metrics need not match the path again
            holder["route"] = read.template
        await response(scope, receive, send)

    def _answer(self, scope: dict[str, Any], read: Read) -> Response | None:
        """Runs on a reader thread: it reads the database."""
        request = Request({**scope, "app": self.api})  # FastAPI sets it too; authentication reads the app's state
        try:
            ctx = RequestContext(
                base_url=base_url(request),
                caller=authorized_caller(request),
                api_version=check_ml_version(request.query_params.get("api-version")),
            )
            resources = services_of(request).provide(Resources)
            return _read(ctx, resources, read, request.query_params)
        except Exception:  # noqa: BLE001 - the routes answer anything unusual, errors included
            return None


def _below_workspace(resource_type: ResourceType) -> tuple[str, ...]:
    """The collections a path walks from its workspace down to ``resource_type``."""
    lineage = [level.type for level in resource_type.lineage]
    assert WORKSPACE_TYPE in lineage, f"{resource_type.type}: the fast path reads types below a workspace"
    return tuple(level.collection for level in resource_type.lineage[lineage.index(WORKSPACE_TYPE) + 1 :])


def _valid_names(match: re.Match[str]) -> bool:
    return bool(
        UUID.match(match["subscription"]) and GROUP.match(match["group"]) and WORKSPACE_NAME.match(match["name"])
    )


def _read(ctx: RequestContext, resources: Resources, read: Read, query: QueryParams) -> Response | None:
    if not read.listed:
        body = resources.store.get_body_json(read.path)
        return arm_json(body, ctx.base_url) if body is not None else None
    parent = read.path.rsplit("/", 1)[0]
    resource_type = read.resource_type
    return list_response(ctx, resources, parent, resource_type.type, read.path, query, resource_type.size_parameter)
