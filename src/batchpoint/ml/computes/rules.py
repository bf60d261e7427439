"""Compute clusters (``AmlCompute``): their properties, the built-in compute every workspace has, and the
references deployments make to them.

A compute is where a deployment's jobs run. ``scaleSettings.maxNodeCount`` caps the nodes its jobs use at once
(further jobs queue); ``vmSize`` and the other Azure fields are kept as given and do not change how a job runs.
"""

from __future__ import annotations

from typing import Any

from batchpoint.arm.context import RequestContext
from batchpoint.arm.errors import ArmError, bad_request
from batchpoint.arm.ids import ArmPath, child_id
from batchpoint.arm.operations import Progress, iso
from batchpoint.arm.resources import check_duration, new_version
from batchpoint.ml.computes.resource_types import COMPUTE_TYPE
from batchpoint.ml.computes.sizes import gpus_of, is_size_name
from batchpoint.store import AlreadyExists, Store
from batchpoint.store.entities import Resource, utcnow

BUILTIN_COMPUTE = "local-workers"
"""The compute of deployments that name none: the server's own worker processes, as before computes existed."""
BUILTIN_MAX_NODES = 4
"""What the built-in compute reports as its size: the jobs one server runs at once."""
DEFAULT_VM_SIZE = "STANDARD_DS3_V2"
COMPUTE_NAME_RULE = "2 to 16 letters, digits or hyphens, starting with a letter and not ending with a hyphen"
SERVER_SET = ("provisioningState", "createdOn", "modifiedOn")
IDLE_NODE_COUNTS = {
    "idleNodeCount": 0,
    "runningNodeCount": 0,
    "preparingNodeCount": 0,
    "unusableNodeCount": 0,
    "leavingNodeCount": 0,
    "preemptedNodeCount": 0,
}


def has_gpus(compute: Resource) -> bool:
    """A node of the compute's size has GPUs (`sizes.py`): its jobs' workers on a Ray cluster each ask Ray for one."""
    return gpus_of(compute.body["properties"]["properties"].get("vmSize")) > 0


def compute_name_is_valid(name: str) -> bool:
    return (
        2 <= len(name) <= 16
        and name[0].isascii()
        and name[0].isalpha()
        and name[-1] != "-"
        and all(char.isascii() and (char.isalnum() or char == "-") for char in name)
    )


def compute_id(workspace_id: str, name: str) -> str:
    return child_id(workspace_id, "computes", name)


def is_builtin(resource_id: str) -> bool:
    return resource_id.rsplit("/", 1)[-1].lower() == BUILTIN_COMPUTE


def refuse_builtin_change(resource_id: str) -> None:
    if is_builtin(resource_id):
        raise bad_request(
            f"The compute '{BUILTIN_COMPUTE}' is built in (the server's own worker processes): it cannot be "
            "changed or deleted. Create a compute of your own to size it.",
            "UserError",
        )


def max_nodes(compute: Resource) -> int:
    return compute.body["properties"]["properties"]["scaleSettings"]["maxNodeCount"]


