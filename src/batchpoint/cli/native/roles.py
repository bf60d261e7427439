"""``batchpoint role assign|list|remove``: role assignments, over the server's HTTP API (``roleAssignments``).

The caller needs ``Microsoft.Authorization/roleAssignments/*`` over the scope (Owner): by default the CLI's token
is the local user's, who owns the default subscription from the server's first start."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from batchpoint.access.issuer import ensure_issuer
from batchpoint.cli.common import Home, Url, connect, console, guard
from batchpoint.config import DEFAULT_SUBSCRIPTION, default_home

role_app = typer.Typer(
    help="Assign, list and remove roles (Owner, Contributor, Reader, AzureML Data Scientist).", no_args_is_help=True
)

Scope = Annotated[
    str,
    typer.Option(help="'/', or the id of a subscription, resource group, workspace or endpoint."),
]
Assignee = Annotated[
    str,
    typer.Option(
        help="An object id (a user's, application's or group's), or a user name as 'batchpoint token --user' takes."
    ),
]
Role = Annotated[str, typer.Option(help="A built-in role's name or id.")]
DEFAULT_SCOPE = f"/subscriptions/{DEFAULT_SUBSCRIPTION}"


@role_app.command("assign")
def assign(assignee: Assignee, role: Role, scope: Scope = DEFAULT_SCOPE, url: Url = None, home: Home = None) -> None:
    """Give ASSIGNEE a role over a scope and everything below it."""
    principal = ensure_issuer(home or default_home()).principal_id(assignee)
    created = guard(lambda: connect(url, home).assign_role(scope, principal, role))
    console().print(f"{created['properties']['roleDefinitionName']} for {principal} over {scope}: {created['id']}")


@role_app.command("list")
def list_assignments(scope: Scope = "/", url: Url = None, home: Home = None) -> None:
    """The assignments that hold at a scope, and those made below it."""
    table = Table("role", "principal", "scope", "id")
    for found in guard(lambda: connect(url, home).role_assignments(scope)):
        properties = found["properties"]
        table.add_row(properties["roleDefinitionName"], properties["principalId"], properties["scope"], found["id"])
    console().print(table)


@role_app.command("remove")
def remove(assignee: Assignee, role: Role, scope: Scope = DEFAULT_SCOPE, url: Url = None, home: Home = None) -> None:
    """Remove ASSIGNEE's assignments of a role made at exactly that scope."""
    client = connect(url, home)
    principal = ensure_issuer(home or default_home()).principal_id(assignee)
    matching = [
        found["id"]
        for found in guard(lambda: client.role_assignments(scope))
        if found["properties"]["principalId"].lower() == principal.lower()
        and role.lower()
        in (found["properties"]["roleDefinitionName"].lower(), found["properties"]["roleDefinitionId"].lower())
        and found["properties"]["scope"].rstrip("/").lower() == scope.rstrip("/").lower()
    ]
    if not matching:
        console().print(f"[red]{assignee} has no {role} assignment at {scope}[/red]")
        raise typer.Exit(1)
    for assignment_id in matching:
        guard(lambda: client.remove_role_assignment(assignment_id))  # noqa: B023 - called at once
    console().print(f"removed {len(matching)} assignment(s)")
