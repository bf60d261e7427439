"""FastAPI dependencies: the services of this process, the caller, and path-derived resource ids.

The HTTP layer names no feature: a route asks for the service it needs by type (``provided(Jobs)``), and the app
(``app/wiring.py``) registers one of each. Authentication is reached the same way, through the ``Authenticator``
the app installs (``access/authentication.py``), so that the access rules sit above this plumbing.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Protocol, TypeVar, cast

from fastapi import Depends, Path, Query, Request
from fastapi.params import Depends as DependsParam

from batchpoint.api.versions import check_arm_version, check_ml_version
from batchpoint.arm.context import Caller, RequestContext
from batchpoint.arm.errors import ArmError
from batchpoint.arm.ids import resource_group_id, workspace_id
from batchpoint.arm.registry import ResourceType
from batchpoint.arm.resources import Resources

T = TypeVar("T")
UUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
RESOURCE_GROUP_PATTERN = r"^[-\w\._\(\)]+$"
WORKSPACE_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9_-]{2,32}$"


class ServiceContainer(Protocol):
    """The services of this process (``app/wiring.py``)."""

    def provide(self, kind: type[T]) -> T: ...

    def resource_service(self, resource_type: ResourceType) -> Any:
        """The service writing ``resource_type``: a ``ResourceService`` or ``UpsertService`` (``arm/registry.py``)."""


class Authenticator(Protocol):
    def __call__(self, request: Request, data_plane: bool = False) -> Caller:
        """The authenticated caller, once its role assignments allow the request (401, then 403, else)."""


def services_of(request: Request) -> ServiceContainer:
    return cast(ServiceContainer, request.app.state.services)


def provided(kind: type[T]) -> Any:
    """A dependency on this process's service of type ``kind``: ``jobs: Annotated[Jobs, provided(Jobs)]``."""

    async def dependency(request: Request) -> T:
        return services_of(request).provide(kind)

    return Depends(dependency)


def provided_service(resource_type: ResourceType) -> DependsParam:
    """A dependency on the service that writes resources of ``resource_type``."""

    async def dependency(request: Request) -> Any:
        return services_of(request).resource_service(resource_type)

    return Depends(dependency)


def base_url(request: Request) -> str:
    """The server's URL as the request names it (`{base_url}` in stored bodies). Kept per scheme, Host header, server
    address and root path, what Starlette builds it from: building and formatting its URL took 7 µs of a read's 70."""
    scope = request.scope
    key = (
        scope["scheme"],
        request.headers.get("host"),
        scope.get("server"),
        scope.get("app_root_path", scope.get("root_path", "")),
    )
    url = _BASE_URLS.get(key)
    if url is None:
        if len(_BASE_URLS) >= BASE_URL_CACHE:  # the Host header is the client's: the cache stays bounded
            _BASE_URLS.clear()
        url = _BASE_URLS[key] = str(request.base_url).rstrip("/")
    return url


BASE_URL_CACHE = 64
_BASE_URLS: dict[tuple[object, ...], str] = {}


ApiVersion = Annotated[str | None, Query(alias="api-version", description="The API version to use for this operation.")]


def authorized_caller(request: Request, data_plane: bool = False) -> Caller:
    """The authenticated caller, once its role assignments allow the request (401, then 403, else)."""
    authenticator: Authenticator = request.app.state.authenticator
    return authenticator(request, data_plane)


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


def check_subscription(subscription_id: str) -> str:
    if not UUID.match(subscription_id):
        raise ArmError(
            400,
            "InvalidSubscriptionId",
            f"The provided subscription identifier '{subscription_id}' is malformed or invalid.",
        )
    return subscription_id


async def group_id(subscriptionId: SubscriptionId, resourceGroupName: ResourceGroupName) -> str:  # noqa: N803
    return resource_group_id(check_subscription(subscriptionId), resourceGroupName)


def checked_workspace_id(subscription: str, group: str, workspace: str) -> str:
    return workspace_id(check_subscription(subscription), group, workspace)


async def ws_id(
    subscriptionId: SubscriptionId,  # noqa: N803
    resourceGroupName: ResourceGroupName,  # noqa: N803
    workspaceName: WorkspaceName,  # noqa: N803
) -> str:
    return checked_workspace_id(subscriptionId, resourceGroupName, workspaceName)


MlContext = Annotated[RequestContext, Depends(ml_context)]
ArmContext = Annotated[RequestContext, Depends(arm_context)]
GroupId = Annotated[str, Depends(group_id)]
WorkspaceId = Annotated[str, Depends(ws_id)]
ResourcesDep = Annotated[Resources, provided(Resources)]
