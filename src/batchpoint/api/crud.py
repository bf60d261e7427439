"""The CRUD routes of a declared resource type (``arm/registry.py``): list, get, put, patch and delete.

Every type's routes have one shape, written here once: the id is built from the path (names checked as the type
declares), reads answer the stored JSON, writes go through the type's long-running service. The route functions
get their parameters from signatures built per type, since each type names its path parameters differently.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel

from batchpoint.api.deps import (
    MlContext,
    ResourceGroupName,
    ResourcesDep,
    SubscriptionId,
    WorkspaceId,
    WorkspaceName,
    checked_workspace_id,
    provided_service,
)
from batchpoint.api.docs import responses
from batchpoint.api.listing import list_response, paging_parameters
from batchpoint.api.responses import accepted_response, arm_json, put_response
from batchpoint.api.routing import routes
from batchpoint.arm.context import RequestContext
from batchpoint.arm.ids import child_id
from batchpoint.arm.registry import ResourceService, ResourceType, Verb

SERVER_FIELDS = {"id", "name", "type", "systemData"}
"""Read-only envelope fields a PUT body may echo back from a GET; the server sets them."""
WORKSPACE_PARAMETERS = (
    ("subscriptionId", SubscriptionId),
    ("resourceGroupName", ResourceGroupName),
    ("workspaceName", WorkspaceName),
)
SUMMARIES = {Verb.LIST: "List", Verb.GET: "Get", Verb.PUT: "Put", Verb.PATCH: "Patch", Verb.DELETE: "Delete"}


def crud_router(resource_type: ResourceType) -> APIRouter:
    """The routes of the verbs ``resource_type`` declares."""
    router = routes(tags=[resource_type.tag])
    for verb in Verb:
        if verb in resource_type.verbs:
            _ROUTES[verb](router, resource_type)
    return router


def id_dependency(resource_type: ResourceType, checked: bool) -> Any:
    """A dependency building the resource's id from the path; ``checked`` applies the declared name patterns (the
    parents' too), as writes do."""
    parameters = [_path_parameter(name, annotation) for name, annotation in WORKSPACE_PARAMETERS]
    for level in resource_type.lineage:
        pattern = level.new_name_pattern if checked else None
        annotation = Annotated[str, Path(pattern=pattern)] if pattern else Annotated[str, Path(min_length=1)]
        parameters.append(_path_parameter(level.name_parameter, annotation))

    async def resource_id(**names: str) -> str:
        built = checked_workspace_id(names["subscriptionId"], names["resourceGroupName"], names["workspaceName"])
        for level in resource_type.lineage:
            built = child_id(built, level.collection, names[level.name_parameter])
        return built

    resource_id.__signature__ = inspect.Signature(parameters, return_annotation=str)  # type: ignore[attr-defined]
    return Depends(resource_id)


def _path_parameter(name: str, annotation: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation)


def _route(
    router: APIRouter,
    resource_type: ResourceType,
    verb: Verb,
    handler: Callable[..., Response],
    parameters: dict[str, Any],
    ok: dict[int, type[BaseModel] | None],
    **options: Any,
) -> None:
    """Add ``handler`` with ``parameters`` as its signature (FastAPI reads what it injects from there)."""
    handler.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [_path_parameter(name, annotation) for name, annotation in parameters.items()], return_annotation=Response
    )
    collection = verb is Verb.LIST
    method = {Verb.LIST: "GET", Verb.GET: "GET", Verb.PUT: "PUT", Verb.PATCH: "PATCH", Verb.DELETE: "DELETE"}[verb]
    title = resource_type.singular + ("s" if collection else "")
    router.add_api_route(
        resource_type.collection_path if collection else resource_type.item_path,
        handler,
        methods=[method],
        operation_id=resource_type.operation_id(verb),
        summary=f"{SUMMARIES[verb]} {title}",
        responses=responses(ok),
        **options,
    )


def _add_list(router: APIRouter, resource_type: ResourceType) -> None:
    def handler(request: Request, ctx: RequestContext, resources: Any, parent_id: str) -> Response:
        path = f"{parent_id}/{resource_type.collection}"
        return list_response(
            ctx, resources, parent_id, resource_type.type, path, request.query_params, resource_type.size_parameter
        )

    parameters = {"request": Request, "ctx": MlContext, "resources": ResourcesDep, "parent_id": _parent(resource_type)}
    _route(
        router,
        resource_type,
        Verb.LIST,
        handler,
        parameters,
        {200: resource_type.list_wire},
        openapi_extra=paging_parameters(resource_type.size_parameter, ordered=resource_type.ordered),
    )


def _add_get(router: APIRouter, resource_type: ResourceType) -> None:
    def handler(ctx: RequestContext, resources: Any, resource_id: str) -> Response:
        return arm_json(resources.get_json(resource_id), ctx.base_url)

    parameters = {"ctx": MlContext, "resources": ResourcesDep, "resource_id": _id(resource_type, checked=False)}
    _route(router, resource_type, Verb.GET, handler, parameters, {200: resource_type.wire})


def _add_put(router: APIRouter, resource_type: ResourceType) -> None:
    def handler(ctx: RequestContext, service: ResourceService, resource_id: str, body: BaseModel) -> Response:
        request = body.model_dump(mode="json", exclude=SERVER_FIELDS)
        return put_response(ctx, service.put(ctx, resource_id, request))

    parameters = _write_parameters(resource_type) | {"body": resource_type.wire}
    ok: dict[int, type[BaseModel] | None] = {200: resource_type.wire, 201: resource_type.wire}
    _route(router, resource_type, Verb.PUT, handler, parameters, ok)


def _add_patch(router: APIRouter, resource_type: ResourceType) -> None:
    def handler(ctx: RequestContext, service: ResourceService, resource_id: str, body: BaseModel) -> Response:
        return accepted_response(ctx, service.patch(ctx, resource_id, body.model_dump(mode="json", exclude_unset=True)))

    assert resource_type.patch_wire is not None, f"{resource_type.type} serves PATCH without a patch model"
    parameters = _write_parameters(resource_type) | {"body": resource_type.patch_wire}
    _route(router, resource_type, Verb.PATCH, handler, parameters, {200: resource_type.wire, 202: None})


def _add_delete(router: APIRouter, resource_type: ResourceType) -> None:
    def handler(ctx: RequestContext, service: ResourceService, resource_id: str) -> Response:
        return accepted_response(ctx, service.delete(ctx, resource_id))

    parameters = {
        "ctx": MlContext,
        "service": _service(resource_type),
        "resource_id": _id(resource_type, checked=False),
    }
    _route(router, resource_type, Verb.DELETE, handler, parameters, {200: None, 202: None, 204: None})


def _write_parameters(resource_type: ResourceType) -> dict[str, Any]:
    return {"ctx": MlContext, "service": _service(resource_type), "resource_id": _id(resource_type, checked=True)}


def _id(resource_type: ResourceType, checked: bool) -> Any:
    return Annotated[str, id_dependency(resource_type, checked)]


def _parent(resource_type: ResourceType) -> Any:
    if resource_type.parent is None:
        return WorkspaceId
    return Annotated[str, id_dependency(resource_type.parent, checked=False)]


def _service(resource_type: ResourceType) -> Any:
    return Annotated[ResourceService, provided_service(resource_type)]


_ROUTES: dict[Verb, Callable[[APIRouter, ResourceType], None]] = {
    Verb.LIST: _add_list,
    Verb.GET: _add_get,
    Verb.PUT: _add_put,
    Verb.PATCH: _add_patch,
    Verb.DELETE: _add_delete,
}
