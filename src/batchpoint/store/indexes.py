"""Columns the store derives from the bodies of the resources it is asked about by more than their id.

A resource's JSON body stays the one source of truth (a GET forwards it as stored). Jobs, role assignments and
code versions also get a row in a table of their own, with a column for each thing a query selects or orders by
(a job's workspace, endpoint, deployment, status and creation time; an assignment's principal, scope and role;
a code version's content hash), each with an index. The store writes that row in the same statement group as the
body, at every insert and update, so it can never disagree with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table

from batchpoint.store.entities import JOB_TYPE, Resource, parent_of
from batchpoint.store.rows import CodeHashRow, JobRow, RoleAssignmentRow

ROLE_ASSIGNMENT_TYPE = "Microsoft.Authorization/roleAssignments"
CODE_VERSION_TYPE = "Microsoft.MachineLearningServices/workspaces/codes/versions"
ENDPOINT_PROPERTY, DEPLOYMENT_PROPERTY = "azureml.endpointname", "azureml.deploymentname"


def _lower(value: Any) -> str | None:
    return value.lower() if isinstance(value, str) and value else None


def job_columns(resource: Resource) -> dict[str, Any]:
    properties = resource.body.get("properties") or {}
    tags = properties.get("properties") or {}
    return {
        "workspace_key": resource.parent_id.lower(),
        "endpoint": _lower(tags.get(ENDPOINT_PROPERTY)),
        "deployment": _lower(tags.get(DEPLOYMENT_PROPERTY)),
        "status": str(properties.get("status") or ""),
    }


def role_assignment_columns(resource: Resource) -> dict[str, Any]:
    properties = resource.body.get("properties") or {}
    return {
        "principal_id": str(properties.get("principalId") or ""),
        "scope": str(properties.get("scope") or ""),
        "role_definition_id": str(properties.get("roleDefinitionId") or ""),
    }


def code_hash_columns(resource: Resource) -> dict[str, Any]:
    recorded = (resource.body.get("properties") or {}).get("properties") or {}
    digest = recorded.get("hash_sha256")
    return {
        "workspace_key": parent_of(resource.parent_id).lower(),
        "hash_sha256": str(digest) if digest else None,
        "hash_version": str(recorded.get("hash_version") or ""),
    }


@dataclass(frozen=True)
class IndexedType:
    table: Table
    columns: Callable[[Resource], dict[str, Any]]


INDEXED: dict[str, IndexedType] = {
    JOB_TYPE.lower(): IndexedType(JobRow.__table__, job_columns),
    ROLE_ASSIGNMENT_TYPE.lower(): IndexedType(RoleAssignmentRow.__table__, role_assignment_columns),
    CODE_VERSION_TYPE.lower(): IndexedType(CodeHashRow.__table__, code_hash_columns),
}
"""By lower-cased type: the table each indexed type's row goes to, and how its columns derive from the body."""


def indexed_row(resource: Resource, created_us: int) -> tuple[Table, dict[str, Any]] | None:
    """The table and full row (key and creation time included) of an indexed resource; None for other types."""
    indexed = INDEXED.get(resource.type.lower())
    if indexed is None:
        return None
    return indexed.table, {"key": resource.key, "created_us": created_us, **indexed.columns(resource)}
