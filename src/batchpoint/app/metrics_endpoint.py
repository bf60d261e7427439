"""``GET /metrics``: the Prometheus text format, for a caller with read access over ``/`` (docs/metrics.md)."""

from __future__ import annotations

from fastapi import Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from batchpoint.api.deps import authorized_caller
from batchpoint.api.routing import routes

router = routes(tags=["Metrics"])


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    authorized_caller(request)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
