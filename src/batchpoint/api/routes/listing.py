"""One paged ARM list response, shared by every collection route."""

from __future__ import annotations

import json

from fastapi import Response

from batchpoint.api.responses import arm_json
from batchpoint.services.container import Services
from batchpoint.services.context import RequestContext
from batchpoint.services.paging import next_link, parse_order, parse_page_size, parse_skip


def list_response(
    ctx: RequestContext,
    services: Services,
    parent_id: str,
    type_: str,
    path: str,
    size: int | None,
    skip: str | None,
    order_by: str | None,
    size_param: str,
) -> Response:
    order, page_size, position = parse_order(order_by), parse_page_size(size), parse_skip(skip)
    page = services.resources.list_page(parent_id, type_, order, position, page_size)
    query = {"api-version": ctx.api_version, size_param: size, "$orderBy": order_by}
    link = next_link(ctx.base_url, path, query, page.next_skip)
    body = '{"value":[' + ",".join(item.body_json for item in page.items) + "]"
    body += f',"nextLink":{json.dumps(link)}}}' if link else "}"
    return arm_json(body, ctx.base_url)
