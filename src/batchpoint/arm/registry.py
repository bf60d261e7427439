"""Resource types, each declared once.

A declaration says where a type lives (its collection below its parent, the top one below a subscription), how
it is named, which wire models carry it, which verbs it serves and whether its writes are long-running. From it
the rest is derived: the CRUD routes and their operation ids (``api/crud.py``), the ARM type string, the canonical
casing of its path segments (``api/paths.py``), the read fast path's table (``api/fastpath.py``) and the service
the app wires for it (``app/wiring.py``). docs/architecture.md shows how to add a type.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ParamSpec, Protocol

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from batchpoint.arm.context import RequestContext
from batchpoint.arm.paging import Keep
from batchpoint.arm.resources import Upserted
from batchpoint.arm.tracked import Accepted, ResourceKind
from batchpoint.store.entities import Resource

SUBSCRIPTION_PATH = "/subscriptions/{subscriptionId}"
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
    """What the generated write routes of a long-running type call (``arm/tracked.py``)."""

    def put(self, ctx: RequestContext, resource_id: str, request: dict[str, Any]) -> Accepted: ...

    def patch(self, ctx: RequestContext, resource_id: str, patch: dict[str, Any]) -> Accepted: ...

    def delete(self, ctx: RequestContext, resource_id: str) -> Accepted: ...


class UpsertService(Protocol):
    """What the generated write routes of a synchronous type call: the write is done when the call returns."""

    def put(self, ctx: RequestContext, resource_id: str, request: dict[str, Any]) -> Upserted: ...

    def delete(self, ctx: RequestContext, resource_id: str) -> None: ...


ListQuery = ParamSpec("ListQuery")


class ListSelection(Protocol[ListQuery]):
    """The service of a type whose list takes query parameters of its own (``ResourceType.list_query``): `select`
    takes them as keyword parameters named as there (`ListQuery`; the registry holds ``ListSelection[...]``)."""

    def select(self, parent_id: str, *args: ListQuery.args, **query: ListQuery.kwargs) -> list[Resource] | Keep | None:
        """The resources such a query selects (a few, answered as one page), the test that keeps them, or None to
        page through the collection."""


class Provider(Protocol):
    """The app's services by type: what a declaration's rules are built from."""

    def __call__(self, kind: type[Any]) -> Any: ...


@dataclass(frozen=True)
class Names:
    """How the path names a resource: the checks its name parameter takes, as the OpenAPI document shows them."""

    pattern: str | None = None
    min_length: int | None = None
    max_length: int | None = None
    description: str | None = None
    on_reads: bool = True
    """False: reads and deletes take any non-empty name (so that resources named before a rule stay reachable),
    and only writes check the rule."""

    def checks(self, write: bool) -> dict[str, Any]:
        """The path parameter's checks on a write (``write``) or a read."""
        if not (write or self.on_reads):
            return {"min_length": 1}
        given = {
            "min_length": self.min_length,
            "max_length": self.max_length,
            "pattern": self.pattern,
            "description": self.description,
        }
        return {name: value for name, value in given.items() if value is not None}


CHILD_NAMES = Names(pattern=CHILD_NAME_PATTERN, on_reads=False)


@dataclass(frozen=True)
class Operations:
    """A type's operations as the OpenAPI document names them, and which of them the registry serves."""

    group: str
    """Operation ids are ``{group}_{verb}``: ``BatchEndpoints_Get``."""
    title: str
    """The type in route summaries: ``Endpoint`` gives 'Get Endpoint' and 'List Endpoints'."""
    tag: str
    verbs: frozenset[Verb] = ALL_VERBS
    """The verbs the registry serves; a feature routes the others itself (with extra parameters, say)."""
    renamed: Mapping[Verb, str] = field(default_factory=dict)
    """Operation ids that differ from ``{group}_{verb}``: ``{Verb.LIST: "ListByResourceGroup"}``."""

    def id(self, verb: Verb) -> str:
        return f"{self.group}_{self.renamed.get(verb, verb.value)}"


