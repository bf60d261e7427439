"""``batchpoint compute create|show|list|delete``, as ``az ml compute``: the clusters deployments name."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from batchpoint.cli.az_ml.sdk import File, Name, Session, Sets, Yes, as_dict, group, required, verb
from batchpoint.cli.az_ml.yaml_files import Source, load

app = group("Compute clusters, as az ml compute.")


@verb(app, "create")
def create(
    session: Session,
    file: File = None,
    name: Name = None,
    type_: Annotated[str | None, typer.Option("--type", "-t", help="amlcompute.")] = None,
    size: Annotated[str | None, typer.Option("--size", "-s", help="The VM size, e.g. STANDARD_DS3_V2.")] = None,
    min_instances: Annotated[int | None, typer.Option("--min-instances", help="Nodes kept when idle.")] = None,
    max_instances: Annotated[int | None, typer.Option("--max-instances", help="Nodes at most.")] = None,
    idle_time_before_scale_down: Annotated[
        int | None, typer.Option("--idle-time-before-scale-down", help="Seconds.")
    ] = None,
    set_: Sets = None,
) -> Any:
    """Create or update a compute cluster from a YAML file and/or options."""
    from azure.ai.ml import load_compute

    options = {
        "name": ("--name", name),
        "type": ("--type", type_),
        "size": ("--size", size),
        "min_instances": ("--min-instances", min_instances),
        "max_instances": ("--max-instances", max_instances),
        "idle_time_before_scale_down": ("--idle-time-before-scale-down", idle_time_before_scale_down),
    }
    compute = load(load_compute, Source(file, set_ or [], options))
    return as_dict(session.ml.compute.begin_create_or_update(compute).result())


@verb(app, "show")
def show(session: Session, name: Name = None) -> Any:
    """Show a compute."""
    return as_dict(session.ml.compute.get(required(name, "--name")))


@verb(app, "list")
def list_(session: Session) -> Any:
    """The workspace's computes."""
    return [as_dict(compute) for compute in session.ml.compute.list()]


@verb(app, "delete")
def delete(session: Session, name: Name = None, yes: Yes = False) -> None:
    """Delete a compute."""
    resolved = required(name, "--name")
    if not yes:
        typer.confirm(f"Delete compute {resolved}?", abort=True, err=True)
    session.ml.compute.begin_delete(resolved).result()
