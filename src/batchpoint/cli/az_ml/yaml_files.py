"""az ml YAML files with ``--set`` and named options on top, loaded by azure-ai-ml's own loaders, and errors that
point at the YAML line (``file.yml:LINE: field: message``) or at the option that set the field."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from batchpoint.cli.common import errors


def parse_sets(sets: list[str]) -> list[tuple[str, str]]:
    """``--set a.b=v`` as (dotted key, value) pairs."""
    parsed = []
    for item in sets:
        key, equals, value = item.partition("=")
        if not equals or not key.strip():
            raise typer.BadParameter(f"expected key=value, got {item!r}", param_hint="--set")
        parsed.append((key.strip(), value))
    return parsed


@dataclass
class Source:
    """An az ml YAML file (or none: everything from options), the ``--set`` overrides on top of it, and the named
    options that set a field (``options={"name": ("--name", value)}``; ``None`` values are left out)."""

    file: Path | None
    sets: list[str] = field(default_factory=list)
    options: dict[str, tuple[str, Any]] = field(default_factory=dict)

    @property
    def given(self) -> dict[str, tuple[str, Any]]:
        return {key: (option, value) for key, (option, value) in self.options.items() if value is not None}

    @property
    def overrides(self) -> list[dict[str, Any]]:
        """azure-ai-ml's ``params_override``; values stay strings, the schema converts them. Options win."""
        return [{key: value} for key, value in parse_sets(self.sets)] + [
            {key: value} for key, (_, value) in self.given.items()
        ]

    def data(self) -> dict[str, Any]:
        """The file's top-level fields (empty without a file)."""
        import yaml

        if self.file is None:
            return {}
        with reported(self):
            return yaml.safe_load(self.file.read_text()) or {}

    def where(self, path: list[str | int]) -> str:
        """``file.yml:LINE`` of the node at ``path`` (or of its nearest ancestor), or the option that set it."""
        dotted = ".".join(str(part) for part in path)
        for key, (option, value) in self.given.items():
            if dotted == key or dotted.startswith(key + "."):
                return f"{option} {value}"
        for item in self.sets:
            key = item.partition("=")[0].strip()
            if dotted == key or dotted.startswith(key + "."):
                return f"--set {item}"
        return f"{self.file}:{yaml_line(self.file, path)}" if self.file else "(options)"


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


def field_errors(error: BaseException | None) -> Any:
    """The field-keyed messages of a marshmallow error: azure-ai-ml re-raises them as prose, keeping the original
    as the cause."""
    while error is not None:
        messages = getattr(error, "messages", None)
        if isinstance(messages, dict):
            return messages
        error = error.__cause__ or error.__context__
    return None


def fail(message: str) -> typer.Exit:
    """Print one red line on stderr; the caller raises the returned exit (code 2)."""
    errors().print(message, style="red", markup=False, soft_wrap=True)
    return typer.Exit(2)


@contextmanager
def reported(source: Source | None = None) -> Iterator[None]:
    """Turn YAML, validation and server errors into one readable line each on stderr, and exit 2."""
    import yaml
    from azure.ai.ml.exceptions import MlException
    from azure.core.exceptions import AzureError
    from marshmallow import ValidationError

    file = source.file if source else None
    try:
        yield
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        raise fail(f"{file or ''}:{mark.line + 1 if mark else 1}: {error.problem}") from None
    except ValidationError as error:
        messages = field_errors(error)
        if source is None or messages is None:
            raise fail(str(error)) from None
        for path, message in flatten(messages):
            errors().print(
                f"{source.where(path)}: {'.'.join(str(part) for part in path) or '(file)'}: {message}",
                style="red",
                markup=False,
                soft_wrap=True,
            )
        raise typer.Exit(2) from None
    except (AzureError, MlException) as error:
        raise fail(f"{file}: {described(error)}" if file else described(error)) from None


def described(error: Any) -> str:
    """A server error as ``Code: message`` (as `batchpoint jobs` shows them), other SDK errors as their message."""
    code = getattr(getattr(error, "error", None), "code", None)
    return f"{code}: {error.error.message}" if code else str(error.message)


def load(loader: Callable[..., Any], source: Source) -> Any:
    """The entity ``loader`` builds from the file and overrides; the YAML is parsed with line marks first so that
    syntax errors name their line."""
    import yaml

    with reported(source):
        if source.file is not None:
            yaml.compose(source.file.read_text(), Loader=yaml.SafeLoader)
        return loader(source.file, params_override=source.overrides)


def load_deployment(source: Source) -> Any:
    """``type: model`` and ``type: pipeline`` have loaders of their own (their ``settings:`` block); others the
    legacy flat batch deployment, as ``az ml`` does."""
    from azure.ai.ml import load_batch_deployment
    from azure.ai.ml.entities._load_functions import (
        load_model_batch_deployment,
        load_pipeline_component_batch_deployment,
    )

    kind = next((o["type"] for o in source.overrides if "type" in o), source.data().get("type"))
    loaders = {"model": load_model_batch_deployment, "pipeline": load_pipeline_component_batch_deployment}
    return load(loaders.get(kind, load_batch_deployment) if isinstance(kind, str) else load_batch_deployment, source)


def set_fields(entity: Any, sets: list[str]) -> Any:
    """``az``'s generic update: ``--set a.b=v`` on a resource read from the server (values parsed as JSON when
    they are JSON, else kept as strings), creating missing parents as dicts."""
    for key, text in parse_sets(sets):
        *parents, last = key.split(".")
        node = entity
        for part in parents:
            child = node.get(part) if isinstance(node, dict) else getattr(node, part, None)
            if child is None:
                child = {}
                _assign(node, part, child)
            node = child
        _assign(node, last, _json_or_text(text))
    return entity


def _assign(node: Any, key: str, value: Any) -> None:
    if isinstance(node, dict):
        node[key] = value
    else:
        setattr(node, key, value)


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text
