"""The ``az ml`` verbs on the same YAML files: ``batchpoint batch-endpoint|batch-deployment|model|environment|data``.

A thin layer over ``azure-ai-ml`` (the optional ``batchpoint[cli]`` dependencies): its loaders read the YAML, so the
semantics of every field are Azure's by construction, and its ``MLClient``, pointed at the batchpoint server the way
docs/azure-sdk.md shows, resolves ``azureml:`` references and uploads local ``code:``, ``model:`` and ``path:``
entries through the server's blob API. What this module adds: ``--set`` overrides, validation errors that name the
YAML line (``file.yml:LINE: field: message``), and ``invoke --wait`` with the runtime CLI's progress bar.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from batchpoint.cli_jobs import Home, Url, connect, console, follow

if TYPE_CHECKING:
    from azure.ai.ml import MLClient

FAR_FUTURE = 4102444800
MISSING_SDK = "The YAML commands need azure-ai-ml: pip install 'batchpoint[cli]'"
YamlFile = Annotated[Path, typer.Option("--file", "-f", exists=True, dir_okay=False, help="An az ml YAML file.")]
File = Annotated[
    Path | None, typer.Option("--file", "-f", exists=True, dir_okay=False, help="An az ml YAML file that names it.")
]
Sets = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a YAML field, e.g. settings.mini_batch_size=10 (repeatable)."),
]
Name = Annotated[str | None, typer.Option("--name", "-n", help="The name (default: the YAML file's name:).")]
EndpointName = Annotated[
    str | None, typer.Option("--endpoint-name", "-e", help="The endpoint (default: the YAML file's endpoint_name:).")
]


def require_sdk() -> None:
    """azure-ai-ml is optional and heavy: every command of these groups checks for it first, and imports it lazily."""
    if importlib.util.find_spec("azure.ai.ml") is None:
        console.print(MISSING_SDK, style="red", markup=False)
        raise typer.Exit(2)


def group(help: str) -> typer.Typer:  # noqa: A002
    return typer.Typer(help=help, no_args_is_help=True, callback=require_sdk)


endpoint_app = group("Batch endpoints from az ml YAML files.")
deployment_app = group("Batch deployments from az ml YAML files.")
model_app = group("Register models from az ml YAML files.")
environment_app = group("Register environments from az ml YAML files.")
data_app = group("Register data assets from az ml YAML files.")


# --- Connecting MLClient to the server -----------------------------------------------------------------------------


class StaticToken:
    """The credential MLClient asks for: the token of ``batchpoint.client.Target``, which the other commands send
    too (the one place that decides which token the CLI uses)."""

    def __init__(self, token: str) -> None:
        self.token = token

    def get_token(self, *_scopes: str, **_kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(self.token, FAR_FUTURE)


def ml_client(url: str | None, home: Path | None) -> MLClient:
    """MLClient on a custom cloud whose every endpoint is the server, trusting the server's own CA."""
    from azure.ai.ml import MLClient

    target = connect(url, home).target  # the same server, certificate and token as `batchpoint jobs`
    verify = target.verify()
    if isinstance(verify, str):
        os.environ["REQUESTS_CA_BUNDLE"] = verify  # the blob and invoke pipelines read it too, not only ARM
    base = target.url
    metadata = {key: base for key in ("azure_portal", "resource_manager", "active_directory", "aml_resource_id",
                                      "registry_discovery_endpoint")}
    return MLClient(
        StaticToken(target.token), target.subscription, target.resource_group, target.workspace,
        cloud="batchpoint", cloud_metadata={**metadata, "storage_endpoint": "core.windows.net"}, enable_telemetry=False,
    )


# --- Loading YAML, and errors that point at its lines --------------------------------------------------------------


@dataclass
class Source:
    """An az ml YAML file and the ``--set`` overrides applied on top of it."""

    file: Path
    sets: list[str] = field(default_factory=list)

    @property
    def overrides(self) -> list[dict[str, str]]:
        """``--set a.b=v`` as azure-ai-ml's ``params_override``; values stay strings, the schema converts them."""
        parsed = []
        for item in self.sets:
            key, equals, value = item.partition("=")
            if not equals or not key:
                raise typer.BadParameter(f"expected key=value, got {item!r}", param_hint="--set")
            parsed.append({key.strip(): value})
        return parsed

    def where(self, path: list[str | int]) -> str:
        """``file.yml:LINE`` of the node at ``path`` (or of its nearest ancestor), or the ``--set`` that set it."""
        dotted = ".".join(str(part) for part in path)
        for item in self.sets:
            key = item.partition("=")[0].strip()
            if dotted == key or dotted.startswith(key + "."):
                return f"--set {item}"
        return f"{self.file}:{yaml_line(self.file, path)}"


def yaml_line(file: Path, path: list[str | int]) -> int:
    """The 1-based line of the deepest node of ``path`` found in the YAML; a key's own line for mapping entries."""
    import yaml

    node = yaml.compose(file.read_text(), Loader=yaml.SafeLoader)
    line = 1
    for part in path:
        if isinstance(node, yaml.MappingNode):
            entry = next(((key, value) for key, value in node.value if key.value == str(part)), None)
            if entry is None:
                break
            line, node = entry[0].start_mark.line + 1, entry[1]
        elif isinstance(node, yaml.SequenceNode) and str(part).isdigit() and int(part) < len(node.value):
            node = node.value[int(part)]
            line = node.start_mark.line + 1
        else:
            break
    return line