class ComputeKind:
    def build_properties(
        self, resource_id: str, requested: dict[str, Any], existing: Resource | None
    ) -> dict[str, Any]:
        refuse_builtin_change(resource_id)
        name = resource_id.rsplit("/", 1)[-1]
        if not compute_name_is_valid(name):
            raise bad_request(f"The compute name '{name}' is invalid: use {COMPUTE_NAME_RULE}.", "InvalidComputeName")
        if requested["computeType"] != "AmlCompute":
            raise bad_request(
                f"Compute type '{requested['computeType']}' is not supported: batchpoint runs compute clusters "
                "(computeType 'AmlCompute') only.",
                "UserError",
            )
        before = existing.body["properties"] if existing else {}
        properties = _compute_fields(requested)
        properties["properties"] = _cluster_properties(requested.get("properties") or {}, before.get("properties"))
        comparable = {key: value for key, value in before.items() if key not in SERVER_SET}
        now = iso(utcnow())
        unchanged = existing is not None and comparable == properties
        properties["createdOn"] = before.get("createdOn") or now
        properties["modifiedOn"] = before.get("modifiedOn") if unchanged else now
        return properties

    def build_secrets(self, requested: dict[str, Any], existing: Resource | None) -> dict[str, Any]:
        credentials = (requested.get("properties") or {}).get("userAccountCredentials") or {}
        password = credentials.get("adminUserPassword")
        if password:
            return {"adminUserPassword": password}
        return existing.private if existing else {}

    def as_written_now(self, resource_id: str, stored: dict[str, Any]) -> dict[str, Any]:
        """Computes are stored as written now."""
        return stored

    def check_parent(self, parent: Resource) -> None:
        """Workspaces have no state that blocks compute writes."""

    def provision(self, resource: Resource, progress: Progress) -> None:
        """A cluster's nodes are the server's workers or its Ray cluster's: nothing to allocate up front."""

    def apply_patch(self, body: dict[str, Any], patch: dict[str, Any]) -> None:
        """Computes are changed by PUT (as azure-ai-ml's ``begin_update`` does)."""


def _vm_size(requested: str, stored: str | None) -> str:
    """Azure's VM sizes are case-insensitive: a PUT naming the stored size in other letters keeps it as stored. A
    new size must be spelled as Azure spells sizes (one batchpoint does not list is taken: Azure has more)."""
    if stored is not None and stored.casefold() == requested.casefold():
        return stored
    if stored is None and not is_size_name(requested):
        raise bad_request(
            f"The VM size '{requested}' is not a VM size: name one as Azure does (Standard_DS3_v2, "
            "Standard_NC6s_v3, ...); ml_client.compute.list_sizes() lists those batchpoint knows.",
            "UserError",
        )
    return requested


