"""``batchpoint batch-deployment create|update|show|list|delete|list-jobs``, as ``az ml batch-deployment``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from batchpoint.cli.az_ml.sdk import (
    EndpointName,
    File,
    Name,
    Session,
    Sets,
    YamlFile,
    Yes,
    as_dict,
    check_existence,
    exists,
    group,
    required,
    verb,
)
from batchpoint.cli.az_ml.yaml_files import Source, load_deployment, set_fields

app = group("Batch deployments, as az ml batch-deployment.")

SetDefault = Annotated[bool, typer.Option("--set-default", help="Make it the endpoint's default deployment.")]


def deployment_source(file: Path | None, name: str | None, endpoint: str | None, sets: list[str] | None) -> Source:
    return Source(file, sets or [], {"name": ("--name", name), "endpoint_name": ("--endpoint-name", endpoint)})


def put(session: Session, deployment: Any, set_default: bool) -> Any:
    created = session.ml.batch_deployments.begin_create_or_update(deployment).result()
    if set_default:
        endpoint = session.ml.batch_endpoints.get(deployment.endpoint_name)
        endpoint.defaults = {"deployment_name": created.name}
        session.ml.batch_endpoints.begin_create_or_update(endpoint).result()
    return as_dict(created)


def existing(session: Session, deployment: Any) -> Any:
    return exists(lambda: session.ml.batch_deployments.get(deployment.name, deployment.endpoint_name))


def label(deployment: Any) -> str:
    return f"batch deployment {deployment.endpoint_name}/{deployment.name}"


def names(name: str | None, endpoint: str | None, file: Path | None) -> tuple[str, str]:
    """(endpoint, deployment) from the options, else from the YAML file."""
    data = Source(file).data()
    return required(endpoint or data.get("endpoint_name"), "--endpoint-name"), required(
        name or data.get("name"), "--name"
    )


@verb(app, "create")
def create(
    session: Session,
    file: YamlFile,
    name: Name = None,
    endpoint_name: EndpointName = None,
    set_: Sets = None,
    set_default: SetDefault = False,
) -> Any:
    """Create a batch deployment from a YAML file (local code and models are uploaded); one whose provisioning
    failed is replaced."""
    deployment = load_deployment(deployment_source(file, name, endpoint_name, set_))
    check_existence(existing(session, deployment), False, label(deployment))
    return put(session, deployment, set_default)


@verb(app, "update")
def update(
    session: Session,
    file: File = None,
    name: Name = None,
    endpoint_name: EndpointName = None,
    set_: Sets = None,
    set_default: SetDefault = False,
) -> Any:
    """Update a batch deployment from a YAML file, or --set fields of the one on the server."""
    if file is None:
        endpoint, deployment_name = names(name, endpoint_name, None)
        deployment = set_fields(session.ml.batch_deployments.get(deployment_name, endpoint), set_ or [])
    else:
        deployment = load_deployment(deployment_source(file, name, endpoint_name, set_))
        check_existence(existing(session, deployment), True, label(deployment))
    return put(session, deployment, set_default)


@verb(app, "show")
def show(session: Session, name: Name = None, endpoint_name: EndpointName = None, file: File = None) -> Any:
    """Show a batch deployment."""
    endpoint, deployment = names(name, endpoint_name, file)
    return as_dict(session.ml.batch_deployments.get(deployment, endpoint))


@verb(app, "list")
def list_(session: Session, endpoint_name: EndpointName = None, file: File = None) -> Any:
    """The endpoint's batch deployments."""
    endpoint = required(endpoint_name or Source(file).data().get("endpoint_name"), "--endpoint-name")
    return [as_dict(deployment) for deployment in session.ml.batch_deployments.list(endpoint)]


@verb(app, "delete")
def delete(
    session: Session, name: Name = None, endpoint_name: EndpointName = None, file: File = None, yes: Yes = False
) -> None:
    """Delete a batch deployment."""
    endpoint, deployment = names(name, endpoint_name, file)
    if not yes:
        typer.confirm(f"Delete batch deployment {endpoint}/{deployment}?", abort=True, err=True)
    session.ml.batch_deployments.begin_delete(deployment, endpoint).result()


@verb(app, "list-jobs")
def list_jobs(session: Session, name: Name = None, endpoint_name: EndpointName = None, file: File = None) -> Any:
    """The deployment's batch jobs."""
    endpoint, deployment = names(name, endpoint_name, file)
    return [as_dict(job) for job in session.ml.batch_deployments.list_jobs(endpoint, name=deployment)]
