"""Asset references as users write them: full ARM ids, ``azureml:name:version`` and ``azureml:name@latest``."""

from __future__ import annotations

import re

from batchpoint.arm.errors import ArmError, bad_request
from batchpoint.arm.ids import WORKSPACE_TYPE, ArmPath
from batchpoint.store import Store
from batchpoint.store.entities import Resource, SortField, SortOrder

_ARM_VERSION = re.compile(
    r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.MachineLearningServices"
    r"/workspaces/[^/]+/(?P<collection>[^/]+)/(?P<name>[^/]+)/versions/(?P<version>[^/]+)$",
    re.IGNORECASE,
)
_SHORT = re.compile(r"^azureml:(?P<name>[^:@/]+)(?::(?P<version>[^:@/]+)|@(?P<label>latest))$", re.IGNORECASE)
REGISTRY_PREFIX = "azureml://registries/"
ARM_ID_PREFIX = "azureml:"
"""Component specs name their code and environment as ``azureml:`` followed by an ARM id."""


def is_registry_reference(reference: str) -> bool:
    return reference.lower().startswith(REGISTRY_PREFIX)


def names_a_version(reference: str) -> bool:
    """Whether a reference names an asset version (an ARM id or `azureml:name:version|@latest`), not a location."""
    reference = reference.strip()
    return bool(_ARM_VERSION.match(reference.removeprefix(ARM_ID_PREFIX)) or _SHORT.match(reference))


def resolve_version(store: Store, workspace_id: str, collection: str, reference: str, what: str) -> str:
    """The ARM id of the asset version a reference names, which must exist in this workspace."""
    version_id = _version_id(store, workspace_id, collection, reference.strip(), what)
    if store.get_body_json(version_id) is None:
        raise _not_found(reference, what)
    return version_id


def version_id_of(store: Store, workspace_id: str, collection: str, reference: str) -> str:
    """The ARM id a short reference (``azureml:name:version``, ``azureml:name@latest``, ``azureml:`` and an ARM id)
    names in this workspace, or ``reference`` as it is when it is an ARM id already or names nothing found here (its
    checks are left to `resolve_version`)."""
    if reference.lower().startswith("/subscriptions/"):
        return reference
    try:
        return _version_id(store, workspace_id, collection, reference.strip(), collection)
    except ArmError:
        return reference


def load_version(store: Store, workspace_id: str, collection: str, reference: str, what: str) -> Resource:
    """The asset version a reference names, which must exist in this workspace (one read: `resolve_version`
    then `store.get` would read it twice)."""
    version = store.get(_version_id(store, workspace_id, collection, reference.strip(), what))
    if version is None:
        raise _not_found(reference, what)
    return version


def _not_found(reference: str, what: str) -> ArmError:
    return ArmError(400, "UserError", f"The {what} '{reference}' was not found in this workspace.")


def _version_id(store: Store, workspace_id: str, collection: str, reference: str, what: str) -> str:
    arm = _ARM_VERSION.match(reference.removeprefix(ARM_ID_PREFIX))
    if arm:
        if ArmPath.parse(arm[0]).workspace_id.lower() != workspace_id.lower():
            raise bad_request(f"The {what} '{reference}' belongs to another workspace.", "UserError")
        if arm["collection"].lower() != collection.lower():
            raise bad_request(f"'{reference}' is not a {what} reference.", "UserError")
        return f"{workspace_id}/{collection}/{arm['name']}/versions/{arm['version']}"
    short = _SHORT.match(reference)
    if short:
        container = f"{workspace_id}/{collection}/{short['name']}"
        if short["version"]:
            return f"{container}/versions/{short['version']}"
        return _latest_version_id(store, container, reference, what)
    if is_registry_reference(reference):
        raise bad_request(
            f"The {what} '{reference}' lives in an Azure ML registry, which batchpoint cannot reach; "
            "register it in this workspace instead.",
            "UserError",
        )
    raise bad_request(
        f"The {what} reference '{reference}' is not understood: use an ARM id, 'azureml:name:version' "
        "or 'azureml:name@latest'.",
        "UserError",
    )


def _latest_version_id(store: Store, container_id: str, reference: str, what: str) -> str:
    newest = store.list_children(
        container_id, _versions_type(container_id), SortOrder(SortField.CREATED, descending=True), None, 1
    )
    if not newest:
        raise ArmError(400, "UserError", f"The {what} '{reference}' has no versions in this workspace.")
    return newest[0].id


def _versions_type(container_id: str) -> str:
    collection = container_id.rstrip("/").split("/")[-2]
    return f"{WORKSPACE_TYPE}/{collection}/versions"


def load_model(store: Store, workspace_id: str, model_id: str | None) -> Resource | None:
    """The model version a deployment names (`Scoring.model_id`), or None when it names none."""
    return load_version(store, workspace_id, "models", model_id, "model") if model_id else None
