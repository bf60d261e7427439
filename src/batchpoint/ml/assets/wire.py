"""Asset containers and versions. Their properties differ per asset kind and pass through as sent, but for the
fields the spec types as strings or booleans, whose other values are refused (`version_model`)."""

from __future__ import annotations

from typing import Any

from pydantic import create_model

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


class AssetVersionProperties(OpenModel):
    """What the spec types in every asset version's properties (AssetBase); the keys it does not name here are
    kept as sent. A value of another type (a number for a string) is refused: the server reads these."""

    description: str | None = None
    isAnonymous: bool | None = None
    isArchived: bool | None = None


VERSION_STRINGS: dict[str, tuple[str, ...]] = {
    "models": ("jobName", "modelType", "modelUri", "stage"),
    "codes": ("codeUri",),
    "environments": ("autoRebuild", "condaFile", "image", "osType", "stage"),
    "data": ("dataType", "dataUri"),
    "components": (),
}
"""The properties the spec types as strings in a version of each asset collection (its ``componentSpec`` is
read by ``ml/components``)."""


def version_model(kind: str, collection: str) -> type[AssetEnvelope]:
    """The wire model of a version of an asset collection (``ModelVersion`` with ``ModelVersionProperties``)."""
    strings: dict[str, Any] = dict.fromkeys(VERSION_STRINGS[collection], (str | None, None))
    properties = create_model(f"{kind}VersionProperties", __base__=AssetVersionProperties, **strings)
    return create_model(f"{kind}Version", __base__=AssetEnvelope, properties=(properties, ...))


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
