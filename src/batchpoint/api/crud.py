"""The CRUD routes of a declared resource type (``arm/registry.py``): list, get, put, patch and delete.

Every type's routes have one shape, written here once: the id is built from the path (names checked as the type
declares), reads answer the stored JSON, writes go through the type's service: long-running ones answer at once
with an operation to poll, synchronous ones with the result. The route functions get their parameters from
signatures built per type, since each type names its path parameters differently.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel

from batchpoint.api.deps import (
    ArmContext,
    MlContext,
    ResourcesDep,
    SubscriptionId,
    check_subscription,
    provided_service,
    services_of,
)
from batchpoint.api.docs import responses
from batchpoint.api.listing import list_response, paging_parameters
from batchpoint.api.responses import accepted_response, arm_json, put_response, upserted_response
from batchpoint.api.routing import routes
from batchpoint.arm.context import RequestContext
from batchpoint.arm.ids import PROVIDER
from batchpoint.arm.mutability import CreateOnlyFields
from batchpoint.arm.registry import ListSelection, ResourceType, Verb
from batchpoint.arm.resources import Resources

Handler = TypeVar("Handler", bound=Callable[..., Any])
SERVER_FIELDS = {"id", "name", "type", "systemData"}
"""Read-only envelope fields a PUT body may echo back from a GET; the server sets them."""
SUMMARIES = {Verb.LIST: "List", Verb.GET: "Get", Verb.PUT: "Put", Verb.PATCH: "Patch", Verb.DELETE: "Delete"}
METHODS = {Verb.LIST: "GET", Verb.GET: "GET", Verb.PUT: "PUT", Verb.PATCH: "PATCH", Verb.DELETE: "DELETE"}
NO_CONTENT = None


@functools.cache
def crud_router(resource_type: ResourceType) -> APIRouter:
    """The routes of the verbs ``resource_type`` declares; built once per type and process, shared by its apps (they
    depend on the type alone; building them is most of what a new app costs: ~0.3 s of CPU)."""
    router = routes(tags=[resource_type.operations.tag])
    for verb in Verb:
        if verb in resource_type.operations.verbs:
            _ROUTES[verb](router, resource_type)
    return router


def action(
    router: APIRouter, resource_type: ResourceType, name: str, ok: type[BaseModel] | None, operation: str = ""
) -> Callable[[Handler], Handler]:
    """The decorator of a route for an action on one resource (``POST {item}/listkeys``): its operation id is
    ``{group}_{Name}`` (``operation`` when the spec names it otherwise)."""
    return router.post(
        f"{resource_type.item_path}/{name}",
        operation_id=f"{resource_type.operations.group}_{operation or name[:1].upper() + name[1:]}",
        responses=responses({200: ok}),
    )


def id_dependency(resource_type: ResourceType, write: bool = False) -> Any:
    """A dependency building the resource's id from the path, its names (and its parents') checked as the types
    declare for a write (``write``) or a read."""
    parameters = [_parameter("subscriptionId", SubscriptionId)]
    for level in resource_type.lineage:
        annotation = Annotated[str, Path(**level.names.checks(write))]
        parameters.append(_parameter(level.name_parameter, annotation))

    async def resource_id(**names: str) -> str:
        built = "/subscriptions/" + check_subscription(names["subscriptionId"])
        for level in resource_type.lineage:
            built = f"{built}/{level.segment}/{names[level.name_parameter]}"
        return built

    resource_id.__signature__ = inspect.Signature(parameters, return_annotation=str)  # type: ignore[attr-defined]
    return Depends(resource_id)


def _parameter(name: str, annotation: Any, default: Any = inspect.Parameter.empty) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)


def _route(
    router: APIRouter,
    resource_type: ResourceType,
    verb: Verb,
    handler: Callable[..., Response],
    parameters: dict[str, Any],
    ok: Mapping[int, type[BaseModel] | None],
    query: dict[str, Any] | None = None,
    **options: Any,
) -> None:
    """Add ``handler`` with ``parameters`` (and the optional ``query`` parameters) as its signature: FastAPI reads
    what it injects from there."""
    signature = [_parameter(name, annotation) for name, annotation in parameters.items()]
    signature += [_parameter(name, annotation, None) for name, annotation in (query or {}).items()]
    handler.__signature__ = inspect.Signature(signature, return_annotation=Response)  # type: ignore[attr-defined]
    collection = verb is Verb.LIST
    title = resource_type.operations.title + ("s" if collection else "")
    router.add_api_route(
        resource_type.collection_path if collection else resource_type.item_path,
        handler,
        methods=[METHODS[verb]],
        operation_id=resource_type.operation_id(verb),
        summary=f"{SUMMARIES[verb]} {title}",
        responses=responses(ok),
        **options,
    )


def _add_list(router: APIRouter, resource_type: ResourceType) -> None:
    def handler(request: Request, ctx: RequestContext, resources: Resources, parent_id: str, **query: Any) -> Response:
        keep = None
        if resource_type.list_query:
            service: ListSelection[...] = services_of(request).resource_service(resource_type)
            selected = service.select(parent_id, **query)
            if isinstance(selected, list):
                return arm_json({"value": [resource.body for resource in selected]}, ctx.base_url)
            keep = selected
        path = f"{parent_id}/{resource_type.segment}"
        return list_response(
            ctx,
            resources,
            parent_id,
            resource_type.type,
            path,
            request.query_params,
            resource_type.size_parameter,
            keep,
            resource_type.list_query_names,
        )

    assert resource_type.wire.page is not None, f"{resource_type.type} serves LIST without a page model"
    parameters = {
        "request": Request,
        "ctx": _context(resource_type),
        "resources": ResourcesDep,
        "parent_id": Annotated[str, _parent_id(resource_type)],
    }
    _route(
        router,
        resource_type,
        Verb.LIST,
        handler,
        parameters,
        {200: resource_type.wire.page},
        dict(resource_type.list_query),
        openapi_extra=paging_parameters(resource_type.size_parameter, ordered=resource_type.ordered),
    )


def _add_get(router: APIRouter, resource_type: ResourceType) -> None:
    def handler(ctx: RequestContext, resources: Resources, resource_id: str) -> Response:
        return arm_json(resources.get_json(resource_id), ctx.base_url)

    parameters = {"ctx": _context(resource_type), "resources": ResourcesDep, "resource_id": _id(resource_type)}
    _route(router, resource_type, Verb.GET, handler, parameters, {200: resource_type.wire.model})


def _add_put(router: APIRouter, resource_type: ResourceType) -> None:
    create_only = CreateOnlyFields.of_resource(resource_type.wire.model)

    def long_running(ctx: RequestContext, service: Any, resource_id: str, body: BaseModel) -> Response:
        request = body.model_dump(mode="json", exclude=SERVER_FIELDS)
        request["properties"] = create_only.unsent(getattr(body, "properties", None), request["properties"])
        return put_response(ctx, service.put(ctx, resource_id, request))

    def synchronous(ctx: RequestContext, service: Any, resource_id: str, body: BaseModel) -> Response:
        request = body.model_dump(mode="json", exclude_none=True)
        return upserted_response(ctx, service.put(ctx, resource_id, request))

    handler = long_running if resource_type.long_running else synchronous
    parameters = _write_parameters(resource_type) | {"body": resource_type.wire.model}
    ok: dict[int, type[BaseModel] | None] = {200: resource_type.wire.model, 201: resource_type.wire.model}
    _route(router, resource_type, Verb.PUT, handler, parameters, ok)


def _add_patch(router: APIRouter, resource_type: ResourceType) -> None:
    def handler(ctx: RequestContext, service: Any, resource_id: str, body: BaseModel) -> Response:
        return accepted_response(ctx, service.patch(ctx, resource_id, body.model_dump(mode="json", exclude_unset=True)))

    assert resource_type.long_running, f"{resource_type.type}: only long-running types serve PATCH"
    assert resource_type.wire.patch is not None, f"{resource_type.type} serves PATCH without a patch model"
    parameters = _write_parameters(resource_type) | {"body": resource_type.wire.patch}
    _route(router, resource_type, Verb.PATCH, handler, parameters, {200: resource_type.wire.model, 202: NO_CONTENT})


def _add_delete(router: APIRouter, resource_type: ResourceType) -> None:
    def long_running(ctx: RequestContext, service: Any, resource_id: str) -> Response:
        return accepted_response(ctx, service.delete(ctx, resource_id))

    def synchronous(ctx: RequestContext, service: Any, resource_id: str) -> Response:
        service.delete(ctx, resource_id)
        return Response(status_code=200)

    if resource_type.long_running:
        handler, ok = long_running, {200: NO_CONTENT, 202: NO_CONTENT, 204: NO_CONTENT}
    else:
        handler, ok = synchronous, {200: NO_CONTENT}
    parameters = {"ctx": _context(resource_type), "service": _service(resource_type), "resource_id": _id(resource_type)}
    _route(router, resource_type, Verb.DELETE, handler, parameters, ok)


def _write_parameters(resource_type: ResourceType) -> dict[str, Any]:
    return {
        "ctx": _context(resource_type),
        "service": _service(resource_type),
        "resource_id": _id(resource_type, write=True),
    }


def _context(resource_type: ResourceType) -> Any:
    """Types of Microsoft.MachineLearningServices take its api-versions; others (resource groups) any."""
    return MlContext if resource_type.type.startswith(PROVIDER + "/") else ArmContext


def _id(resource_type: ResourceType, write: bool = False) -> Any:
    return Annotated[str, id_dependency(resource_type, write)]


def _parent_id(resource_type: ResourceType) -> Any:
    assert resource_type.parent is not None, f"{resource_type.type}: a list needs a parent"
    return id_dependency(resource_type.parent)


def _service(resource_type: ResourceType) -> Any:
    return Annotated[Any, provided_service(resource_type)]


_ROUTES: dict[Verb, Callable[[APIRouter, ResourceType], None]] = {
    Verb.LIST: _add_list,
    Verb.GET: _add_get,
    Verb.PUT: _add_put,
    Verb.PATCH: _add_patch,
    Verb.DELETE: _add_delete,
}
