"""ARM resource ids: building them, and reading the parts back out by position.

An ARM id alternates keys and names: ``/subscriptions/{s}/resourceGroups/{g}/providers/{namespace}/{type}/{name}
[/{type}/{name}...]``, and an extension resource adds another ``/providers/{namespace}/{type}/{name}`` hop. Only the
key positions (every other segment) say what a segment is, so a resource group named ``workspaces`` or
``providers`` is a name like any other.
"""

from __future__ import annotations

from dataclasses import dataclass

from batchpoint.store.entities import JOB_TYPE as JOB_TYPE  # the store indexes jobs by it

PROVIDER = "Microsoft.MachineLearningServices"
SUBSCRIPTION_TYPE = "Microsoft.Resources/subscriptions"
RESOURCE_GROUP_TYPE = "Microsoft.Resources/resourceGroups"
WORKSPACE_TYPE = f"{PROVIDER}/workspaces"
PROVIDERS_KEY = "providers"
ALL_SUBSCRIPTIONS = "/subscriptions"
"""The id every workspace is below: `Store.list_below` from it lists the workspaces of every subscription."""


def resource_group_id(subscription: str, resource_group: str) -> str:
    return f"/subscriptions/{subscription}/resourceGroups/{resource_group}"


def workspace_id(subscription: str, resource_group: str, workspace: str) -> str:
    return f"{resource_group_id(subscription, resource_group)}/providers/{PROVIDER}/workspaces/{workspace}"


def child_id(parent_id: str, collection: str, name: str) -> str:
    return f"{parent_id}/{collection}/{name}"


class MalformedId(ValueError):
    """Not an ARM id: an odd number of segments, or a resource type before any ``providers`` hop."""


@dataclass(frozen=True)
class Level:
    """One resource along an id: its full ARM type, its name, and its own id (the id up to this level)."""

    type: str
    name: str
    id: str


def provider_hops(segments: list[str]) -> list[int]:
    """Positions of the ``providers`` keys of an id's segments (key positions only: names never count)."""
    return [index for index in range(0, len(segments) - 1, 2) if segments[index].lower() == PROVIDERS_KEY]


def levels(resource_id: str) -> list[Level]:
    """Every resource an id passes through, from the subscription down to the one it names."""
    segments = resource_id.strip("/").split("/")
    if len(segments) % 2 or not segments[0]:
        raise MalformedId(resource_id)
    found: list[Level] = []
    namespace: str | None = None
    types: list[str] = []
    for index in range(0, len(segments), 2):
        key, name = segments[index], segments[index + 1]
        lowered = key.lower()
        if lowered == PROVIDERS_KEY:
            namespace, types = name, []
            continue
        if index == 0 and lowered == "subscriptions":
            type_ = SUBSCRIPTION_TYPE
        elif index == 2 and lowered == "resourcegroups" and found:
            type_ = RESOURCE_GROUP_TYPE
        elif namespace is None:
            raise MalformedId(resource_id)
        else:
            types.append(key)
            type_ = "/".join([namespace, *types])
        found.append(Level(type_, name, "/" + "/".join(segments[: index + 2])))
    return found


@dataclass(frozen=True)
class ArmPath:
    """The subscription, resource group and (if any) workspace an id lies in."""

    subscription: str
    resource_group: str
    workspace: str | None = None

    @classmethod
    def parse(cls, resource_id: str) -> ArmPath:
        found = levels(resource_id)
        if len(found) < 2 or found[1].type != RESOURCE_GROUP_TYPE:
            raise MalformedId(resource_id)
        workspace = next((level.name for level in found if level.type.lower() == WORKSPACE_TYPE.lower()), None)
        return cls(subscription=found[0].name, resource_group=found[1].name, workspace=workspace)

    @property
    def resource_group_id(self) -> str:
        return resource_group_id(self.subscription, self.resource_group)

    @property
    def workspace_id(self) -> str:
        assert self.workspace is not None
        return workspace_id(self.subscription, self.resource_group, self.workspace)


def relative_type_and_name(resource_id: str) -> str:
    """``Microsoft.MachineLearningServices/workspaces/ws/batchEndpoints/ep``, as ARM's 404 message names it: the
    id from its last provider namespace on."""
    segments = resource_id.strip("/").split("/")
    hops = provider_hops(segments)
    return "/".join(segments[hops[-1] + 1 :]) if hops else resource_id


def name_of(resource_id: str) -> str:
    """The resource's own name: the id's last segment."""
    return resource_id.rsplit("/", 1)[-1]


def type_of(resource_id: str) -> str:
    """The ARM type an id names: the provider namespace and every type segment below it."""
    return levels(resource_id)[-1].type


def ancestors(resource_id: str) -> list[str]:
    """Ids from the resource group down to (and including) the resource itself."""
    return [level.id for level in levels(resource_id) if level.type != SUBSCRIPTION_TYPE]
