"""Managed identities: the server plays the identity provider and assigns principal and client ids.

ARM's ``ManagedServiceIdentity`` (docs/management-plane.md, Managed identities): a PUT sets the identity as it is
sent; a PATCH changes what it names (a user-assigned identity mapped to null is removed, the others stay). Type
``None`` has no identities, ``SystemAssigned`` no user-assigned ones, and a type naming ``UserAssigned`` needs at
least one, each named by the ARM id of a ``Microsoft.ManagedIdentity/userAssignedIdentities`` resource (or by a
key already stored, as earlier servers took any).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from batchpoint.arm.errors import bad_request

LOCAL_TENANT_ID = "00000000-0000-0000-0000-000000000000"
USER_ASSIGNED = "UserAssigned"
USER_IDENTITY_ID = re.compile(
    r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.ManagedIdentity/userAssignedIdentities/[^/]+$",
    re.IGNORECASE,
)


def resolve_identity(
    requested: dict[str, Any] | None, existing: dict[str, Any] | None, *, patch: bool = False
) -> dict[str, Any] | None:
    """The identity to store for a PUT's ``requested`` identity (or a PATCH's, with ``patch``): ids the caller
    cannot set are kept from before, for the identities that stay, or newly assigned. Without one, the stored one
    stays.

    What ``existing`` holds is accepted back, so that a GET then PUT works on what earlier servers stored: a key
    that is not an ARM id (Azure's examples send ``string``), and user-assigned identities beside a type without
    ``UserAssigned``, which are dropped. A key not stored must be an ARM id, and not beside such a type."""
    if requested is None:
        return existing
    existing = existing or {}
    kind = requested.get("type") or (existing.get("type") if patch else None) or "None"
    asked = requested.get("userAssignedIdentities") or {}
    before = existing.get("userAssignedIdentities") or {}
    stored = {name.lower(): value for name, value in before.items()}
    for name in asked:
        if not USER_IDENTITY_ID.match(name) and name.lower() not in stored:
            raise bad_request(
                f"'{name}' in identity.userAssignedIdentities is not the ARM id of a user-assigned identity "
                "(/subscriptions/{s}/resourceGroups/{g}/providers/Microsoft.ManagedIdentity/"
                "userAssignedIdentities/{name})."
            )
    kept = before if patch and USER_ASSIGNED in (existing.get("type") or "") else {}
    names = _user_identities(kept, asked)
    if USER_ASSIGNED not in kind:
        if any(value is not None and name.lower() not in stored for name, value in asked.items()):
            raise bad_request(f"identity.userAssignedIdentities can only be given with a type naming {USER_ASSIGNED}.")
        names = []
    elif not names:
        raise bad_request(f"The identity type '{kind}' needs at least one identity in userAssignedIdentities.")
    identity: dict[str, Any] = {"type": kind}
    if "SystemAssigned" in kind:
        identity["principalId"] = existing.get("principalId") or str(uuid.uuid4())
        identity["tenantId"] = LOCAL_TENANT_ID
    if names:
        identity["userAssignedIdentities"] = {
            name: stored.get(name.lower()) or {"principalId": str(uuid.uuid4()), "clientId": str(uuid.uuid4())}
            for name in names
        }
    return identity


def _user_identities(before: dict[str, Any], asked: dict[str, Any]) -> list[str]:
    """The user-assigned identities ``before`` with ``asked`` applied (null removes one): ARM ids, in any casing,
    spelled as first given."""
    names = {name.lower(): name for name in before}
    for name, value in asked.items():
        if value is None:
            names.pop(name.lower(), None)
        else:
            names.setdefault(name.lower(), name)
    return list(names.values())
