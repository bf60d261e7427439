"""Versioned workspace assets (models, codes, environments, data, components): containers and versions.

This is the registry the deployments point at. Uploads, hash lookups and datastores build on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from batchpoint.arm.context import RequestContext
from batchpoint.arm.errors import ArmError, bad_request
from batchpoint.arm.ids import ArmPath
from batchpoint.arm.registry import ResourceType
from batchpoint.arm.resources import OnResources, Resources, Upserted, check_tags, modify, new_version, save
from batchpoint.ml.assets.resource_types import ASSET_KINDS
from batchpoint.store.entities import Resource, parent_of

DEFAULT_VERSION = "azureml_default"
VERSION_DEFAULTS: dict[str, Any] = {"isAnonymous": False, "isArchived": False, "tags": {}, "properties": {}}
MUTABLE_FIELDS = frozenset({"description", "tags", "isArchived", "stage", "provisioningState"})
"""What Azure lets a registered version change; everything else is its definition, fixed once registered."""
CONTAINER_READ_ONLY = frozenset({"latestVersion", "nextVersion", "provisioningState"})
"""A container's properties that the server sets (readOnly in the spec): what a client sends for them is ignored,
as Azure does."""
KIND_DEFAULTS: dict[str, dict[str, Any]] = {
    "models": {"flavors": {}, "modelType": "custom_model"},
    "data": {"dataType": "uri_folder"},
}


def _number(version: Any) -> int | None:
    """A version's number; None for a version that is no number (``v2``, or what a container stored when clients
    could still set its ``nextVersion``)."""
    return int(version) if isinstance(version, str) and version.isascii() and version.isdecimal() else None


def _name_component_spec(spec: dict[str, Any], version_id: str) -> None:
    """azure-ai-ml reads a component's name and version from its spec, and leaves the version out when the
    server picks it: fill both in from the URL, as Azure does."""
    container_id, _, version = version_id.rpartition("/versions/")
    spec.setdefault("name", container_id.rsplit("/", 1)[-1])
    spec["version"] = str(spec.get("version") or version)


def _with_defaults(collection: str, properties: dict[str, Any]) -> dict[str, Any]:
    """A version's properties with the defaults where they are absent or null (a null is absent on the wire; an
    earlier server stored some nulls as sent)."""
    given = {name: value for name, value in properties.items() if value is not None}
    return {**VERSION_DEFAULTS, **KIND_DEFAULTS.get(collection, {}), **given}


def _check_same_definition(collection: str, existing: Resource, properties: dict[str, Any]) -> None:
    """Azure refuses to change a registered version (azure-ai-ml relies on that 409 to move on to the next
    version); registering the same definition again only updates the mutable fields. What is stored is compared as
    it would be written now: a version an earlier server stored with nulls is the same definition sent again."""
    before = _with_defaults(collection, existing.body["properties"])
    changed = sorted(
        name
        for name in (before.keys() | properties.keys()) - MUTABLE_FIELDS
        if before.get(name) != properties.get(name)
    )
    if changed:
        name = parent_of(existing.id).rsplit("/", 1)[-1]
        raise ArmError(
            409,
            "UserError",
            f"{ASSET_KINDS[collection]} {name} with version {existing.name} is already registered and cannot be "
            f"changed (it differs in: {', '.join(changed)}). Register the new definition as another version; "
            "create_or_update without a version picks the next one.",
        )


@dataclass
class AssetContainers(OnResources):
    """The containers of one asset collection: a name, its latest and next version."""

    resources: Resources
    resource_type: ResourceType

    def put(self, ctx: RequestContext, container_id: str, body: dict[str, Any]) -> Upserted:
        self.resources.require(parent_of(container_id))
        existing = self.store.get(container_id)
        requested = {
            name: value for name, value in (body.get("properties") or {}).items() if name not in CONTAINER_READ_ONLY
        }
        properties = {**(existing.body["properties"] if existing else {}), **requested}
        properties.setdefault("isArchived", False)
        properties["provisioningState"] = "Succeeded"
        resource = new_version(
            ctx,
            existing.id if existing else container_id,
            self.resource_type.type,
            {"properties": properties},
            existing,
        )
        save(self.store, resource, existing)
        return Upserted(resource, created=existing is None)

    def delete(self, ctx: RequestContext, resource_id: str) -> None:
        self.resources.delete(resource_id)

    def select(self, parent_id: str, list_view_type: str | None = None) -> list[Resource] | None:
        """``listViewType`` is taken and not applied: every container is listed (DEVIATIONS.md)."""
        return None


@dataclass
class AssetVersions(OnResources):
    """The versions of one asset collection: each registered once, then fixed but for its mutable fields."""

    resources: Resources
    containers: AssetContainers
    resource_type: ResourceType

    @property
    def collection(self) -> str:
        return self.containers.resource_type.collection

    def put(self, ctx: RequestContext, version_id: str, body: dict[str, Any]) -> Upserted:
        requested = body.get("properties")
        if not isinstance(requested, dict):
            raise bad_request("The 'properties' object is required.", "InvalidRequestContent")
        collection = self.collection
        container_id = parent_of(version_id)
        container = self.store.get(container_id) or self.containers.put(ctx, container_id, {}).resource
        existing = self.store.get(version_id)
        properties = _with_defaults(collection, requested)
        properties["tags"] = check_tags(properties.get("tags"))
        if collection == "components" and isinstance(properties.get("componentSpec"), dict):
            _name_component_spec(properties["componentSpec"], version_id)
        properties["provisioningState"] = "Succeeded"
        if existing is not None:
            _check_same_definition(collection, existing, properties)
        resource = new_version(
            ctx, existing.id if existing else version_id, self.resource_type.type, {"properties": properties}, existing
        )
        save(self.store, resource, existing)
        if existing is None:
            self._record_latest(container, resource.name)
        return Upserted(resource, created=existing is None)

    def get_json(self, version_id: str) -> str:
        """A version's JSON; ``azureml_default`` names the latest version (``components.get(name)`` asks for it)."""
        container_id, _, version = version_id.rpartition("/versions/")
        if version.lower() == DEFAULT_VERSION:
            container = self.resources.get(container_id)
            latest = container.body["properties"].get("latestVersion")
            version_id = f"{container_id}/versions/{latest}" if latest else version_id
        return self.resources.get_json(version_id)

    def _record_latest(self, container: Resource, version: str) -> None:
        """Containers tell clients their latest and next version (``azureml:name@latest`` reads them)."""

        def record(current: Resource) -> None:
            properties = current.body["properties"]
            properties["latestVersion"] = version
            number = _number(version)
            if number is not None and number + 1 > (_number(properties.get("nextVersion")) or 0):
                properties["nextVersion"] = str(number + 1)

        modify(self.store, container.id, record)

    def select(
        self,
        parent_id: str,
        list_view_type: str | None = None,
        hash: str | None = None,  # noqa: A002 - the query parameter's name
        hash_version: str | None = None,
    ) -> list[Resource] | None:
        """With ``hash``: the code versions anywhere in the workspace with this content hash (``azure-ai-ml``
        looks a folder up by hash under a random name, so that an unchanged folder is not uploaded twice)."""
        if hash is None:
            return None
        workspace_id = ArmPath.parse(parent_id).workspace_id
        return [
            resource
            for resource in self.store.code_versions_with_hash(workspace_id, hash)
            if str((resource.body["properties"].get("properties") or {}).get("hash_version")) == (hash_version or "")
        ]

    def delete(self, ctx: RequestContext, resource_id: str) -> None:
        self.resources.delete(resource_id)
