"""ARM ids are read by position: a name is a name wherever it sits, even one spelled like a key."""

from __future__ import annotations

import pytest

from batchpoint.access.permissions import arm_action
from batchpoint.arm.ids import (
    RESOURCE_GROUP_TYPE,
    WORKSPACE_TYPE,
    ArmPath,
    MalformedId,
    ancestors,
    relative_type_and_name,
    type_of,
    workspace_id,
)
from batchpoint.ml.endpoints.resource_types import BATCH_DEPLOYMENT_TYPE
from batchpoint.store.entities import parent_of

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
AWKWARD = ("workspaces", "providers", "resourceGroups", "subscriptions", "Microsoft.MachineLearningServices")


@pytest.mark.parametrize("group", AWKWARD)
@pytest.mark.parametrize("workspace", ["ws", "workspaces", "providers"])
def test_names_that_look_like_keys_are_names(group: str, workspace: str) -> None:
    deployment = f"{workspace_id(SUBSCRIPTION, group, workspace)}/batchEndpoints/providers/deployments/workspaces"

    path = ArmPath.parse(deployment)

    assert (path.subscription, path.resource_group, path.workspace) == (SUBSCRIPTION, group, workspace)
    assert path.workspace_id == workspace_id(SUBSCRIPTION, group, workspace)
    assert type_of(deployment) == BATCH_DEPLOYMENT_TYPE
    assert type_of(path.workspace_id) == WORKSPACE_TYPE
    assert type_of(path.resource_group_id) == RESOURCE_GROUP_TYPE
    assert relative_type_and_name(deployment) == (
        f"Microsoft.MachineLearningServices/workspaces/{workspace}/batchEndpoints/providers/deployments/workspaces"
    )
    assert ancestors(deployment) == [
        path.resource_group_id,
        path.workspace_id,
        f"{path.workspace_id}/batchEndpoints/providers",
        deployment,
    ]
    assert parent_of(path.workspace_id) == path.resource_group_id
    assert parent_of(deployment) == f"{path.workspace_id}/batchEndpoints/providers"


def test_an_extension_resource_takes_the_type_of_its_own_namespace() -> None:
    workspace = workspace_id(SUBSCRIPTION, "providers", "ws")
    assignment = f"{workspace}/providers/Microsoft.Authorization/roleAssignments/providers"

    assert type_of(assignment) == "Microsoft.Authorization/roleAssignments"
    assert ancestors(assignment)[-2:] == [workspace, assignment]
    assert arm_action("DELETE", assignment) == "Microsoft.Authorization/roleAssignments/delete"


@pytest.mark.parametrize(
    ("method", "path", "action"),
    [
        (
            "GET",
            f"/subscriptions/{SUBSCRIPTION}/resourceGroups/providers",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
        ),
        (
            "GET",
            f"{workspace_id(SUBSCRIPTION, 'providers', 'providers')}/batchEndpoints",
            "Microsoft.MachineLearningServices/workspaces/batchEndpoints/read",
        ),
        (
            "POST",
            f"{workspace_id(SUBSCRIPTION, 'workspaces', 'providers')}/batchEndpoints/providers/listkeys",
            "Microsoft.MachineLearningServices/workspaces/batchEndpoints/listkeys/action",
        ),
    ],
)
def test_permissions_read_the_action_by_position(method: str, path: str, action: str) -> None:
    assert arm_action(method, path) == action


@pytest.mark.parametrize(
    "malformed",
    [
        "",
        "/subscriptions",
        "/subscriptions/s/resourceGroups",
        "/subscriptions/s/workspaces/w",
        "/tenants/t/resourceGroups/g",
    ],
)
def test_what_is_not_an_id_is_refused(malformed: str) -> None:
    with pytest.raises(MalformedId):
        ArmPath.parse(malformed)
