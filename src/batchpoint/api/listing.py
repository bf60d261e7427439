"""One paged ARM list response, shared by every collection route.

The paging parameters are read straight from the query string and documented through ``openapi_extra``:
FastAPI's per-parameter validation costs more than the whole page read (see docs/performance.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import Response
from starlette.datastructures import QueryParams

from batchpoint.api.responses import arm_json
from batchpoint.arm.context import RequestContext
from batchpoint.arm.paging import Keep, Page, Position, next_link, parse_order, parse_page_size, parse_skip
from batchpoint.arm.resources import Resources
from batchpoint.store.entities import SortOrder


def paging_parameters(size_param: str, ordered: bool = True) -> dict[str, Any]:
    """The OpenAPI declaration of a list's paging parameters (``count`` or ``$top``, ``$skip``, ``$orderBy``)."""
    parameters = [
        {
            "name": size_param,
            "in": "query",
            "required": False,
            "schema": {"type": "integer", "format": "int32"},
            "description": "Page size (default 100, at most 1000).",
        },
        {
            "name": "$skip",
            "in": "query",
            "required": False,
            "schema": {"type": "string"},
            "description": "Continuation token (from nextLink), or a number of items to skip.",
        },
    ]
    if ordered:
        parameters.append(
            {
                "name": "$orderBy",
                "in": "query",
                "required": False,
                "schema": {"type": "string"},
                "description": "CreatedAtDesc, CreatedAtAsc, UpdatedAtDesc, UpdatedAtAsc ('createdAt desc' forms too).",
            }
        )
    return {"parameters": parameters}


def list_response(
    ctx: RequestContext,
    resources: Resources,
    parent_id: str,
    type_: str,
    path: str,
    query: QueryParams,
    size_param: str,
    keep: Keep | None = None,
    carried: Sequence[str] = (),
) -> Response:
    """A page of the children; with `keep`, of those it keeps. Each nextLink carries the `carried` query
    parameters (the list's own, which chose them)."""
    return paged_response(
        ctx,
        path,
        query,
        size_param,
        lambda order, position, size: resources.list_page(parent_id, type_, order, position, size, keep),
        carried,
    )


def paged_response(
    ctx: RequestContext,
    path: str,
    query: QueryParams,
    size_param: str,
    read: Callable[[SortOrder, Position, int], Page],
    carried: Sequence[str] = (),
) -> Response:
    """One page as ARM answers it: the stored JSON of each item, and a ``nextLink`` when more follow (keeping the
    request's api-version, page size and order, and its `carried` query parameters)."""
    size, skip, order_by = query.get(size_param), query.get("$skip"), query.get("$orderBy")
    page = read(parse_order(order_by), parse_skip(skip), parse_page_size(size))
    api_version = ctx.api_version or query.get("api-version")
    kept = {name: query.get(name) for name in carried}
    link = next_link(
        ctx.base_url, path, {"api-version": api_version, size_param: size, "$orderBy": order_by, **kept}, page.next_skip
    )
    body = '{"value":[' + ",".join(item.body_json for item in page.items) + "]"
    body += f',"nextLink":{json.dumps(link)}}}' if link else "}"
    return arm_json(body, ctx.base_url)
