"""Resource types, each declared once.

A declaration says where a type lives (its collection below a workspace or below another type), how it is named,
which wire models carry it and which verbs it serves. From it the rest is derived: the CRUD routes and their
operation ids (``api/crud.py``), the ARM type string, the canonical casing of its path segment
(``api/paths.py``), the read fast path's table (``api/fastpath.py``) and the service the app wires for it
(``app/wiring.py``). docs/architecture.md shows how to add a type.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from pydantic import BaseModel

from batchpoint.arm.context import RequestContext
from batchpoint.arm.ids import WORKSPACE_TYPE
from batchpoint.arm.tracked import Accepted, ResourceKind

WORKSPACE_PATH = (
    "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}"
    "/providers/Microsoft.MachineLearningServices/workspaces/{workspaceName}"
)
CHILD_NAME_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9\-_]{0,254}$"


class Verb(str, Enum):
    """The CRUD operations a declaration can ask the registry to serve."""

    LIST = "List"
    GET = "Get"
    PUT = "CreateOrUpdate"
    PATCH = "Update"
    DELETE = "Delete"


ALL_VERBS = frozenset(Verb)


class ResourceService(Protocol):
    """What the generated write routes call: long-running PUT, PATCH and DELETE (``arm/tracked.py``)."""

    def put(self, ctx: RequestContext, resource_id: str, request: dict[str, Any]) -> Accepted: ...

    def patch(self, ctx: RequestContext, resource_id: str, patch: dict[str, Any]) -> Accepted: ...

    def delete(self, ctx: RequestContext, resource_id: str) -> Accepted: ...


class Provider(Protocol):
    """The app's services by type: what a declaration's rules are built from."""

    def __call__(self, kind: type[Any]) -> Any: ...


@dataclass(frozen=True, eq=False)
class ResourceType:
    """One ARM resource type served with long-running writes (the ``ResourceKind`` flow of ``arm/tracked.py``)."""

    collection: str
    """Its path segment below the parent: ``batchEndpoints``."""
    name_parameter: str
    """The path parameter naming one: ``endpointName``."""
    operation_group: str
    """Operation ids are ``{operation_group}_{verb}``: ``BatchEndpoints_Get``."""
    singular: str
    """Its title in route summaries: ``Endpoint`` gives 'Get Endpoint' and 'List Endpoints'."""
    tag: str
    wire: type[BaseModel]
    """The PUT body and the GET answer."""
    list_wire: type[BaseModel]
    parent: ResourceType | None = None
    """None: directly below a workspace."""
    patch_wire: type[BaseModel] | None = None
    verbs: frozenset[Verb] = ALL_VERBS
    """The verbs the registry serves; a feature routes the others itself (with extra parameters, say)."""
    new_name_pattern: str | None = CHILD_NAME_PATTERN
    """Checked on PUT and PATCH; reads and deletes take any name, so that older resources stay reachable."""
    size_parameter: str = "$top"
    """The list's page size parameter, as the spec spells it for this type: ``$top`` or ``count``."""
    ordered: bool = True
    """Whether the list takes ``$orderBy``."""
    fast_reads: bool = False
    """Whether GETs of it and of its list are answered by the read fast path (``api/fastpath.py``)."""

    @property
    def type(self) -> str:
        """The ARM type: ``Microsoft.MachineLearningServices/workspaces/batchEndpoints``."""
        return f"{self.parent.type if self.parent else WORKSPACE_TYPE}/{self.collection}"

    @property
    def collection_path(self) -> str:
        return f"{self.parent.item_path if self.parent else WORKSPACE_PATH}/{self.collection}"

    @property
    def item_path(self) -> str:
        return f"{self.collection_path}/{{{self.name_parameter}}}"

    @property
    def lineage(self) -> tuple[ResourceType, ...]:
        """This type and its parents, the outermost first."""
        return (*self.parent.lineage, self) if self.parent else (self,)

    def operation_id(self, verb: Verb) -> str:
        return f"{self.operation_group}_{verb.value}"


@dataclass(frozen=True)
class Served:
    """A resource type as one server serves it: its declaration, and the rules its writes follow (properties,
    secrets, provisioning checks), built from the app's services."""

    resource_type: ResourceType
    rules: Callable[[Provider], ResourceKind]
