"""Microsoft.Authorization role assignments: the request body of a PUT."""

from __future__ import annotations

from pydantic import BaseModel


class RoleAssignmentProperties(BaseModel):
    roleDefinitionId: str
    """A built-in role's ``.../roleDefinitions/{id}``, its id, or its name."""
    principalId: str
    """A user's, application's or group's object id (the ``oid`` or a ``groups`` entry of its tokens)."""
    principalType: str | None = None


class RoleAssignmentCreate(BaseModel):
    properties: RoleAssignmentProperties


class ManagedIdentityToken(BaseModel):
    """A managed-identity endpoint's answer, as azure-identity (MSAL) reads it: ``expires_on`` in epoch seconds."""

    access_token: str
    expires_on: str
    resource: str
    token_type: str
    client_id: str
