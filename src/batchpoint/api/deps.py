"""FastAPI dependencies: the services of this process, the caller, and path-derived resource ids."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, Path, Query, Request

from batchpoint.access.authentication import authenticate, authorize
from batchpoint.api.versions import check_arm_version, check_ml_version
from batchpoint.app.wiring import Services
from batchpoint.arm.context import Caller, RequestContext
from batchpoint.arm.errors import ArmError
from batchpoint.arm.ids import resource_group_id, workspace_id

UUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
RESOURCE_GROUP_PATTERN = r"^[-\w\._\(\)]+$"
WORKSPACE_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9_-]{2,32}$"
CHILD_NAME_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9\-_]{0,254}$"


async def get_services(request: Request) -> Services:
    return request.app.state.services


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


ApiVersion = Annotated[str | None, Query(alias="api-version", description="The API version to use for this operation.")]


def authorized_caller(request: Request, data_plane: bool = False) -> Caller:
    """The authenticated caller, once its role assignments allow the request (401, then 403, else)."""
    caller = authenticate(request, data_plane)
    authorize(request, caller)
    return caller


# Dependencies stay flat (no dependency of a dependency): FastAPI's per-level cost dominates the read paths.
async def ml_context(request: Request, api_version: ApiVersion = None) -> RequestContext:
    """The caller (authenticated and authorized first) and a Microsoft.MachineLearningServices api-version."""
    caller = authorized_caller(request)
    return RequestContext(base_url=base_url(request), caller=caller, api_version=check_ml_version(api_version))


async def arm_context(request: Request, api_version: ApiVersion = None) -> RequestContext:
    """The caller (authenticated and authorized first) and any well-formed api-version (other providers)."""
    caller = authorized_caller(request)
    return RequestContext(base_url=base_url(request), caller=caller, api_version=check_arm_version(api_version))


SubscriptionId = Annotated[str, Path(description="The ID of the target subscription (a UUID).")]
ResourceGroupName = Annotated[
    str, Path(min_length=1, max_length=90, pattern=RESOURCE_GROUP_PATTERN, description="Case insensitive.")
]
WorkspaceName = Annotated[str, Path(pattern=WORKSPACE_PATTERN, description="Azure Machine Learning Workspace Name")]


def _check_subscription(subscription_id: str) -> str:
    if not UUID.match(subscription_id):
        raise ArmError(
            400,
            "InvalidSubscriptionId",
            f"The provided subscription identifier '{subscription_id}' is malformed or invalid.",
        )
    return subscription_id


async def group_id(subscriptionId: SubscriptionId, resourceGroupName: ResourceGroupName) -> str:  # noqa: N803
    return resource_group_id(_check_subscription(subscriptionId), resourceGroupName)


def checked_workspace_id(subscription: str, group: str, workspace: str) -> str:
    return workspace_id(_check_subscription(subscription), group, workspace)


async def ws_id(
    subscriptionId: SubscriptionId,  # noqa: N803
    resourceGroupName: ResourceGroupName,  # noqa: N803
    workspaceName: WorkspaceName,  # noqa: N803
) -> str:
    return checked_workspace_id(subscriptionId, resourceGroupName, workspaceName)


ServicesDep = Annotated[Services, Depends(get_services)]
MlContext = Annotated[RequestContext, Depends(ml_context)]
ArmContext = Annotated[RequestContext, Depends(arm_context)]
GroupId = Annotated[str, Depends(group_id)]
WorkspaceId = Annotated[str, Depends(ws_id)]
