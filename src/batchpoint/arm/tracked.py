"""Tracked ARM resources with long-running PUT, PATCH and DELETE (batch endpoints and deployments).

The generic flow lives here; what differs between resource types (how properties are built, what
provisioning checks) is a small ``ResourceKind`` each type supplies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from batchpoint.arm.context import RequestContext
from batchpoint.arm.errors import bad_request
from batchpoint.arm.identity import resolve_identity
from batchpoint.arm.mutability import CreateOnlyFields
from batchpoint.arm.operations import OperationRunner, Progress
from batchpoint.arm.resources import OnResources, Resources, check_tags, modify, new_version, same_location, save
from batchpoint.store.entities import Operation, OperationKind, Resource, parent_of

SUCCEEDED = "Succeeded"
SERVER_FIELDS = ("id", "name", "type", "systemData")
FAILED = "Failed"


class ResourceKind(Protocol):
    def build_properties(
        self, resource_id: str, requested: dict[str, Any], existing: Resource | None
    ) -> dict[str, Any]:
        """Validated properties with defaults filled in and create-only rules enforced."""

    def build_secrets(self, requested: dict[str, Any], existing: Resource | None) -> dict[str, Any]: ...

    def as_written_now(self, resource_id: str, stored: dict[str, Any]) -> dict[str, Any]:
        """The stored properties spelled as `build_properties` writes them now, so what an earlier version of the
        server stored compares as what it names (a deployment's short ``codeId``); ``stored`` itself is not
        changed."""

    def check_parent(self, parent: Resource) -> None:
        """Refuse writes under a parent that cannot take them (for example one being deleted)."""

    def provision(self, resource: Resource, progress: Progress) -> None:
        """Check what the resource points at and prepare what it needs; raise ArmError to fail provisioning."""

    def apply_patch(self, body: dict[str, Any], patch: dict[str, Any]) -> None: ...


@dataclass
class Accepted:
    resource: Resource
    operation: Operation | None
    created: bool = False


@dataclass
class TrackedResources(OnResources):
    resources: Resources
    runner: OperationRunner
    type: str
    """The ARM type of the resources written."""
    kind: ResourceKind
    create_only: CreateOnlyFields = CreateOnlyFields(())
    """Its properties' create-only fields (``arm/mutability.py``)."""

    def __post_init__(self) -> None:
        self.runner.register(OperationKind.PROVISION, self.type, self._provision)
        self.runner.register(OperationKind.DELETE, self.type, self._delete)

    def put(self, ctx: RequestContext, resource_id: str, request: dict[str, Any]) -> Accepted:
        """Create or replace; a request without a location takes its parent's (ARM's default for child types)."""
        if not request.get("location"):
            request = {**request, "location": self.resources.get(parent_of(resource_id)).body["location"]}
        try:
            with self.runner.claim(resource_id, OperationKind.PROVISION, request["location"]) as operation:
                resource, created = self._write(ctx, resource_id, request)
        except _Unchanged as unchanged:
            return Accepted(unchanged.resource, None)
        return Accepted(resource, operation, created)

    def _write(self, ctx: RequestContext, resource_id: str, request: dict[str, Any]) -> tuple[Resource, bool]:
        """Store what a PUT asks for (read under the operation's claim); raise _Unchanged if it asks for what is
        already there and done."""
        self.kind.check_parent(self.resources.get(parent_of(resource_id)))
        existing = self.store.get(resource_id)
        document = self._envelope(request, existing)
        before = self.kind.as_written_now(resource_id, existing.body["properties"]) if existing else {}
        requested = self.create_only.keep(request["properties"], before)
        document["properties"] = self.kind.build_properties(resource_id, requested, existing)
        if existing:
            self.create_only.check(before, document["properties"])
        if existing and _unchanged({**existing.body, "properties": before}, document):
            raise _Unchanged(existing)
        document["properties"]["provisioningState"] = "Updating" if existing else "Creating"
        resource = new_version(ctx, existing.id if existing else resource_id, self.type, document, existing)
        resource.private = self.kind.build_secrets(request["properties"], existing)
        save(self.store, resource, existing)
        return resource, existing is None

    def patch(self, ctx: RequestContext, resource_id: str, patch: dict[str, Any]) -> Accepted:
        location = self.resources.get(resource_id).body["location"]
        with self.runner.claim(resource_id, OperationKind.UPDATE, location) as operation:
            existing = self.resources.get(resource_id)
            document = {key: value for key, value in existing.body.items() if key != "systemData"}
            if "tags" in patch and patch["tags"] is not None:
                document["tags"] = check_tags(patch["tags"])
            self.kind.apply_patch(document, patch)
            resource = new_version(ctx, existing.id, self.type, document, existing)
            resource.private = existing.private
            self.store.update(resource)
        return Accepted(resource, operation)

    def delete(self, ctx: RequestContext, resource_id: str) -> Accepted:
        location = self.resources.get(resource_id).body["location"]
        with self.runner.claim(resource_id, OperationKind.DELETE, location) as operation:
            existing = self.resources.get(resource_id)
            existing.body["properties"]["provisioningState"] = "Deleting"
            self.store.update(existing)
        return Accepted(existing, operation)

    def _envelope(self, request: dict[str, Any], existing: Resource | None) -> dict[str, Any]:
        before = existing.body if existing else {}
        location = request["location"]
        if existing and not same_location(location, before["location"]):
            raise bad_request(
                f"The location of an existing resource cannot change (it is '{before['location']}').",
                "InvalidResourceLocation",
            )
        document: dict[str, Any] = {
            "location": before.get("location", location),
            "tags": check_tags(request.get("tags")),
        }
        identity = resolve_identity(request.get("identity"), before.get("identity"))
        for key, value in (("identity", identity), ("kind", request.get("kind")), ("sku", request.get("sku"))):
            if value is not None:
                document[key] = value
        return document

    def _provision(self, resource: Resource | None, progress: Progress) -> None:
        if resource is None:
            return
        try:
            self.kind.provision(resource, progress)
        except Exception as error:  # whatever it was, the resource fails with its operation (not left Creating)
            if not self.runner.runs_again(error):
                self._set_state(resource, FAILED)
            raise
        self._set_state(resource, SUCCEEDED)

    def _delete(self, resource: Resource | None, progress: Progress) -> None:
        if resource is not None:
            self.store.delete_tree(resource.id)

    def _set_state(self, resource: Resource, state: str) -> None:
        modify(self.store, resource.id, lambda current: current.body["properties"].update(provisioningState=state))


class _Unchanged(Exception):
    """A PUT asked for what is already there and done: nothing to claim or write."""

    def __init__(self, resource: Resource) -> None:
        super().__init__(resource.id)
        self.resource = resource


def _unchanged(before: dict[str, Any], after: dict[str, Any]) -> bool:
    """A PUT that asks for what is already there and done is answered 200 without a new operation."""
    properties = dict(before.get("properties", {}))
    if properties.pop("provisioningState", None) != SUCCEEDED:
        return False
    comparable = {key: value for key, value in before.items() if key not in SERVER_FIELDS}
    return {**comparable, "properties": properties} == after
