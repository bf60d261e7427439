"""Role assignments (``Microsoft.Authorization/roleAssignments``) under any scope: the root ``/``, a subscription,
a resource group, a workspace or an endpoint. ``batchpoint role`` calls these."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Response

from batchpoint.access.rbac import ASSIGNMENTS, Assignment, RoleAssignments, role_named
from batchpoint.access.wire import RoleAssignmentCreate
from batchpoint.api.deps import ArmContext, provided
from batchpoint.api.responses import arm_json
from batchpoint.api.routing import routes
from batchpoint.arm.errors import ArmError, bad_request

router = routes(tags=["Authorization"], include_in_schema=False)
Roles = Annotated[RoleAssignments, provided(RoleAssignments)]

# ``{scope:path}`` may be empty: ``/providers/...`` is the root scope.
COLLECTION = "/{scope:path}" + ASSIGNMENTS.removeprefix("/")
ITEM = COLLECTION + "/{name}"
Scope = Annotated[str, Path()]
Name = Annotated[str, Path(min_length=1, max_length=64)]


def _scope(scope: str) -> str:
    """``/`` or an ARM path below a subscription."""
    normalized = "/" + scope.strip("/")
    if normalized != "/" and not normalized.lower().startswith("/subscriptions/"):
        raise bad_request(f"The scope '{normalized}' is not valid for a role assignment.", "InvalidScope")
    return normalized


def _item_id(scope: str, name: str) -> str:
    return _scope(scope).rstrip("/") + ASSIGNMENTS + "/" + name


def _not_found(name: str) -> ArmError:
    return ArmError(404, "RoleAssignmentNotFound", f"The role assignment '{name}' is not found.")


@router.put(ITEM, operation_id="RoleAssignments_Create")
def create_assignment(ctx: ArmContext, roles: Roles, scope: Scope, name: Name, body: RoleAssignmentCreate) -> Response:
    properties = body.properties
    assignment = Assignment(_scope(scope), properties.principalId, role_named(properties.roleDefinitionId))
    created, new = roles.assign(_item_id(scope, name), assignment)
    return arm_json(created, ctx.base_url, 201 if new else 200)


@router.get(ITEM, operation_id="RoleAssignments_Get")
def get_assignment(ctx: ArmContext, roles: Roles, scope: Scope, name: Name) -> Response:
    found = roles.get(_item_id(scope, name))
    if found is None:
        raise _not_found(name)
    return arm_json(found, ctx.base_url)


@router.get(COLLECTION, operation_id="RoleAssignments_ListForScope")
def list_assignments(ctx: ArmContext, roles: Roles, scope: Scope) -> Response:
    """The assignments that hold at the scope (made there or above it), and those made below it."""
    return arm_json({"value": roles.related(_scope(scope))}, ctx.base_url)


@router.delete(ITEM, operation_id="RoleAssignments_Delete")
def delete_assignment(ctx: ArmContext, roles: Roles, scope: Scope, name: Name) -> Response:
    resource_id = _item_id(scope, name)
    found = roles.get(resource_id)
    if found is None:
        return Response(status_code=204)
    roles.remove(resource_id)
    return arm_json(found, ctx.base_url)
