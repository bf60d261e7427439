"""HTTP metrics: every request counted by method, route template and status, and timed, in one ASGI layer.

The route template is FastAPI's (``/subscriptions/{subscriptionId}/...``), so label values stay few whatever the
names in the paths; ``RouteRecorder`` (around FastAPI) hands it out through a holder the outer layer puts in the
request scope, since the layers in between may copy the scope. Requests the read fast path answers take the
template of the route they stand for (the fast path puts it in the holder).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from prometheus_client import Counter, Histogram

REQUESTS = Counter(
    "batchpoint_http_requests",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "batchpoint_http_request_duration_seconds",
    "Time to answer an HTTP request (until its last byte is handed over), by method and route template.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
HOLDER = "batchpoint.route"
UNMATCHED = "(unmatched)"


class HttpMetrics:
    def __init__(self, app: Any, route_of_path: Callable[[str], str | None]) -> None:
        self.app = app
        self.route_of_path = route_of_path
        """The template of a path answered before FastAPI's routing and the fast path (by the ARM layer or the
        limits), else None."""
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        """(method, route, status) -> its counter and histogram children: prometheus-client's ``labels()``
        costs several times a dict lookup."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        holder: dict[str, str] = {}
        scope[HOLDER] = holder
        status = 500

        async def send_and_note(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = holder.get("route") or self.route_of_path(scope["path"]) or UNMATCHED
            counter, histogram = self._children(scope["method"], route, status)
            counter.inc()
            histogram.observe(time.perf_counter() - started)

    def _children(self, method: str, route: str, status: int) -> tuple[Any, Any]:
        key = (method, route, status)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = (REQUESTS.labels(method, route, str(status)), LATENCY.labels(method, route))
        return series


class RouteRecorder:
    """Around FastAPI: passes the matched route's template to ``HttpMetrics``."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            route = scope.get("route")
            holder = scope.get(HOLDER)
            if holder is not None and route is not None:
                holder["route"] = route.path
