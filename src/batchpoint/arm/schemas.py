"""ARM common types (resource-management v3): identity, sku, systemData, errors, operation status."""

from __future__ import annotations

from enum import Enum
from typing import Any

from pydantic import BaseModel

from batchpoint.arm.wire import CaseInsensitive, CreateOnly, Int32, OpenModel, ReadOnly, WireModel


class ManagedServiceIdentityType(str, Enum):
    NONE = "None"
    SYSTEM_ASSIGNED = "SystemAssigned"
    USER_ASSIGNED = "UserAssigned"
    SYSTEM_AND_USER_ASSIGNED = "SystemAssigned,UserAssigned"


class UserAssignedIdentity(OpenModel):
    principalId: str | None = ReadOnly()
    clientId: str | None = ReadOnly()


class ManagedServiceIdentity(OpenModel):
    type: CaseInsensitive[ManagedServiceIdentityType]
    principalId: str | None = ReadOnly()
    tenantId: str | None = ReadOnly()
    userAssignedIdentities: dict[str, UserAssignedIdentity | None] | None = None


class PartialManagedServiceIdentity(WireModel):
    type: CaseInsensitive[ManagedServiceIdentityType] | None = None
    userAssignedIdentities: dict[str, dict[str, Any] | None] | None = None


class SkuTier(str, Enum):
    FREE = "Free"
    BASIC = "Basic"
    STANDARD = "Standard"
    PREMIUM = "Premium"


class Sku(OpenModel):
    name: str
    tier: SkuTier | None = None
    size: str | None = None
    family: str | None = None
    capacity: Int32 | None = None


class CreatedByType(str, Enum):
    USER = "User"
    APPLICATION = "Application"
    MANAGED_IDENTITY = "ManagedIdentity"
    KEY = "Key"


class SystemData(OpenModel):
    createdBy: str | None = None
    createdByType: CreatedByType | None = None
    createdAt: str | None = None
    lastModifiedBy: str | None = None
    lastModifiedByType: CreatedByType | None = None
    lastModifiedAt: str | None = None


class ArmEnvelope(OpenModel):
    """The fields every tracked ARM resource has; the server sets the read-only ones."""

    id: str | None = ReadOnly()
    name: str | None = ReadOnly()
    type: str | None = ReadOnly()
    systemData: SystemData | None = ReadOnly()
    location: str = CreateOnly(min_length=1)
    tags: dict[str, str] | None = None


class ErrorDetail(BaseModel):
    code: str
    message: str
    target: str | None = None
    details: list[ErrorDetail] | None = None
    additionalInfo: list[dict[str, Any]] | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


class OperationStatusResult(BaseModel):
    id: str
    name: str
    status: str
    startTime: str | None = None
    endTime: str | None = None
    percentComplete: float | None = None
    error: ErrorDetail | None = None


Tags = dict[str, str]