def _compute_fields(requested: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = {"computeType": "AmlCompute", "isAttachedCompute": False}
    for field in ("computeLocation", "description", "resourceId"):
        if requested.get(field) is not None:
            properties[field] = requested[field]
    properties["disableLocalAuth"] = bool(requested.get("disableLocalAuth"))
    return properties


def _cluster_properties(requested: dict[str, Any], stored: dict[str, Any] | None) -> dict[str, Any]:
    scale = requested.get("scaleSettings")
    if not scale:
        raise bad_request("properties.properties.scaleSettings is required for an AmlCompute cluster.", "UserError")
    cluster: dict[str, Any] = {
        "vmSize": _vm_size(requested.get("vmSize") or DEFAULT_VM_SIZE, (stored or {}).get("vmSize")),
        "vmPriority": requested.get("vmPriority") or "Dedicated",
        "osType": requested.get("osType") or "Linux",
        "scaleSettings": _scale_settings(scale),
        "remoteLoginPortPublicAccess": requested.get("remoteLoginPortPublicAccess") or "NotSpecified",
        "enableNodePublicIp": requested.get("enableNodePublicIp") is not False,
        "isolatedNetwork": bool(requested.get("isolatedNetwork")),
    }
    for field in ("subnet", "virtualMachineImage", "propertyBag"):
        if requested.get(field) is not None:
            cluster[field] = requested[field]
    credentials = requested.get("userAccountCredentials")
    if credentials:
        cluster["userAccountCredentials"] = {
            key: value for key, value in credentials.items() if key != "adminUserPassword" and value is not None
        }
    return {**cluster, **_idle_state()}


def _scale_settings(scale: dict[str, Any]) -> dict[str, Any]:
    maximum, minimum = scale["maxNodeCount"], scale.get("minNodeCount") or 0
    if maximum < 1:
        raise bad_request(f"scaleSettings.maxNodeCount must be at least 1, not {maximum}.", "UserError")
    if not 0 <= minimum <= maximum:
        raise bad_request(
            f"scaleSettings.minNodeCount must be from 0 to maxNodeCount ({maximum}), not {minimum}.", "UserError"
        )
    settings: dict[str, Any] = {"maxNodeCount": maximum, "minNodeCount": minimum}
    idle = scale.get("nodeIdleTimeBeforeScaleDown")
    if idle is not None:
        check_duration("scaleSettings.nodeIdleTimeBeforeScaleDown", idle)
        settings["nodeIdleTimeBeforeScaleDown"] = idle
    return settings


def _idle_state() -> dict[str, Any]:
    """The read-only allocation fields: a batchpoint cluster has no nodes of its own to allocate."""
    return {
        "allocationState": "Steady",
        "currentNodeCount": 0,
        "targetNodeCount": 0,
        "nodeStateCounts": dict(IDLE_NODE_COUNTS),
        "errors": None,
    }


def ensure_builtin_compute(store: Store, ctx: RequestContext, workspace: Resource) -> None:
    """Every workspace has the built-in compute; made when the workspace is, or at start for older ones."""
    resource_id = compute_id(workspace.id, BUILTIN_COMPUTE)
    if store.get(resource_id) is not None:
        return
    now = iso(utcnow())
    document = {
        "location": workspace.body["location"],
        "tags": {},
        "properties": {
            "computeType": "AmlCompute",
            "description": "The server's own worker processes: deployments that name no compute run here.",
            "isAttachedCompute": False,
            "disableLocalAuth": False,
            "provisioningState": "Succeeded",
            "createdOn": now,
            "modifiedOn": now,
            "properties": {
                "vmSize": "Local",
                "vmPriority": "Dedicated",
                "osType": "Linux",
                "scaleSettings": {"maxNodeCount": BUILTIN_MAX_NODES, "minNodeCount": 0},
                "remoteLoginPortPublicAccess": "NotSpecified",
                "enableNodePublicIp": False,
                "isolatedNetwork": False,
                **_idle_state(),
            },
        },
    }
    try:
        store.insert(new_version(ctx, resource_id, COMPUTE_TYPE, document, None))
    except AlreadyExists:
        return  # another replica made it first


def resolve_compute(store: Store, workspace_id: str, reference: str | None) -> Resource:
    """The compute a deployment names (a name, ``azureml:name`` or an ARM id in its workspace); the built-in
    compute when it names none. A missing one is an ARM error that names it."""
    if not reference:
        resource_id = compute_id(workspace_id, BUILTIN_COMPUTE)
    else:
        resource_id = _compute_id_of(workspace_id, reference)
    compute = store.get(resource_id)
    if compute is None or compute.body["properties"].get("provisioningState") == "Deleting":
        name = resource_id.rsplit("/", 1)[-1]
        workspace = ArmPath.parse(workspace_id).workspace
        raise ArmError(
            400,
            "UserError",
            f"The compute '{name}' does not exist in workspace '{workspace}'. Create it first "
            f"(ml_client.compute.begin_create_or_update(AmlCompute(name='{name}', ...)) or batchpoint compute "
            f"create), or leave compute out to run on the built-in compute '{BUILTIN_COMPUTE}'.",
        )
    return compute


def _compute_id_of(workspace_id: str, reference: str) -> str:
    """azure-ai-ml turns ``compute="azureml:x"`` into ``.../computes/azureml:x``; both forms name ``x``."""
    value = reference.strip().removeprefix("azureml:")
    if "/" not in value:
        return compute_id(workspace_id, value)
    prefix = workspace_id.lower() + "/computes/"
    if not value.lower().startswith(prefix) or "/" in value[len(prefix) :]:
        raise bad_request(
            f"The compute '{reference}' is not a compute of this deployment's workspace; name one of "
            f"'{workspace_id}/computes'.",
            "UserError",
        )
    return compute_id(workspace_id, value[len(prefix) :].removeprefix("azureml:"))
