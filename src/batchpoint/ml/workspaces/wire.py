"""Resource groups and workspaces: only what the batch clients read is modelled; other keys pass through."""

from __future__ import annotations

from typing import Any

from batchpoint.arm.schemas import ArmEnvelope, ManagedServiceIdentity, Sku
from batchpoint.arm.wire import OpenModel, ReadOnly


class ResourceGroup(ArmEnvelope):
    properties: dict[str, Any] | None = None


class WorkspaceProperties(OpenModel):
    friendlyName: str | None = None
    description: str | None = None
    workspaceId: str | None = ReadOnly()
    discoveryUrl: str | None = ReadOnly()
    provisioningState: str | None = ReadOnly()


class Workspace(ArmEnvelope):
    kind: str | None = None
    sku: Sku | None = None
    identity: ManagedServiceIdentity | None = None
    properties: WorkspaceProperties | None = None


class WorkspaceList(OpenModel):
    value: list[Workspace]
    nextLink: str | None = None