def flatten(messages: Any, path: list[str | int] | None = None) -> Iterator[tuple[list[str | int], str]]:
    """marshmallow's nested ``{field: [message] | {...}}`` as (field path, message) pairs."""
    path = path or []
    if isinstance(messages, dict):
        for key, value in messages.items():
            yield from flatten(value, path if key == "_schema" else [*path, key])
    elif isinstance(messages, list):
        for item in messages:
            yield from flatten(item, path)
    else:
        yield path, str(messages)


def field_errors(error: BaseException) -> Any:
    """The field-keyed messages of a marshmallow error: azure-ai-ml re-raises them as prose, keeping the original
    as the cause."""
    while error is not None:
        if isinstance(getattr(error, "messages", None), dict):
            return error.messages  # type: ignore[attr-defined]
        error = error.__cause__ or error.__context__  # type: ignore[assignment]
    return None


@contextmanager
def reported(source: Source | None = None) -> Iterator[None]:
    """Turn YAML, validation and server errors into one readable line each, and exit 2."""
    import yaml
    from azure.core.exceptions import AzureError
    from marshmallow import ValidationError

    try:
        yield
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else 1
        console.print(f"{source.file if source else ''}:{line}: {error.problem}", style="red", markup=False)
        raise typer.Exit(2) from None
    except ValidationError as error:
        messages = field_errors(error)
        if source is None or messages is None:
            console.print(f"[red]{error}[/red]", markup=False)
        else:
            for path, message in flatten(messages):
                dotted = ".".join(str(part) for part in path) or "(file)"
                console.print(f"{source.where(path)}: {dotted}: {message}", style="red", markup=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except AzureError as error:
        prefix = f"{source.file}: " if source else ""
        console.print(f"{prefix}{described(error)}", style="red", markup=False, soft_wrap=True)
        raise typer.Exit(2) from None


def described(error: Any) -> str:
    """A server error as ``Code: message`` (as `batchpoint jobs` shows them), other SDK errors as their message."""
    odata = getattr(error, "error", None)
    return f"{odata.code}: {odata.message}" if getattr(odata, "code", None) else str(error.message)


def load(loader: Callable[..., Any], source: Source) -> Any:
    """The entity ``loader`` builds from the file and overrides; the YAML is parsed with line marks first so that
    syntax errors name their line."""
    import yaml

    with reported(source):
        yaml.compose(source.file.read_text(), Loader=yaml.SafeLoader)
        return loader(source.file, params_override=source.overrides)


def load_deployment(source: Source) -> Any:
    """``type: model`` and ``type: pipeline`` have loaders of their own (their ``settings:`` block); others the
    legacy flat batch deployment, as ``az ml`` does."""
    import yaml
    from azure.ai.ml import load_batch_deployment
    from azure.ai.ml.entities._load_functions import (
        load_model_batch_deployment,
        load_pipeline_component_batch_deployment,
    )

    with reported(source):
        kind = (yaml.safe_load(source.file.read_text()) or {}).get("type")
    overridden = next((o["type"] for o in source.overrides if "type" in o), kind)
    loaders = {"model": load_model_batch_deployment, "pipeline": load_pipeline_component_batch_deployment}
    return load(loaders.get(overridden, load_batch_deployment), source)


def required(value: str | None, what: str) -> str:
    if not value:
        raise typer.BadParameter(f"give {what} or a YAML file (-f) that names it")
    return value


def show(entity: Any) -> None:
    """The resource as JSON, with the YAML files' field names: what ``az ml`` prints (the entities' own ``dump``
    is not implemented for every kind)."""
    console.print_json(json.dumps(entity._to_dict(), default=str))


def exists(get: Callable[[], Any]) -> bool:
    from azure.core.exceptions import ResourceNotFoundError

    try:
        get()
        return True
    except ResourceNotFoundError:
        return False


def check_existence(present: bool, should_exist: bool, label: str) -> None:
    """``create`` refuses to replace and ``update`` to create, so that a wrong name is an error, not a new or a
    replaced resource."""
    if present and not should_exist:
        console.print(f"[red]{label} already exists; use update[/red]")
        raise typer.Exit(2)
    if not present and should_exist:
        console.print(f"[red]{label} does not exist; use create[/red]")
        raise typer.Exit(2)


# --- batch-endpoint ------------------------------------------------------------------------------------------------


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


@endpoint_app.command("create")
def endpoint_create(file: YamlFile, name: Name = None, set_: Sets = None, url: Url = None, home: Home = None) -> None:
    """Create a batch endpoint from a YAML file."""
    put_endpoint(file, name, set_, url, home, update=False)


@endpoint_app.command("update")
def endpoint_update(file: YamlFile, name: Name = None, set_: Sets = None, url: Url = None, home: Home = None) -> None:
    """Update an existing batch endpoint from a YAML file."""
    put_endpoint(file, name, set_, url, home, update=True)


@endpoint_app.command("show")
def endpoint_show(name: Name = None, file: File = None, url: Url = None, home: Home = None) -> None:
    """Show a batch endpoint."""
    resolved = endpoint_name(name, file)
    with reported():
        show(ml_client(url, home).batch_endpoints.get(resolved))


@endpoint_app.command("list")
def endpoint_list(url: Url = None, home: Home = None) -> None:
    """The workspace's batch endpoints."""
    table = Table("name", "default deployment", "scoring URI")
    with reported():
        for endpoint in ml_client(url, home).batch_endpoints.list():
            default = getattr(endpoint.defaults, "deployment_name", None)
            table.add_row(endpoint.name, default or "", endpoint.scoring_uri or "")
    console.print(table)


@endpoint_app.command("delete")
def endpoint_delete(name: Name = None, file: File = None, url: Url = None, home: Home = None) -> None:
    """Delete a batch endpoint and its deployments."""
    resolved = endpoint_name(name, file)
    with reported():
        ml_client(url, home).batch_endpoints.begin_delete(resolved).result()
    console.print(f"deleted batch endpoint {resolved}")


@endpoint_app.command("invoke")
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


@endpoint_app.command("list-jobs")
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


# --- batch-deployment ----------------------------------------------------------------------------------------------


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


@deployment_app.command("create")
def deployment_create(file: YamlFile, name: Name = None, endpoint_name: EndpointName = None, set_: Sets = None,
                      set_default: SetDefault = False, url: Url = None, home: Home = None) -> None:
    """Create a batch deployment from a YAML file (local code and models are uploaded)."""
    put_deployment(file, name, endpoint_name, set_, set_default, url, home, update=False)


@deployment_app.command("update")
def deployment_update(file: YamlFile, name: Name = None, endpoint_name: EndpointName = None, set_: Sets = None,
                      set_default: SetDefault = False, url: Url = None, home: Home = None) -> None:
    """Update an existing batch deployment from a YAML file."""
    put_deployment(file, name, endpoint_name, set_, set_default, url, home, update=True)


@deployment_app.command("show")
def deployment_show(name: Name = None, endpoint_name: EndpointName = None, file: File = None, url: Url = None,
                    home: Home = None) -> None:
    """Show a batch deployment."""
    endpoint, deployment = deployment_names(name, endpoint_name, file)
    with reported():
        show(ml_client(url, home).batch_deployments.get(deployment, endpoint))


@deployment_app.command("list")
def deployment_list(endpoint_name: EndpointName = None, file: File = None, url: Url = None, home: Home = None) -> None:
    """The endpoint's batch deployments."""
    endpoint = endpoint_name or (load_deployment(Source(file)).endpoint_name if file else None)
    table = Table("name", "state", "model")
    with reported():
        for deployment in ml_client(url, home).batch_deployments.list(required(endpoint, "--endpoint-name")):
            table.add_row(deployment.name, deployment.provisioning_state or "", str(deployment.model or ""))
    console.print(table)


@deployment_app.command("delete")
def deployment_delete(name: Name = None, endpoint_name: EndpointName = None, file: File = None, url: Url = None,
                      home: Home = None) -> None:
    """Delete a batch deployment."""
    endpoint, deployment = deployment_names(name, endpoint_name, file)
    with reported():
        ml_client(url, home).batch_deployments.begin_delete(deployment, endpoint).result()
    console.print(f"deleted batch deployment {endpoint}/{deployment}")


# --- model, environment, data --------------------------------------------------------------------------------------


def register(loader_name: str, operations: str, file: Path, sets: list[str] | None, url: str | None,
             home: Path | None) -> None:
    """Create an asset version from a YAML file; a local ``path:`` or build context is uploaded by the SDK."""
    import azure.ai.ml

    source = Source(file, list(sets or []))
    asset = load(getattr(azure.ai.ml, loader_name), source)
    client = ml_client(url, home)
    with reported(source):
        show(getattr(client, operations).create_or_update(asset))


@model_app.command("create")
def model_create(file: YamlFile, set_: Sets = None, url: Url = None, home: Home = None) -> None:
    """Register a model version (a local path: is uploaded)."""
    register("load_model", "models", file, set_, url, home)


@environment_app.command("create")
def environment_create(file: YamlFile, set_: Sets = None, url: Url = None, home: Home = None) -> None:
    """Register an environment version."""
    register("load_environment", "environments", file, set_, url, home)


@data_app.command("create")
def data_create(file: YamlFile, set_: Sets = None, url: Url = None, home: Home = None) -> None:
    """Register a data asset version (a local path: is uploaded)."""
    register("load_data", "data", file, set_, url, home)


def add_to(app: typer.Typer) -> None:
    """Register the command groups on the ``batchpoint`` command."""
    app.add_typer(endpoint_app, name="batch-endpoint")
    app.add_typer(deployment_app, name="batch-deployment")
    app.add_typer(model_app, name="model")
    app.add_typer(environment_app, name="environment")
    app.add_typer(data_app, name="data")
