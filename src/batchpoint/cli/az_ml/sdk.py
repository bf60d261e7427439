"""What the ``az ml``-spelled verbs share: azure-ai-ml's ``MLClient`` pointed at the server, and ``verb``, which
gives every command ``az``'s global options (``--query``, ``-o``, ``-g``, ``-w``, ``--subscription``) plus
batchpoint's ``--url``/``--home``, and prints what the command returns.

A thin layer over ``azure-ai-ml`` (the optional ``batchpoint[cli]`` dependencies): its loaders read the YAML, so the
semantics of every field are Azure's by construction, and its ``MLClient``, pointed at the batchpoint server the way
docs/azure-sdk.md shows, resolves ``azureml:`` references and uploads local ``code:``, ``model:`` and ``path:``
entries through the server's blob API.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from batchpoint.cli.az_ml.output import Format, render
from batchpoint.cli.az_ml.yaml_files import fail, reported
from batchpoint.cli.client import BatchpointClient, Target
from batchpoint.cli.common import Home, Url, errors

if TYPE_CHECKING:
    from azure.ai.ml import MLClient

FAR_FUTURE = 4102444800
MISSING_SDK = "The YAML commands need azure-ai-ml: pip install 'batchpoint[cli]'"
CLOUD_VARIABLE = "AZUREML_CURRENT_CLOUD"

YamlFile = Annotated[Path, typer.Option("--file", "-f", exists=True, dir_okay=False, help="An az ml YAML file.")]
File = Annotated[
    Path | None, typer.Option("--file", "-f", exists=True, dir_okay=False, help="An az ml YAML file that names it.")
]
Sets = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a field, e.g. settings.mini_batch_size=10 (repeatable)."),
]
Name = Annotated[str | None, typer.Option("--name", "-n", help="The name (default: the YAML file's name:).")]
EndpointName = Annotated[
    str | None,
    typer.Option("--endpoint-name", "--endpoint", "-e", help="The endpoint (default: the YAML file's endpoint_name:)."),
]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not prompt for confirmation.")]


def require_sdk() -> None:
    """azure-ai-ml is optional and heavy: every command of these groups checks for it first, and imports it lazily.

    ``AZUREML_CURRENT_CLOUD`` is dropped first: azure-ai-ml reads it at import time and fails on a cloud it does not
    know, and sets it itself in any process that made an ``MLClient`` for a custom cloud, so a shell started from
    such a process would break every verb. These commands always name their cloud explicitly."""
    if importlib.util.find_spec("azure.ai.ml") is None:
        errors().print(MISSING_SDK, style="red", markup=False)
        raise typer.Exit(2)
    os.environ.pop(CLOUD_VARIABLE, None)


def group(help: str) -> typer.Typer:  # noqa: A002
    return typer.Typer(help=help, no_args_is_help=True, callback=require_sdk)


# --- Connecting MLClient to the server -----------------------------------------------------------------------------


class StaticToken:
    """The credential MLClient asks for: the token of ``batchpoint.cli.client.Target``, which the other commands send
    too (the one place that decides which token the CLI uses)."""

    def __init__(self, token: str) -> None:
        self.token = token

    def get_token(self, *_scopes: str, **_kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(self.token, FAR_FUTURE)


def ml_client(target: Target) -> MLClient:
    """MLClient on a custom cloud whose every endpoint is the server, trusting the server's own CA."""
    from azure.ai.ml import MLClient

    from batchpoint.cli.az_ml.plain_http import plain_http_options

    verify = target.verify()
    if isinstance(verify, str):
        os.environ["REQUESTS_CA_BUNDLE"] = verify  # the blob and invoke pipelines read it too, not only ARM
    base = target.url
    metadata = dict.fromkeys(
        ("azure_portal", "resource_manager", "active_directory", "aml_resource_id", "registry_discovery_endpoint"), base
    )
    return MLClient(
        target.credential(StaticToken),
        target.subscription,
        target.resource_group,
        target.workspace,
        cloud="batchpoint",
        cloud_metadata={**metadata, "storage_endpoint": "core.windows.net"},
        enable_telemetry=False,
        **plain_http_options(base),
    )


