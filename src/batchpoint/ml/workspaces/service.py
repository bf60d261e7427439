"""Resource groups and workspaces: the minimal ARM parents batch endpoints hang from."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from batchpoint.arm.context import BASE_URL, RequestContext
from batchpoint.arm.errors import bad_request
from batchpoint.arm.identity import resolve_identity
from batchpoint.arm.ids import RESOURCE_GROUP_TYPE, WORKSPACE_TYPE, ArmPath
from batchpoint.arm.resources import OnResources, Resources, Upserted, check_tags, new_version, same_location, save
from batchpoint.ml.computes.rules import ensure_builtin_compute
from batchpoint.ml.datastores.service import Datastores
from batchpoint.store import Store
from batchpoint.store.entities import Resource

DISCOVERY_URL = f"{BASE_URL}/discovery"


def discovery_document(base_url: str) -> dict[str, str]:
    """What ``azure-ai-ml`` reads from a workspace's discovery URL: every service lives on this server."""
    return dict.fromkeys(
        ("api", "catalog", "experimentation", "gallery", "history", "hyperdrive", "labeling"), base_url
    ) | {"modelmanagement": base_url, "pipelines": base_url}


@dataclass
class ResourceGroups(OnResources):
    """Resource groups: a location and tags, nothing more (they hold workspaces)."""

    resources: Resources

    def put(self, ctx: RequestContext, group_id: str, body: dict[str, Any]) -> Upserted:
        existing = self.store.get(group_id)
        document = {
            "location": _location(body, existing),
            "tags": check_tags(body.get("tags")),
            "properties": {"provisioningState": "Succeeded"},
        }
        return _save(self.store, ctx, group_id, RESOURCE_GROUP_TYPE, document, existing)

    def delete(self, ctx: RequestContext, resource_id: str) -> None:
        """Everything in the group goes with it."""
        self.resources.delete(resource_id)


@dataclass
class Workspaces(OnResources):
    """Workspaces: each gets its storage (datastores) and the built-in compute when it is made."""

    resources: Resources
    datastores: Datastores

    def put(self, ctx: RequestContext, workspace_id: str, body: dict[str, Any]) -> Upserted:
        self.resources.require(ArmPath.parse(workspace_id).resource_group_id)
        existing = self.store.get(workspace_id)
        before = existing.body if existing else {}
        properties = {**before.get("properties", {}), **(body.get("properties") or {})}
        properties.update(
            workspaceId=before.get("properties", {}).get("workspaceId") or str(uuid.uuid4()),
            discoveryUrl=DISCOVERY_URL,
            provisioningState="Succeeded",
        )
        properties.setdefault("friendlyName", workspace_id.rsplit("/", 1)[-1])
        document = {
            "location": _location(body, existing),
            "tags": check_tags(body.get("tags")),
            "kind": body.get("kind") or before.get("kind") or "Default",
            "sku": body.get("sku") or before.get("sku") or {"name": "Basic", "tier": "Basic"},
            "properties": properties,
        }
        identity = resolve_identity(body.get("identity"), before.get("identity"))
        if identity:
            document["identity"] = identity
        upserted = _save(self.store, ctx, workspace_id, WORKSPACE_TYPE, document, existing)
        self.datastores.ensure_workspace_storage(ctx, upserted.resource)
        ensure_builtin_compute(self.store, ctx, upserted.resource)
        return upserted

    def delete(self, ctx: RequestContext, resource_id: str) -> None:
        self.resources.delete(resource_id)


def _save(
    store: Store, ctx: RequestContext, resource_id: str, type_: str, document: dict[str, Any], existing: Resource | None
) -> Upserted:
    resource = new_version(ctx, existing.id if existing else resource_id, type_, document, existing)
    save(store, resource, existing)
    return Upserted(resource, created=existing is None)


def _location(body: dict[str, Any], existing: Resource | None) -> str:
    location = body.get("location")
    if not isinstance(location, str) or not location.strip():
        raise bad_request("The 'location' property is required.", "InvalidRequestContent")
    if existing and not same_location(location, existing.body["location"]):
        raise bad_request(
            f"The location of an existing resource cannot change (it is '{existing.body['location']}').",
            "InvalidResourceLocation",
        )
    return location
