"""The invoke request (``POST {scoringUri}``) as azure-ai-ml and the REST docs send it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr

from batchpoint.arm.wire import OpenModel
from batchpoint.ml.assets.wire import AssetEnvelope
from batchpoint.ml.components.wire import InvokeModel, JobInput, JobOutput, Literal


class OutputDataset(InvokeModel):
    datastoreId: str | None = None
    path: str | None = None


class RetrySettings(InvokeModel):
    maxRetries: int | None = Field(default=None, ge=0, le=100)
    timeout: str | None = None


class ComputeOverride(InvokeModel):
    instanceCount: int | None = Field(default=None, ge=1, le=64)


class InvokeProperties(InvokeModel):
    inputData: dict[str, JobInput | Literal] = Field(default_factory=dict)
    """Inputs by name; ``invoke(inputs={"n": 2})`` sends a bare value for a literal input."""
    outputData: dict[str, JobOutput] | None = None
    outputDataset: OutputDataset | None = None
    outputFileName: str | None = None
    name: str | None = Field(default=None, pattern=r"^[a-zA-Z0-9][a-zA-Z0-9\-_]{0,254}$")
    properties: dict[str, str] | None = None
    retrySettings: RetrySettings | None = None
    errorThreshold: int | None = Field(default=None, ge=-1, le=2**31 - 1)
    """The range of the deployment's `errorThreshold` (int32)."""
    miniBatchSize: int | None = Field(default=None, ge=1, le=2**63 - 1)
    """The range of the deployment's `miniBatchSize` (int64), which a job can take whole."""
    compute: ComputeOverride | None = None


class InvokeRequest(InvokeModel):
    properties: InvokeProperties


class InvokeResponseProperties(BaseModel):
    status: str


class InvokeResponse(BaseModel):
    id: str
    name: str
    type: str
    properties: InvokeResponseProperties


class RunDetails(BaseModel):
    """What ``jobs.stream`` reads from the run history."""

    model_config = ConfigDict(extra="allow")

    runId: str
    status: str
    startTimeUtc: str | None = None
    endTimeUtc: str | None = None
    logFiles: dict[str, str]


class RunDataRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    runId: str = Field(min_length=1, max_length=255, pattern=r"^[a-zA-Z0-9][a-zA-Z0-9\-_]*$")


class ResolveUrisRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    values: list[str] = Field(max_length=1000)


class SubmittedStep(OpenModel):
    """One step of a pipeline job, as azure-ai-ml sends it (a component id, bindings by input and output name)."""

    componentId: str | None = None
    inputs: dict[str, dict[str, Any] | Literal] | None = None
    outputs: dict[str, dict[str, Any] | StrictStr] | None = None


class SubmittedJobProperties(OpenModel):
    jobType: str
    componentId: str | None = None
    jobs: dict[str, SubmittedStep] | None = None
    inputs: dict[str, JobInput] | None = None
    """Inputs with their values: a literal's ``value`` or a location's ``uri``, as an invoke gives them."""
    outputs: dict[str, JobOutput] | None = None
    settings: dict[str, Any] | None = None
    displayName: str | None = None
    experimentName: str | None = None
    tags: dict[str, str] | None = None
    properties: dict[str, str] | None = None


class SubmittedJob(AssetEnvelope):
    """``PUT {workspace}/jobs/{name}``: a job as ``jobs.create_or_update`` and ``az ml job create`` send it."""

    properties: SubmittedJobProperties
