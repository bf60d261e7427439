"""``batchpoint batch-endpoint ...``: batch endpoints from az ml YAML files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from batchpoint.cli.common import Home, Url, connect, console
from batchpoint.cli.jobs import follow
from batchpoint.cli.sdk import (
    File, Name, Sets, Source, YamlFile, check_existence, exists, group, load, ml_client, reported, required, show,
)

app = group("Batch endpoints from az ml YAML files.")


def put_endpoint(file: Path, name: str | None, sets: list[str] | None, url: str | None, home: Path | None,
                 update: bool) -> None:
    from azure.ai.ml import load_batch_endpoint

    source = Source(file, [*(sets or []), *([f"name={name}"] if name else [])])
    endpoint = load(load_batch_endpoint, source)
    client = ml_client(url, home)
    with reported(source):
        present = exists(lambda: client.batch_endpoints.get(endpoint.name))
        check_existence(present, update, f"batch endpoint {endpoint.name}")
        show(client.batch_endpoints.begin_create_or_update(endpoint).result())


def endpoint_name(name: str | None, file: Path | None) -> str:
    """From --name, else from the YAML file."""
    from azure.ai.ml import load_batch_endpoint

    if not name and file:
        name = load(load_batch_endpoint, Source(file)).name
    return required(name, "--name")


@app.command("create")
def endpoint_create(file: YamlFile, name: Name = None, set_: Sets = None, url: Url = None, home: Home = None) -> None:
    """Create a batch endpoint from a YAML file."""
    put_endpoint(file, name, set_, url, home, update=False)


@app.command("update")
def endpoint_update(file: YamlFile, name: Name = None, set_: Sets = None, url: Url = None, home: Home = None) -> None:
    """Update an existing batch endpoint from a YAML file."""
    put_endpoint(file, name, set_, url, home, update=True)


@app.command("show")
def endpoint_show(name: Name = None, file: File = None, url: Url = None, home: Home = None) -> None:
    """Show a batch endpoint."""
    resolved = endpoint_name(name, file)
    with reported():
        show(ml_client(url, home).batch_endpoints.get(resolved))


@app.command("list")
def endpoint_list(url: Url = None, home: Home = None) -> None:
    """The workspace's batch endpoints."""
    table = Table("name", "default deployment", "scoring URI")
    with reported():
        for endpoint in ml_client(url, home).batch_endpoints.list():
            default = getattr(endpoint.defaults, "deployment_name", None)
            table.add_row(endpoint.name, default or "", endpoint.scoring_uri or "")
    console.print(table)


@app.command("delete")
def endpoint_delete(name: Name = None, file: File = None, url: Url = None, home: Home = None) -> None:
    """Delete a batch endpoint and its deployments."""
    resolved = endpoint_name(name, file)
    with reported():
        ml_client(url, home).batch_endpoints.begin_delete(resolved).result()
    console.print(f"deleted batch endpoint {resolved}")


@app.command("invoke")
def endpoint_invoke(
    input: Annotated[str, typer.Option("--input", help="A local file or folder (uploaded), an azureml:// URI or a data asset.")],  # noqa: A002
    name: Name = None,
    file: File = None,
    deployment_name: Annotated[str | None, typer.Option("--deployment-name", "-d", help="Instead of the default deployment.")] = None,
    mini_batch_size: Annotated[int | None, typer.Option(help="Files per mini-batch for this job.")] = None,
    instance_count: Annotated[int | None, typer.Option(help="Instances for this job.")] = None,
    wait: Annotated[bool, typer.Option(help="Follow the job with a progress bar until it ends.")] = False,
    url: Url = None,
    home: Home = None,
) -> None:
    """Start a batch job; a local --input is uploaded to the workspace's default datastore first."""
    from azure.ai.ml import Input

    resolved = endpoint_name(name, file)
    overrides: list[dict[str, Any]] = []
    if mini_batch_size:
        overrides.append({"mini_batch_size": mini_batch_size})
    if instance_count:
        overrides.append({"compute.instance_count": instance_count})
    local = Path(input).expanduser()
    kind = "uri_file" if local.is_file() else "uri_folder"
    path = str(local.resolve()) if local.exists() else input
    with reported():
        job = ml_client(url, home).batch_endpoints.invoke(
            endpoint_name=resolved, deployment_name=deployment_name, input=Input(type=kind, path=path),
            params_override=overrides,
        )
    console.print(f"job [bold]{job.name}[/bold] {job.status}")
    if wait:
        raise typer.Exit(follow(connect(url, home), job.name))


@app.command("list-jobs")
def endpoint_list_jobs(name: Name = None, file: File = None, url: Url = None, home: Home = None) -> None:
    """The endpoint's batch jobs."""
    resolved = endpoint_name(name, file)
    with reported():
        jobs = list(ml_client(url, home).batch_endpoints.list_jobs(resolved))
    table = Table("status")
    table.add_column("name", no_wrap=True)
    for job in jobs:
        table.add_row(job.status, job.name)
    console.print(table)
