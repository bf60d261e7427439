"""Resource groups and workspaces, as the resource registry serves them (``arm/registry.py``): the parents every
other type hangs from."""

from __future__ import annotations

from batchpoint.api.deps import RESOURCE_GROUP_PATTERN, WORKSPACE_PATTERN
from batchpoint.arm.ids import PROVIDER
from batchpoint.arm.registry import Names, Operations, ResourceType, Verb, Wire
from batchpoint.ml.workspaces.wire import ResourceGroup, Workspace, WorkspaceList

RESOURCE_GROUPS = ResourceType(
    collection="resourceGroups",
    name_parameter="resourceGroupName",
    parent=None,
    namespace="Microsoft.Resources",
    provider_hop=False,
    names=Names(pattern=RESOURCE_GROUP_PATTERN, min_length=1, max_length=90, description="Case insensitive."),
    wire=Wire(ResourceGroup),
    operations=Operations(
        "ResourceGroups", "Resource Group", tag="Workspaces", verbs=frozenset({Verb.GET, Verb.PUT, Verb.DELETE})
    ),
)
"""ARM's resource groups, as far as batch clients use them: a location and tags, and the workspaces in them."""
WORKSPACES = ResourceType(
    collection="workspaces",
    name_parameter="workspaceName",
    parent=RESOURCE_GROUPS,
    operations=Operations(
        "Workspaces",
        "Workspace",
        tag="Workspaces",
        verbs=frozenset(Verb) - {Verb.PATCH},
        renamed={Verb.LIST: "ListByResourceGroup"},
    ),
    wire=Wire(Workspace, page=WorkspaceList),
    names=Names(pattern=WORKSPACE_PATTERN, description="Azure Machine Learning Workspace Name"),
    namespace=PROVIDER,
    size_parameter="count",
    ordered=False,
)
"""A workspace: every other type lives in one."""
WORKSPACE_PATH = WORKSPACES.item_path
