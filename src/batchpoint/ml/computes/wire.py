"""Compute resources (``workspaces/{w}/computes``, Microsoft.MachineLearningServices 2025-12-01).

The wire shape is the swagger's ``ComputeResource``; batchpoint runs ``AmlCompute`` clusters, and takes every
other compute type's body only to refuse it with a message that says so.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag

from batchpoint.arm.schemas import ManagedServiceIdentity, Sku, SystemData
from batchpoint.arm.wire import (
    CaseInsensitive,
    CreateOnly,
    Int32,
    OpenModel,
    ReadOnly,
    StringMap,
    WireModel,
    canonical_enum,
)


class ComputeType(str, Enum):
    AKS = "AKS"
    KUBERNETES = "Kubernetes"
    AML_COMPUTE = "AmlCompute"
    COMPUTE_INSTANCE = "ComputeInstance"
    DATA_FACTORY = "DataFactory"
    VIRTUAL_MACHINE = "VirtualMachine"
    HDINSIGHT = "HDInsight"
    DATABRICKS = "Databricks"
    DATA_LAKE_ANALYTICS = "DataLakeAnalytics"
    SYNAPSE_SPARK = "SynapseSpark"


OtherComputeType = Enum(  # type: ignore[misc]
    "OtherComputeType",
    {member.name: member.value for member in ComputeType if member is not ComputeType.AML_COMPUTE},
    type=str,
)
"""The compute types batchpoint does not run (documented apart, so a body matches exactly one schema)."""


class OsType(str, Enum):
    LINUX = "Linux"
    WINDOWS = "Windows"


class VmPriority(str, Enum):
    DEDICATED = "Dedicated"
    LOW_PRIORITY = "LowPriority"


class RemoteLoginPortPublicAccess(str, Enum):
    ENABLED = "Enabled"
    DISABLED = "Disabled"
    NOT_SPECIFIED = "NotSpecified"


class ScaleSettings(WireModel):
    maxNodeCount: Int32
    minNodeCount: Int32 | None = 0
    nodeIdleTimeBeforeScaleDown: str | None = Field(default=None, description="ISO-8601 duration")


class UserAccountCredentials(WireModel):
    adminUserName: str
    adminUserSshPublicKey: str | None = None
    adminUserPassword: str | None = Field(default=None, description="Accepted, never returned.")


class ResourceId(WireModel):
    id: str


class AmlComputeProperties(WireModel):
    osType: CaseInsensitive[OsType] | None = CreateOnly(default=None)
    vmSize: str | None = CreateOnly(default=None)
    vmPriority: CaseInsensitive[VmPriority] | None = CreateOnly(default=None)
    virtualMachineImage: dict[str, Any] | None = None
    isolatedNetwork: bool | None = None
    scaleSettings: ScaleSettings | None = None
    userAccountCredentials: UserAccountCredentials | None = None
    subnet: ResourceId | None = None
    remoteLoginPortPublicAccess: CaseInsensitive[RemoteLoginPortPublicAccess] | None = None
    enableNodePublicIp: bool | None = None
    propertyBag: Any = None
    allocationState: str | None = ReadOnly()
    allocationStateTransitionTime: str | None = ReadOnly()
    errors: list[dict[str, Any]] | None = ReadOnly()
    currentNodeCount: int | None = ReadOnly()
    targetNodeCount: int | None = ReadOnly()
    nodeStateCounts: dict[str, int] | None = ReadOnly()


class ComputeFields(WireModel):
    """What every compute type has (the swagger's ``Compute``)."""

    computeLocation: str | None = None
    description: str | None = None
    resourceId: str | None = None
    disableLocalAuth: bool | None = None
    provisioningState: str | None = ReadOnly()
    createdOn: str | None = ReadOnly()
    modifiedOn: str | None = ReadOnly()
    provisioningErrors: list[dict[str, Any]] | None = ReadOnly()
    isAttachedCompute: bool | None = ReadOnly()


class AmlCompute(ComputeFields):
    computeType: Annotated[Literal["AmlCompute"], canonical_enum(ComputeType)]
    properties: AmlComputeProperties | None = None


class OtherCompute(OpenModel):
    """Any other compute type: accepted by the schema so the service can say that batchpoint does not run it."""

    computeType: CaseInsensitive[OtherComputeType]


def _compute_kind(value: Any) -> str:
    raw = value.get("computeType") if isinstance(value, dict) else getattr(value, "computeType", None)
    return "AmlCompute" if isinstance(raw, str) and raw.lower() == "amlcompute" else "Other"


Compute = Annotated[
    Annotated[AmlCompute, Tag("AmlCompute")] | Annotated[OtherCompute, Tag("Other")],
    Discriminator(_compute_kind),
]


class ComputeResource(WireModel):
    id: str | None = ReadOnly()
    name: str | None = ReadOnly()
    type: str | None = ReadOnly()
    systemData: SystemData | None = ReadOnly()
    location: str | None = CreateOnly(default=None, description="Defaults to the workspace's location.")
    tags: StringMap | None = None
    sku: Sku | None = None
    identity: ManagedServiceIdentity | None = None
    properties: Compute


class ComputeResourceList(WireModel):
    value: list[ComputeResource]
    nextLink: str | None = None


class EstimatedVMPrice(WireModel):
    retailPrice: float
    osType: str
    vmTier: str


class EstimatedVMPrices(WireModel):
    billingCurrency: str
    unitOfMeasure: str
    values: list[EstimatedVMPrice]


class VirtualMachineSize(WireModel):
    """One VM size of ``locations/{location}/vmSizes`` (``ml_client.compute.list_sizes()``)."""

    name: str | None = ReadOnly()
    family: str | None = ReadOnly()
    vCPUs: Int32 | None = ReadOnly()
    gpus: Int32 | None = ReadOnly(description="The GPUs of a node of this size.")
    osVhdSizeMB: Int32 | None = ReadOnly()
    maxResourceVolumeMB: Int32 | None = ReadOnly()
    memoryGB: float | None = ReadOnly()
    lowPriorityCapable: bool | None = ReadOnly()
    premiumIO: bool | None = ReadOnly()
    estimatedVMPrices: EstimatedVMPrices | None = Field(default=None, description="Not given: no prices are known.")
    supportedComputeTypes: list[str] | None = None


class VirtualMachineSizeListResult(WireModel):
    value: list[VirtualMachineSize] | None = None