@dataclass
class Session:
    """The server and workspace one command talks to, from its options."""

    url: str | None = None
    home: Path | None = None
    subscription: str | None = None
    resource_group: str | None = None
    workspace: str | None = None

    @cached_property
    def target(self) -> Target:
        target = Target(home=self.home)
        for name in ("url", "subscription", "resource_group", "workspace"):
            if getattr(self, name):
                setattr(target, name, getattr(self, name))
        return target

    @cached_property
    def ml(self) -> MLClient:
        return ml_client(self.target)

    @cached_property
    def rest(self) -> BatchpointClient:
        return BatchpointClient(self.target)


# --- One decorator for every verb: az's global options, the session, the output -------------------------------------


def _option(name: str, annotation: Any, default: Any = None) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


GLOBAL_OPTIONS = [
    _option("query", Annotated[str | None, typer.Option("--query", help="JMESPath query over the result (as az).")]),
    _option("output", Annotated[Format, typer.Option("--output", "-o", help="Output format (as az).")], Format.json),
    _option("resource_group", Annotated[str | None, typer.Option("--resource-group", "-g", help="Resource group.")]),
    _option("workspace_name", Annotated[str | None, typer.Option("--workspace-name", "-w", help="Workspace.")]),
    _option("subscription", Annotated[str | None, typer.Option("--subscription", help="Subscription id.")]),
    _option("url", Url),
    _option("home", Home),
]


def verb(app: typer.Typer, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``function(session, **options)`` as ``app``'s command ``name``: it gets the global options, its
    SDK and server errors become one line on stderr (exit 2), and what it returns is printed per ``--query``/``-o``
    (``None``: nothing)."""

    def register(function: Callable[..., Any]) -> Callable[..., Any]:
        own = [
            parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY)
            for parameter in inspect.signature(function, eval_str=True).parameters.values()
            if parameter.name != "session"
        ]

        @functools.wraps(function)
        def command(**kwargs: Any) -> None:
            query, output = kwargs.pop("query"), kwargs.pop("output")
            session = Session(
                kwargs.pop("url"),
                kwargs.pop("home"),
                kwargs.pop("subscription"),
                kwargs.pop("resource_group"),
                kwargs.pop("workspace_name"),
            )
            with reported():
                result = function(session, **kwargs)
            render(result, query, output)

        parameters = [*own, *GLOBAL_OPTIONS]
        command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        command.__annotations__ = {parameter.name: parameter.annotation for parameter in parameters}
        app.command(name)(command)
        return function

    return register


def as_dict(entity: Any) -> Any:
    """An SDK entity as ``az ml`` prints it: its YAML field names (``_to_dict``), made JSON-able, with the REST
    enums as their values (``Completed``). On Python 3.11 azure-ai-ml's schemas turn an enum into
    ``str(member)``, ``JobStatus.COMPLETED``, which a script comparing ``--query status -o tsv`` would never match."""
    return _enum_values(json.loads(json.dumps(entity._to_dict(), default=_plain)))


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else str(value)


ENUM_TEXT = re.compile(r"([A-Z][A-Za-z0-9]*)\.([A-Z][A-Z0-9_]*)")


def _enum_values(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _enum_values(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_enum_values(item) for item in value]
    match = ENUM_TEXT.fullmatch(value) if isinstance(value, str) else None
    if match:
        from azure.ai.ml._restclient.arm_ml_service import models

        enum = getattr(models, match[1], None)
        if isinstance(enum, type) and issubclass(enum, Enum) and match[2] in enum.__members__:
            return enum[match[2]].value
    return value


def exists(get: Callable[[], Any]) -> Any:
    """What ``get`` returns, or ``None`` if the server says it does not exist."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        return get()
    except ResourceNotFoundError:
        return None


def check_existence(existing: Any, update: bool, label: str) -> None:
    """``create`` refuses to replace a working resource and ``update`` to create one, so that a wrong name is an
    error, not a new or a replaced resource. ``create`` does replace one whose provisioning failed, as ``az ml``
    does, so that the fixed YAML can simply be applied again."""
    if existing is not None and not update and getattr(existing, "provisioning_state", None) != "Failed":
        raise fail(f"{label} already exists; use update")
    if existing is None and update:
        raise fail(f"{label} does not exist; use create")


def required(value: str | None, what: str) -> str:
    if not value:
        raise typer.BadParameter(f"give {what} or a YAML file (-f) that names it")
    return value
