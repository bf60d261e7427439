"""Managed identities: the server plays the identity provider and assigns principal and client ids."""

from __future__ import annotations

import uuid
from typing import Any

LOCAL_TENANT_ID = "00000000-0000-0000-0000-000000000000"


def resolve_identity(requested: dict[str, Any] | None, existing: dict[str, Any] | None) -> dict[str, Any] | None:
    """The identity to store: ids the caller cannot set are kept from before or newly assigned."""
    if requested is None:
        return existing
    existing = existing or {}
    kind = requested.get("type") or existing.get("type") or "None"
    identity: dict[str, Any] = {"type": kind}
    if "SystemAssigned" in kind:
        identity["principalId"] = existing.get("principalId") or str(uuid.uuid4())
        identity["tenantId"] = LOCAL_TENANT_ID
    users = requested.get("userAssignedIdentities")
    if users is None:
        users = existing.get("userAssignedIdentities") or {}
    if users:
        before = existing.get("userAssignedIdentities") or {}
        identity["userAssignedIdentities"] = {
            name: before.get(name) or {"principalId": str(uuid.uuid4()), "clientId": str(uuid.uuid4())}
            for name in users
        }
    return identity
