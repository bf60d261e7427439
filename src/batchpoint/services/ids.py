"""ARM resource ids: building them, and reading the parts back out."""

from __future__ import annotations

from dataclasses import dataclass

PROVIDER = "Microsoft.MachineLearningServices"
RESOURCE_GROUP_TYPE = "Microsoft.Resources/resourceGroups"
WORKSPACE_TYPE = f"{PROVIDER}/workspaces"
BATCH_ENDPOINT_TYPE = f"{WORKSPACE_TYPE}/batchEndpoints"
BATCH_DEPLOYMENT_TYPE = f"{BATCH_ENDPOINT_TYPE}/deployments"


def resource_group_id(subscription: str, resource_group: str) -> str:
    return f"/subscriptions/{subscription}/resourceGroups/{resource_group}"


def workspace_id(subscription: str, resource_group: str, workspace: str) -> str:
    return f"{resource_group_id(subscription, resource_group)}/providers/{PROVIDER}/workspaces/{workspace}"


def child_id(parent_id: str, collection: str, name: str) -> str:
    return f"{parent_id}/{collection}/{name}"


@dataclass(frozen=True)
class ArmPath:
    """The parts of an id below a workspace, e.g. ``.../workspaces/ws/batchEndpoints/ep``."""

    subscription: str
    resource_group: str
    workspace: str | None = None

    @classmethod
    def parse(cls, resource_id: str) -> ArmPath:
        parts = resource_id.strip("/").split("/")
        lowered = [part.lower() for part in parts]
        workspace = parts[lowered.index("workspaces") + 1] if "workspaces" in lowered else None
        return cls(subscription=parts[1], resource_group=parts[3], workspace=workspace)

    @property
    def resource_group_id(self) -> str:
        return resource_group_id(self.subscription, self.resource_group)

    @property
    def workspace_id(self) -> str:
        assert self.workspace is not None
        return workspace_id(self.subscription, self.resource_group, self.workspace)


def relative_type_and_name(resource_id: str) -> str:
    """``Microsoft.MachineLearningServices/workspaces/ws/batchEndpoints/ep``, as ARM's 404 message names it."""
    marker = f"/providers/{PROVIDER}/"
    index = resource_id.lower().find(marker.lower())
    return PROVIDER + "/" + resource_id[index + len(marker) :] if index >= 0 else resource_id


def type_of(resource_id: str) -> str:
    """The ARM type an id names: the provider namespace and every type segment below it."""
    parts = resource_id.strip("/").split("/")
    lowered = [part.lower() for part in parts]
    if "providers" not in lowered:
        return RESOURCE_GROUP_TYPE
    start = lowered.index("providers") + 1
    namespace, rest = parts[start], parts[start + 1 :]
    return "/".join([namespace, *rest[0::2]])
