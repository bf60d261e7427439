"""What the ``az ml`` verbs share (``batchpoint batch-endpoint|batch-deployment|model|environment|data``).

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

from batchpoint.cli.common import connect, console

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


def register(loader_name: str, operations: str, file: Path, sets: list[str] | None, url: str | None,
             home: Path | None) -> None:
    """Create an asset version from a YAML file; a local ``path:`` or build context is uploaded by the SDK."""
    import azure.ai.ml

    source = Source(file, list(sets or []))
    asset = load(getattr(azure.ai.ml, loader_name), source)
    client = ml_client(url, home)
    with reported(source):
        show(getattr(client, operations).create_or_update(asset))
