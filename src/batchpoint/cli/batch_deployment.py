"""``batchpoint batch-deployment ...``: batch deployments from az ml YAML files."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from batchpoint.cli.common import Home, Url, console
from batchpoint.cli.sdk import (
    EndpointName, File, Name, Sets, Source, YamlFile, check_existence, exists, group, load_deployment, ml_client,
    reported, required, show,
)

if TYPE_CHECKING:
    from azure.ai.ml import MLClient

app = group("Batch deployments from az ml YAML files.")


def put_deployment(file: Path, name: str | None, endpoint: str | None, sets: list[str] | None, set_default: bool,
                   url: str | None, home: Path | None, update: bool) -> None:
    named = [*([f"name={name}"] if name else []), *([f"endpoint_name={endpoint}"] if endpoint else [])]
    source = Source(file, [*(sets or []), *named])
    deployment = load_deployment(source)
    client = ml_client(url, home)
    with reported(source):
        present = exists(lambda: client.batch_deployments.get(deployment.name, deployment.endpoint_name))
        check_existence(present, update, f"batch deployment {deployment.endpoint_name}/{deployment.name}")
        created = client.batch_deployments.begin_create_or_update(deployment).result()
        if set_default:
            set_default_deployment(client, deployment.endpoint_name, created.name)
    show(created)


def set_default_deployment(client: MLClient, endpoint_name: str, deployment_name: str) -> None:
    endpoint = client.batch_endpoints.get(endpoint_name)
    endpoint.defaults = {"deployment_name": deployment_name}
    client.batch_endpoints.begin_create_or_update(endpoint).result()


def deployment_names(name: str | None, endpoint: str | None, file: Path | None) -> tuple[str, str]:
    """(endpoint, deployment) from the options, else from the YAML file."""
    if not (name and endpoint) and file:
        loaded = load_deployment(Source(file))
        name, endpoint = name or loaded.name, endpoint or loaded.endpoint_name
    return required(endpoint, "--endpoint-name"), required(name, "--name")


SetDefault = Annotated[bool, typer.Option("--set-default", help="Make it the endpoint's default deployment.")]


@app.command("create")
def deployment_create(file: YamlFile, name: Name = None, endpoint_name: EndpointName = None, set_: Sets = None,
                      set_default: SetDefault = False, url: Url = None, home: Home = None) -> None:
    """Create a batch deployment from a YAML file (local code and models are uploaded)."""
    put_deployment(file, name, endpoint_name, set_, set_default, url, home, update=False)


@app.command("update")
def deployment_update(file: YamlFile, name: Name = None, endpoint_name: EndpointName = None, set_: Sets = None,
                      set_default: SetDefault = False, url: Url = None, home: Home = None) -> None:
    """Update an existing batch deployment from a YAML file."""
    put_deployment(file, name, endpoint_name, set_, set_default, url, home, update=True)


@app.command("show")
def deployment_show(name: Name = None, endpoint_name: EndpointName = None, file: File = None, url: Url = None,
                    home: Home = None) -> None:
    """Show a batch deployment."""
    endpoint, deployment = deployment_names(name, endpoint_name, file)
    with reported():
        show(ml_client(url, home).batch_deployments.get(deployment, endpoint))


@app.command("list")
def deployment_list(endpoint_name: EndpointName = None, file: File = None, url: Url = None, home: Home = None) -> None:
    """The endpoint's batch deployments."""
    endpoint = endpoint_name or (load_deployment(Source(file)).endpoint_name if file else None)
    table = Table("name", "state", "model")
    with reported():
        for deployment in ml_client(url, home).batch_deployments.list(required(endpoint, "--endpoint-name")):
            table.add_row(deployment.name, deployment.provisioning_state or "", str(deployment.model or ""))
    console.print(table)


@app.command("delete")
def deployment_delete(name: Name = None, endpoint_name: EndpointName = None, file: File = None, url: Url = None,
                      home: Home = None) -> None:
    """Delete a batch deployment."""
    endpoint, deployment = deployment_names(name, endpoint_name, file)
    with reported():
        ml_client(url, home).batch_deployments.begin_delete(deployment, endpoint).result()
    console.print(f"deleted batch deployment {endpoint}/{deployment}")
