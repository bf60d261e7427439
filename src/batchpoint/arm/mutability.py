"""Create-only fields: set when a resource is created and never changed after.

The wire models mark them as the spec does (``x-ms-mutability`` with ``create`` and no ``update``: ``CreateOnly()``
in ``arm/wire.py``), and ``tests/arm/test_wire_format.py`` holds the models to the spec. Every long-running type's
PUT follows them here (``arm/tracked.py``), so no type writes the rule again: a PUT that leaves out an object
holding create-only fields keeps the stored one, one that leaves out a create-only field inside an object it sends
keeps that field's stored value (not its default), and one that changes a create-only field is refused. An empty
object is the same as none: azure-ai-ml sends ``resources.properties: {}``; ARM ids are the same in any casing
(docs/management-plane.md, Requests).
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from batchpoint.arm.errors import bad_request
from batchpoint.arm.wire import MUTABILITY, models_in

Path = tuple[str, ...]
ARM_ID_START = "/subscriptions/"


@dataclass(frozen=True)
class CreateOnlyFields:
    """The create-only fields of a resource's ``properties`` that it returns (those it never returns, such as an
    endpoint's keys, are kept by their type's rules with its secrets)."""

    paths: tuple[Path, ...]

    @classmethod
    def of(cls, annotation: Any) -> CreateOnlyFields:
        """The fields below the models ``annotation`` names (the ``properties`` of a resource's wire model)."""
        return cls(tuple(dict.fromkeys(_paths(annotation, ()))))

    @classmethod
    def of_resource(cls, model: type[BaseModel]) -> CreateOnlyFields:
        """The fields of a resource's wire model (those of its ``properties``)."""
        return cls.of(model.model_fields["properties"].annotation)

    def unsent(self, properties: BaseModel | None, requested: dict[str, Any]) -> dict[str, Any]:
        """``requested`` (``properties`` as dumped, defaults filled in) without the nested create-only fields that
        the client left out of an object it sent: their defaults are not a value asked for (``resources`` without
        ``instanceCount`` keeps the stored count, not 1)."""
        left_out = [path for path in self.paths if len(path) > 1 and _unset(properties, path)]
        if not left_out:
            return requested
        requested = _copy(requested, left_out)
        for path in left_out:
            parent = value_at(requested, path[:-1])
            if isinstance(parent, dict):
                parent.pop(path[-1], None)
        return requested

    def keep(self, requested: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
        """``requested``, with the stored value of each object holding create-only fields that it leaves out, and
        of each create-only field it leaves out (or sends empty) inside an object it sends, or sends as the same ARM
        id in another casing (so re-sending it is no change)."""
        kept = {path[0] for path in self.paths if requested.get(path[0]) is None and before.get(path[0]) is not None}
        requested = {**requested, **{name: before[name] for name in kept}}
        stored = [
            path
            for path in self.paths
            if isinstance(value_at(requested, path[:-1]), dict)
            and not _empty(value_at(before, path))
            and (
                _empty(value_at(requested, path))
                or value_at(requested, path) != value_at(before, path)
                and _same(before, requested, path)
            )
        ]
        if not stored:
            return requested
        requested = _copy(requested, stored)
        for path in stored:
            value_at(requested, path[:-1])[path[-1]] = value_at(before, path)
        return requested

    def check(self, before: dict[str, Any], after: dict[str, Any]) -> None:
        """Refuse ``after`` when it changes a create-only field of ``before``."""
        for path in self.paths:
            refuse_change(".".join(("properties", *path)), value_at(before, path), value_at(after, path))


def refuse_change(field: str, before: Any, after: Any) -> None:
    if not same_value(before, after):
        raise bad_request(
            f"'{field}' can only be set when the resource is created (it is {before!r}); delete and recreate the "
            "resource to change it."
        )


def _paths(annotation: Any, below: Path) -> list[Path]:
    found: list[Path] = []
    for model in models_in(annotation):
        for name, field in model.model_fields.items():
            extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
            allowed = typing.cast(list[str], extra.get(MUTABILITY, []))
            path = (*below, field.alias or name)
            if "create" not in allowed or "update" in allowed:
                found += _paths(field.annotation, path)
            elif "read" in allowed:
                found.append(path)
    return found


def value_at(document: dict[str, Any], path: Path) -> Any:
    value: Any = document
    for name in path:
        value = value.get(name) if isinstance(value, dict) else None
    return value


def same_value(before: Any, after: Any) -> bool:
    """Whether a create-only field keeps its value: ARM resource ids (``/subscriptions/...``) are compared without
    regard to case, as ARM matches them; ``{}`` is the same as none; anything else must be equal."""
    if isinstance(before, str) and isinstance(after, str) and before.lower().startswith(ARM_ID_START):
        return before.lower() == after.lower()
    return before == after or _empty(before) and _empty(after)


def _same(before: dict[str, Any], after: dict[str, Any], path: Path) -> bool:
    return same_value(value_at(before, path), value_at(after, path))


def _empty(value: Any) -> bool:
    """Absent, null and ``{}`` are one value: no object."""
    return value is None or value == {}


def _copy(document: dict[str, Any], paths: list[Path]) -> dict[str, Any]:
    """``document`` with the objects along ``paths`` copied, so they can be changed without changing the caller's."""
    document = dict(document)
    for path in paths:
        node = document
        for name in path[:-1]:
            if not isinstance(node.get(name), dict):
                break
            node[name] = dict(node[name])
            node = node[name]
    return document


def _unset(model: BaseModel | None, path: Path) -> bool:
    """Whether the validated ``model`` holds the object above ``path`` but the client did not set its last field."""
    for name in path[:-1]:
        model = getattr(model, _attribute(model, name), None) if isinstance(model, BaseModel) else None
    return isinstance(model, BaseModel) and _attribute(model, path[-1]) not in model.model_fields_set


def _attribute(model: BaseModel, alias: str) -> str:
    fields = type(model).model_fields
    return next((name for name, field in fields.items() if (field.alias or name) == alias), alias)
