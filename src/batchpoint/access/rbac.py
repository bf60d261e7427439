"""Role-based access control: built-in roles, role assignments (kept in the resources store), and decisions.

An assignment gives a principal (a user's or application's ``oid``, or a group's object id) a role over a scope:
the root ``/``, a subscription, a resource group, a workspace or an endpoint; it holds at that scope and every
scope below it. Roles are Azure's built-in ones, with their Azure ids, as sets of ARM actions with wildcards.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from batchpoint.arm.context import Caller
from batchpoint.arm.errors import ArmError, bad_request
from batchpoint.arm.ids import WORKSPACE_TYPE
from batchpoint.store import Store
from batchpoint.store.entities import Resource, RoleGrant
from batchpoint.store.indexes import ROLE_ASSIGNMENT_TYPE as ASSIGNMENT_TYPE

log = logging.getLogger(__name__)

ASSIGNMENTS = "/providers/" + ASSIGNMENT_TYPE
DEFINITIONS = "/providers/Microsoft.Authorization/roleDefinitions/"
CACHE_SECONDS = 2.0
"""How often a process reloads its copy of the assignments; writes through this process refresh it at once."""


@dataclass(frozen=True)
class Role:
    name: str
    id: str
    actions: tuple[str, ...]
    not_actions: tuple[str, ...] = ()

    @cached_property
    def _allowed(self) -> re.Pattern[str]:
        return _wildcards(self.actions)

    @cached_property
    def _denied(self) -> re.Pattern[str]:
        return _wildcards(self.not_actions)

    def permits(self, action: str) -> bool:
        return bool(self._allowed.fullmatch(action)) and not self._denied.fullmatch(action)


def _wildcards(patterns: Iterable[str]) -> re.Pattern[str]:
    """ARM action patterns: ``*`` matches anything (slashes included); case does not matter."""
    alternatives = "|".join(re.escape(pattern).replace(r"\*", ".*") for pattern in patterns) or "(?!)"
    return re.compile(alternatives, re.IGNORECASE)


AUTHORIZATION_WRITES = ("Microsoft.Authorization/*/Write", "Microsoft.Authorization/*/Delete")
ROLES = (
    Role("Owner", "8e3af657-a8ff-443c-a75c-2fe8c4bcb635", ("*",)),
    Role("Contributor", "b24988ac-6180-42a0-ab88-20f7382dd24c", ("*",), AUTHORIZATION_WRITES),
    Role("Reader", "acdd72a7-3385-48ef-bd42-f606fba81ae7", ("*/read",)),
    Role(
        "AzureML Data Scientist",
        "f6c7c914-8db3-469d-8ca1-694a8f32e121",
        ("*/read", f"{WORKSPACE_TYPE}/*/action", f"{WORKSPACE_TYPE}/*/write", f"{WORKSPACE_TYPE}/*/delete"),
        (
            f"{WORKSPACE_TYPE}/batchEndpoints/write",
            f"{WORKSPACE_TYPE}/batchEndpoints/delete",
            f"{WORKSPACE_TYPE}/batchEndpoints/deployments/write",
            f"{WORKSPACE_TYPE}/batchEndpoints/deployments/delete",
            *AUTHORIZATION_WRITES,
        ),
    ),
)


OWNER = ROLES[0]


def role_named(name_or_id: str) -> Role:
    """A built-in role by name (any case), by id, or by a ``.../roleDefinitions/{id}`` resource id."""
    wanted = name_or_id.rsplit("/", 1)[-1].lower()
    for role in ROLES:
        if wanted in (role.name.lower(), role.id):
            return role
    known = ", ".join(role.name for role in ROLES)
    raise bad_request(
        f"The role '{name_or_id}' does not exist; the built-in roles are {known}.", "RoleDefinitionDoesNotExist"
    )


def scope_key(scope: str) -> str:
    """Scopes compare case-insensitively, without a trailing slash; the root scope ``/`` is the empty key."""
    return scope.rstrip("/").lower()


def covers(assigned: str, target: str) -> bool:
    """Whether an assignment at scope key ``assigned`` holds at scope key ``target``."""
    return target == assigned or target.startswith(assigned + "/")


def assignment_id(scope: str, principal_id: str, role: Role) -> str:
    name = uuid.uuid5(uuid.NAMESPACE_URL, f"{scope_key(scope)}|{principal_id.lower()}|{role.id}")
    return f"{scope.rstrip('/')}{ASSIGNMENTS}/{name}"


@dataclass(frozen=True)
class Assignment:
    scope: str
    principal_id: str
    role: Role

    @classmethod
    def of(cls, grant: RoleGrant) -> Assignment:
        return cls(grant.scope, grant.principal_id, role_named(grant.role_definition_id))


def assignment_body(resource_id: str, assignment: Assignment) -> dict[str, Any]:
    subscription = assignment.scope.split("/")[2] if assignment.scope.startswith("/subscriptions/") else None
    definitions = f"/subscriptions/{subscription}{DEFINITIONS}" if subscription else DEFINITIONS
    return {
        "id": resource_id,
        "name": resource_id.rsplit("/", 1)[-1],
        "type": ASSIGNMENT_TYPE,
        "properties": {
            "roleDefinitionId": definitions + assignment.role.id,
            "roleDefinitionName": assignment.role.name,
            "principalId": assignment.principal_id,
            "scope": assignment.scope,
        },
    }


def authorization_failed(caller: Caller, action: str, scope: str) -> ArmError:
    client = caller.object_id or caller.name
    return ArmError(
        403,
        "AuthorizationFailed",
        f"The client '{client}' with object id '{client}' does not have authorization to perform action "
        f"'{action}' over scope '{scope}' or the scope is invalid. If access was recently granted, please refresh "
        "your credentials.",
    )


@dataclass
class RoleAssignments:
    """The assignments in the store, and a per-process index of them by principal for the decisions."""

    store: Store
    only: frozenset[str] | None = None
    """The principals that may be given roles (lower-case); None: any. Set while scoring code is not contained
    (docs/security.md): then only the owners."""
    _index: dict[str, list[Assignment]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopped: threading.Event = field(default_factory=threading.Event)

    def start_refreshing(self) -> None:
        """Load the assignments now, then again every ``CACHE_SECONDS`` on a thread of its own: a permission check
        reads the index in memory and never waits for the database (nor blocks the event loop it runs on)."""
        self._load()
        threading.Thread(target=self._refresh, name="role-assignments", daemon=True).start()

    def stop_refreshing(self) -> None:
        self._stopped.set()

    def _refresh(self) -> None:
        while not self._stopped.wait(CACHE_SECONDS):
            try:
                self._load()
            except Exception:  # a database hiccup: the last assignments stay in force until the next reload
                log.exception("reloading the role assignments failed")

    def _load(self) -> None:
        index = _index(assignment for _, assignment in self._all())
        with self._lock:
            self._index = index

    def assign(self, resource_id: str, assignment: Assignment) -> tuple[dict[str, Any], bool]:
        """The assignment's body, and whether it is new (assigning again changes nothing)."""
        existing = self.store.get(resource_id)
        if existing is not None:
            return existing.body, False
        if self.only is not None and assignment.principal_id.lower() not in self.only:
            raise ArmError(
                409,
                "WorkersNotSandboxed",
                "The server's scoring code is not sandboxed (docs/security.md), so only its owners may hold roles; "
                "start it with --unsandboxed-workers to give roles to others anyway.",
            )
        body = assignment_body(resource_id, assignment)
        self.store.insert(Resource(id=resource_id, type=ASSIGNMENT_TYPE, body=body))
        self._load()
        return body, True

    def grant(self, scope: str, principal_id: str, role: Role) -> None:
        """Assign ``role``, under a name derived from what it grants, so granting twice is one assignment."""
        self.assign(assignment_id(scope, principal_id, role), Assignment(scope, principal_id, role))

    def remove(self, resource_id: str) -> bool:
        removed = self.store.delete_tree(resource_id) > 0
        self._load()
        return removed

    def get(self, resource_id: str) -> dict[str, Any] | None:
        resource = self.store.get(resource_id)
        return resource.body if resource is not None and resource.type == ASSIGNMENT_TYPE else None

    def related(self, scope: str) -> list[dict[str, Any]]:
        """The assignments that hold at ``scope`` (made there or above) or below it, as ARM lists them."""
        target = scope_key(scope)
        return [
            assignment_body(grant.id, assignment)
            for grant, assignment in self._all()
            if covers(scope_key(assignment.scope), target) or covers(target, scope_key(assignment.scope))
        ]

    def any(self) -> bool:
        return bool(self.store.role_assignments())

    def permits(self, caller: Caller, action: str, scope: str) -> bool:
        """Whether an assignment of the caller or of one of its groups grants ``action`` over ``scope``."""
        index = self._index
        target = scope_key(scope)
        return any(
            covers(scope_key(assignment.scope), target) and assignment.role.permits(action)
            for principal in caller.principals
            for assignment in index.get(principal.lower(), ())
        )

    def _all(self) -> list[tuple[RoleGrant, Assignment]]:
        """Every assignment, read from the columns of the ``role_assignments`` table: one query, however many
        other resources there are."""
        return [(grant, Assignment.of(grant)) for grant in self.store.role_assignments()]


def _index(assignments: Iterable[Assignment]) -> dict[str, list[Assignment]]:
    index: dict[str, list[Assignment]] = {}
    for assignment in assignments:
        index.setdefault(assignment.principal_id.lower(), []).append(assignment)
    return index
