"""Asset containers and versions. Their properties differ per asset kind and pass through as sent."""

from __future__ import annotations

from typing import Any

from batchpoint.arm.schemas import SystemData
from batchpoint.arm.wire import OpenModel, ReadOnly


class AssetEnvelope(OpenModel):
    id: str | None = ReadOnly()
    name: str | None = ReadOnly()
    type: str | None = ReadOnly()
    systemData: SystemData | None = ReadOnly()


class AssetContainer(AssetEnvelope):
    properties: dict[str, Any] | None = None


class AssetVersion(AssetEnvelope):
    properties: dict[str, Any]


class AssetList(OpenModel):
    value: list[AssetVersion]
    nextLink: str | None = None


class DatastoreSecrets(OpenModel):
    secretsType: str
    key: str | None = None
    sasToken: str | None = None


class PendingUpload(OpenModel):
    blobReferenceForConsumption: dict[str, Any] | None = None
    pendingUploadId: str | None = None
    pendingUploadType: str | None = None
