"""BatchEndpoint and BatchDeployment resources (Microsoft.MachineLearningServices 2025-12-01)."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag

from batchpoint.arm.schemas import (
    ArmEnvelope,
    ManagedServiceIdentity,
    PartialManagedServiceIdentity,
    Sku,
)
from batchpoint.arm.wire import (
    CaseInsensitive,
    CreateOnly,
    Int32,
    Int64,
    ReadOnly,
    ScalarMap,
    StringMap,
    WireModel,
    canonical_enum,
    enum_canonicalizer,
)

ASSET_ID_PATTERN = "[a-zA-Z0-9_]"


class EndpointAuthMode(str, Enum):
    AML_TOKEN = "AMLToken"
    KEY = "Key"
    AAD_TOKEN = "AADToken"


class EndpointProvisioningState(str, Enum):
    CREATING = "Creating"
    DELETING = "Deleting"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    UPDATING = "Updating"
    CANCELED = "Canceled"


class DeploymentProvisioningState(str, Enum):
    CREATING = "Creating"
    DELETING = "Deleting"
    SCALING = "Scaling"
    UPDATING = "Updating"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELED = "Canceled"


class BatchLoggingLevel(str, Enum):
    INFO = "Info"
    WARNING = "Warning"
    DEBUG = "Debug"


class BatchOutputAction(str, Enum):
    SUMMARY_ONLY = "SummaryOnly"
    APPEND_ROW = "AppendRow"


class ReferenceType(str, Enum):
    ID = "Id"
    DATA_PATH = "DataPath"
    OUTPUT_PATH = "OutputPath"


class BatchDeploymentConfigurationType(str, Enum):
    MODEL = "Model"
    PIPELINE_COMPONENT = "PipelineComponent"


class EndpointAuthKeys(WireModel):
    primaryKey: str | None = CreateOnly(default=None)
    secondaryKey: str | None = CreateOnly(default=None)


class BatchEndpointDefaults(WireModel):
    deploymentName: str | None = None


class BatchEndpointProperties(WireModel):
    authMode: CaseInsensitive[EndpointAuthMode]
    description: str | None = None
    keys: EndpointAuthKeys | None = CreateOnly(
        readable=False, default=None, description="Accepted on create only; never returned (use listkeys)."
    )
    properties: StringMap | None = None
    scoringUri: str | None = ReadOnly()
    swaggerUri: str | None = ReadOnly()
    defaults: BatchEndpointDefaults | None = None
    provisioningState: EndpointProvisioningState | None = ReadOnly()


def _tag_of(enum_type: type[Enum], field: str) -> Any:
    """Discriminator callable that reads the tag case-insensitively, as ARM does for modelAsString enums."""
    canonicalize = enum_canonicalizer(enum_type)

    def read(value: Any) -> Any:
        raw = value.get(field) if isinstance(value, dict) else getattr(value, field, None)
        tag = canonicalize(raw)
        return tag.value if isinstance(tag, Enum) else tag

    return Discriminator(read)


class IdAssetReference(WireModel):
    referenceType: Annotated[Literal["Id"], canonical_enum(ReferenceType)]
    assetId: str = Field(min_length=1, pattern=ASSET_ID_PATTERN)


class DataPathAssetReference(WireModel):
    referenceType: Annotated[Literal["DataPath"], canonical_enum(ReferenceType)]
    datastoreId: str | None = None
    path: str | None = None


class OutputPathAssetReference(WireModel):
    referenceType: Annotated[Literal["OutputPath"], canonical_enum(ReferenceType)]
    jobId: str | None = None
    path: str | None = None


AssetReference = Annotated[
    Annotated[IdAssetReference, Tag("Id")]
    | Annotated[DataPathAssetReference, Tag("DataPath")]
    | Annotated[OutputPathAssetReference, Tag("OutputPath")],
    _tag_of(ReferenceType, "referenceType"),
]


class ModelDeploymentConfiguration(WireModel):
    deploymentConfigurationType: Annotated[Literal["Model"], canonical_enum(BatchDeploymentConfigurationType)]


class BatchPipelineComponentDeploymentConfiguration(WireModel):
    deploymentConfigurationType: Annotated[
        Literal["PipelineComponent"], canonical_enum(BatchDeploymentConfigurationType)
    ]
    componentId: IdAssetReference | None = None
    description: str | None = None
    settings: ScalarMap | None = None
    """Strings on the wire; azure-ai-ml sends the values as users wrote them (``continue_on_step_failure: False``),
    and the service takes them and keeps them as strings."""
    tags: StringMap | None = None


DeploymentConfiguration = Annotated[
    Annotated[ModelDeploymentConfiguration, Tag("Model")]
    | Annotated[BatchPipelineComponentDeploymentConfiguration, Tag("PipelineComponent")],
    _tag_of(BatchDeploymentConfigurationType, "deploymentConfigurationType"),
]


class CodeConfiguration(WireModel):
    codeId: str | None = CreateOnly(default=None)
    scoringScript: str = CreateOnly(min_length=1, pattern=ASSET_ID_PATTERN)


class DeploymentResourceConfiguration(WireModel):
    instanceCount: Int32 = CreateOnly(default=1)
    instanceType: str | None = CreateOnly(default=None)
    properties: dict[str, dict[str, Any] | None] | None = CreateOnly(default=None)


class BatchRetrySettings(WireModel):
    maxRetries: Int32 = 3
    timeout: str = Field(default="PT30S", description="ISO-8601 duration")


class BatchDeploymentProperties(WireModel):
    codeConfiguration: CodeConfiguration | None = None
    description: str | None = None
    environmentId: str | None = None
    environmentVariables: StringMap | None = None
    properties: StringMap | None = None
    compute: str | None = None
    deploymentConfiguration: DeploymentConfiguration | None = None
    errorThreshold: int = Field(default=-1, ge=-1, le=2**31 - 1)
    loggingLevel: CaseInsensitive[BatchLoggingLevel] = BatchLoggingLevel.INFO
    maxConcurrencyPerInstance: Int32 = 1
    miniBatchSize: Int64 = 10
    model: AssetReference | None = None
    outputAction: CaseInsensitive[BatchOutputAction] = BatchOutputAction.APPEND_ROW
    outputFileName: str = "predictions.csv"
    provisioningState: DeploymentProvisioningState | None = ReadOnly()
    resources: DeploymentResourceConfiguration | None = None
    retrySettings: BatchRetrySettings | None = None


class TrackedResourceFields(ArmEnvelope):
    model_config = WireModel.model_config  # additionalProperties: false
    identity: ManagedServiceIdentity | None = None
    kind: str | None = None
    sku: Sku | None = None


class BatchEndpointTrackedResource(TrackedResourceFields):
    properties: BatchEndpointProperties


class BatchDeploymentTrackedResource(TrackedResourceFields):
    properties: BatchDeploymentProperties


class BatchEndpointPatch(WireModel):
    """PartialMinimalTrackedResourceWithIdentity: only tags and identity can be patched."""

    tags: StringMap | None = None
    identity: PartialManagedServiceIdentity | None = None


class PartialBatchDeployment(WireModel):
    description: str | None = None


class BatchDeploymentPatch(WireModel):
    """PartialBatchDeploymentPartialMinimalTrackedResourceWithProperties: tags and description only."""

    tags: StringMap | None = None
    properties: PartialBatchDeployment | None = None


class BatchEndpointList(WireModel):
    value: list[BatchEndpointTrackedResource] = Field(default_factory=list)
    nextLink: str | None = None


class BatchDeploymentList(WireModel):
    value: list[BatchDeploymentTrackedResource] = Field(default_factory=list)
    nextLink: str | None = None