@dataclass(frozen=True)
class Wire:
    """A type's wire models."""

    model: type[BaseModel]
    """The PUT body and the GET answer."""
    page: type[BaseModel] | None = None
    """A page of its list."""
    patch: type[BaseModel] | None = None
    """The PATCH body."""


@dataclass(frozen=True, eq=False)
class ResourceType:
    """One ARM resource type."""

    collection: str
    """Its path segment below the parent: ``batchEndpoints``."""
    name_parameter: str
    """The path parameter naming one: ``endpointName``."""
    parent: ResourceType | None
    """None: directly below a subscription (resource groups)."""
    operations: Operations
    wire: Wire
    long_running: bool = False
    """PUT, PATCH and DELETE answer at once and go on as an operation the client polls (``arm/tracked.py``); else
    a write is done when it is answered (PUT 201 or 200 with the resource, DELETE 200)."""
    names: Names = CHILD_NAMES
    namespace: str | None = None
    """Set on a type that opens a provider namespace (workspaces: ``Microsoft.MachineLearningServices``): its ARM
    type is ``{namespace}/{collection}`` and its path goes through ``providers/{namespace}``, unless
    ``provider_hop`` is False (resource groups, the one type ARM serves without that hop)."""
    provider_hop: bool = True
    size_parameter: str = "$top"
    """The list's page size parameter, as the spec spells it for this type: ``$top`` or ``count``."""
    ordered: bool = True
    """Whether the list takes ``$orderBy``."""
    list_query: Mapping[str, Any] = field(default_factory=dict)
    """Query parameters of the list besides paging (a name and its annotation, with None as the default): the
    type's service selects what they ask for (``ListSelection``), and each nextLink of the list carries them."""
    fast_reads: bool = False
    """Whether GETs of it and of its list are answered by the read fast path (``api/fastpath.py``)."""

    def __repr__(self) -> str:
        return f"ResourceType({self.type})"

    @property
    def type(self) -> str:
        """The ARM type: ``Microsoft.MachineLearningServices/workspaces/batchEndpoints``."""
        if self.namespace is not None:
            return f"{self.namespace}/{self.collection}"
        assert self.parent is not None, f"{self.collection}: a top type names its namespace"
        return f"{self.parent.type}/{self.collection}"

    @property
    def segment(self) -> str:
        """What its collection adds to its parent's path: ``batchEndpoints``, ``providers/{namespace}/workspaces``."""
        hop = self.namespace is not None and self.provider_hop
        return f"providers/{self.namespace}/{self.collection}" if hop else self.collection

    @property
    def collection_path(self) -> str:
        return f"{self.parent.item_path if self.parent else SUBSCRIPTION_PATH}/{self.segment}"

    @property
    def item_path(self) -> str:
        return f"{self.collection_path}/{{{self.name_parameter}}}"

    @property
    def lineage(self) -> tuple[ResourceType, ...]:
        """This type and its parents, the outermost first."""
        return (*self.parent.lineage, self) if self.parent else (self,)

    def operation_id(self, verb: Verb) -> str:
        return self.operations.id(verb)

    @property
    def list_query_names(self) -> tuple[str, ...]:
        """The list's own query parameters as the query string spells them: their alias (``jobType``), else
        their name (``tag``)."""
        return tuple(_query_name(name, annotation) for name, annotation in self.list_query.items())


def _query_name(name: str, annotation: Any) -> str:
    aliases = [meta.alias for meta in getattr(annotation, "__metadata__", ()) if isinstance(meta, FieldInfo)]
    return next((alias for alias in aliases if alias), name)


@dataclass(frozen=True)
class Served:
    """A resource type as one server serves it: its declaration, and the rules its writes follow, built from the
    app's services. A long-running type's rules are a ``ResourceKind`` (properties, secrets, provisioning checks)
    that the flow of ``arm/tracked.py`` follows; a synchronous type's rules are its ``UpsertService`` itself. A
    type served for reads only has none, or the ``ListSelection`` of its list's own query parameters."""

    resource_type: ResourceType
    rules: Callable[[Provider], ResourceKind | UpsertService | ListSelection[...]] | None = None
