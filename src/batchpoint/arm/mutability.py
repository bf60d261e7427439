"""Create-only fields: set when a resource is created and never changed after.

The wire models mark them as the spec does (``x-ms-mutability`` with ``create`` and no ``update``: ``CreateOnly()``
in ``arm/wire.py``), and ``tests/arm/test_wire_format.py`` holds the models to the spec. Every long-running type's
PUT follows them here (``arm/tracked.py``), so no type writes the rule again: a PUT that leaves out an object
holding create-only fields keeps the stored one, and one that changes a create-only field is refused.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any

from batchpoint.arm.errors import bad_request
from batchpoint.arm.wire import MUTABILITY, models_in

Path = tuple[str, ...]


@dataclass(frozen=True)
class CreateOnlyFields:
    """The create-only fields of a resource's ``properties`` that it returns (those it never returns, such as an
    endpoint's keys, are kept by their type's rules with its secrets)."""

    paths: tuple[Path, ...]

    @classmethod
    def of(cls, annotation: Any) -> CreateOnlyFields:
        """The fields below the models ``annotation`` names (the ``properties`` of a resource's wire model)."""
        return cls(tuple(dict.fromkeys(_paths(annotation, ()))))

    def keep(self, requested: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
        """``requested``, with the stored value of each object holding create-only fields that it leaves out."""
        kept = {path[0] for path in self.paths if requested.get(path[0]) is None and before.get(path[0]) is not None}
        return {**requested, **{name: before[name] for name in kept}}

    def check(self, before: dict[str, Any], after: dict[str, Any]) -> None:
        """Refuse ``after`` when it changes a create-only field of ``before``."""
        for path in self.paths:
            refuse_change(".".join(("properties", *path)), _at(before, path), _at(after, path))


def refuse_change(field: str, before: Any, after: Any) -> None:
    if before != after:
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


def _at(document: dict[str, Any], path: Path) -> Any:
    value: Any = document
    for name in path:
        value = value.get(name) if isinstance(value, dict) else None
    return value
