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
import resource
import time
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
from batchpoint.arm.errors import ArmError
from batchpoint.arm.ids import WORKSPACE_TYPE
from batchpoint.arm.paging import parse_page_size, parse_skip
from batchpoint.arm.registry import CHILD_NAME_PATTERN, ResourceType
from batchpoint.arm.resources import Resources

WORKSPACE = re.compile(
    r"^(?P<workspace>/subscriptions/(?P<subscription>[^/]+)/resourceGroups/(?P<group>[^/]+)"
    r"/providers/Microsoft\.MachineLearningServices/workspaces/(?P<name>[^/]+))(?P<rest>/.*)$"
)
NAME = re.compile(CHILD_NAME_PATTERN)
READER_THREADS = 2
"""For the reads not answered on the loop. Few on purpose: every reader thread competes with the event loop for the
GIL, and two keep one slow read from holding up the rest."""
LOOP_PAGE_SIZE = 20
"""A list page is answered on the event loop only up to this many items (a few hundred microseconds)."""
LOOP_BUDGET_SECONDS = 0.01
"""A read on the loop that took longer and blocked (on a cold disk, say) or worked that long (a body far larger than
usual) sends the reads that follow to the reader threads for LOOP_PAUSE_SECONDS. A read takes about 0.1 ms; on a
busy machine the system also preempts the loop for 10 ms or more in the middle of one now and then, which is no
reason to stop (`_stalled` tells them apart)."""
LOOP_PAUSE_SECONDS = 1.0
RUSAGE_THREAD: int | None = getattr(resource, "RUSAGE_THREAD", None)
"""Linux's per-thread usage; elsewhere every read over the budget counts as a stall."""
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
    """Answers the reads of `reads` when nothing about them is unusual, else passes the request on.

    Where a read runs (docs/architecture.md, "The event loop never waits for the database or the disk"): on the
    event loop when the store promises reads that never wait (SQLite: `Store.loop_reads`), checking a token never
    fetches keys over the network (no trusted issuer has a JWKS URL) and the read is known to be cheap (one
    resource, or a list page reading at most LOOP_PAGE_SIZE rows), unless a loop read stalled in the last
    LOOP_PAUSE_SECONDS; else on reader threads of its own. A hand-over to a thread costs more CPU than such a read
    (about 70 µs against 60-120 µs)."""

    def __init__(self, app: Any, api: Any, reads: FastReads) -> None:
        """`app`: what answers the requests this layer passes on; `api`: the FastAPI application, whose state
        (token validator, services) a fast-path read uses as the routes do; `reads`: what it answers."""
        self.app = app
        self.api = api
        self.reads = reads
        self._readers = ThreadPoolExecutor(max_workers=READER_THREADS, thread_name_prefix="fast-read")
        """Its own threads, handed work by asyncio directly: several times cheaper per request than anyio's
        thread pool, which FastAPI's routes use."""
        self._loop_resources: Resources | None = None
        self._loop_checked = False
        self._loop_paused_until = 0.0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        read = self.reads.match(scope["path"]) if scope["type"] == "http" and scope["method"] == "GET" else None
        response = None
        if read is not None:
            request = Request({**scope, "app": self.api})  # FastAPI sets it too; authentication reads the app's state
            on_loop = self._on_loop(request, read)
            if on_loop is not None:
                response = self._answer_timed(request, read, on_loop)
            else:
                resources = services_of(request).provide(Resources)
                loop = asyncio.get_running_loop()
                response = await loop.run_in_executor(self._readers, _answer, request, read, resources)
        if response is None or read is None:
            await self.app(scope, receive, send)
            return
        holder = scope.get(HOLDER)
        if holder is not None:  # the HTTP metrics need not match the path again
            holder["route"] = read.template
        await response(scope, receive, send)

    def _on_loop(self, request: Request, read: Read) -> Resources | None:
        """The store view to answer this read with on the loop; None to answer it on a reader thread."""
        if not self._loop_checked:
            self._loop_checked = True
            store = services_of(request).provide(Resources).store.loop_reads()
            local_keys = not request.app.state.tokens.fetches_keys  # a new token's key may come over the network
            self._loop_resources = Resources(store) if store is not None and local_keys else None
        if self._loop_resources is None or time.monotonic() < self._loop_paused_until:
            return None
        if read.listed and _rows_read(request, read) > LOOP_PAGE_SIZE:
            return None
        return self._loop_resources

    def _answer_timed(self, request: Request, read: Read, resources: Resources) -> Response | None:
        usage = _thread_usage()
        started = time.perf_counter()
        response = _answer(request, read, resources)
        if time.perf_counter() - started > LOOP_BUDGET_SECONDS and _stalled(usage):
            self._loop_paused_until = time.monotonic() + LOOP_PAUSE_SECONDS
        return response


def _thread_usage() -> tuple[float, int] | None:
    """This thread's CPU seconds and voluntary context switches (the times it blocked), where the system says."""
    if RUSAGE_THREAD is None:
        return None
    usage = resource.getrusage(RUSAGE_THREAD)
    return usage.ru_utime + usage.ru_stime, usage.ru_nvcsw


def _stalled(before: tuple[float, int] | None) -> bool:
    """Whether a read that took longer than the budget held the loop up itself: it blocked (on the disk, say) or
    worked that long. One the system merely preempted (other processes wanted the CPU) did not: a busy machine
    preempts the loop as often between reads as during them."""
    after = _thread_usage()
    if before is None or after is None:
        return True
    return after[1] > before[1] or after[0] - before[0] > LOOP_BUDGET_SECONDS


def _answer(request: Request, read: Read, resources: Resources) -> Response | None:
    """The response, or None when the routes should answer (anything unusual, errors included)."""
    try:
        ctx = RequestContext(
            base_url=base_url(request),
            caller=authorized_caller(request),
            api_version=check_ml_version(request.query_params.get("api-version")),
        )
        return _read(ctx, resources, read, request.query_params)
    except Exception:  # noqa: BLE001 - the routes answer anything unusual, errors included
        return None


def _rows_read(request: Request, read: Read) -> int:
    """How many rows a list page reads: its size, and the items a numeric ``$skip`` skips; too many for the loop
    when the paging parameters are not valid (the routes answer those)."""
    query = request.query_params
    try:
        size = parse_page_size(query.get(read.resource_type.size_parameter))
        return size + parse_skip(query.get("$skip")).offset
    except ArmError:
        return LOOP_PAGE_SIZE + 1


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
