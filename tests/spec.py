"""The 2025-12-01 spec extract (``azure-ml-arm/`` under ``$BATCHPOINT_SPEC_DIR``, by default ``../shared/reference``
beside the repository), and the comparison of a wire model with a definition of it.

A test that needs the extract fails when it is missing: the wire format is checked against it in CI, never
silently skipped.
"""

from __future__ import annotations

import json
import os
import types
import typing
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Any, Literal, Union

import pytest
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

REPOSITORY = Path(__file__).resolve().parents[1]
SPEC_DIR = Path(os.environ.get("BATCHPOINT_SPEC_DIR", REPOSITORY.parent / "shared" / "reference"))
"""The folder holding ``azure-ml-arm/`` (the extract, its examples and the common types)."""
EXTRACT = "batch-subset.json"
ALL = frozenset({"create", "read", "update"})


def reference(*parts: str) -> Path:
    """A file or folder of the extract; the calling test fails (not skips) when it is missing."""
    path = SPEC_DIR.joinpath("azure-ml-arm", *parts)
    if not path.exists():
        pytest.fail(f"{path} is missing: set BATCHPOINT_SPEC_DIR to the folder that holds azure-ml-arm/")
    return path


@cache
def spec() -> Spec:
    return Spec(json.loads(reference(EXTRACT).read_text()))


class Spec:
    """A Swagger 2.0 document: its operations, and its definitions with their ``allOf`` parents folded in."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.definitions: dict[str, Any] = document["definitions"]

    def operations(self) -> dict[str, tuple[str, str, dict[str, Any]]]:
        """Each operation by id: its method, path and description."""
        return {
            operation["operationId"]: (method.upper(), path, operation)
            for path, item in self.document["paths"].items()
            for method, operation in item.items()
        }

    def properties(self, name: str) -> dict[str, Any]:
        """A definition's properties, its ``allOf`` parents' first."""
        definition = self.definitions[name]
        found: dict[str, Any] = {}
        for parent in definition.get("allOf", []):
            found |= self.properties(ref_name(parent))
        return found | definition.get("properties", {})

    def required(self, name: str) -> set[str]:
        definition = self.definitions[name]
        parents = [self.required(ref_name(parent)) for parent in definition.get("allOf", [])]
        return set(definition.get("required", [])).union(*parents)

    def discriminator(self, name: str) -> str | None:
        definition = self.definitions[name]
        if "discriminator" in definition:
            return str(definition["discriminator"])
        return next(
            (found for parent in definition.get("allOf", []) if (found := self.discriminator(ref_name(parent)))), None
        )

    def subtype(self, base: str, value: str) -> str | None:
        """The definition that extends ``base`` for discriminator ``value``."""
        for name, definition in self.definitions.items():
            parents = {ref_name(parent) for parent in definition.get("allOf", [])}
            if base in parents and definition.get("x-ms-discriminator-value") == value:
                return name
        return None

    def enum(self, schema: dict[str, Any]) -> set[str] | None:
        target = self.definitions[ref_name(schema)] if "$ref" in schema else schema
        return set(target["enum"]) if "enum" in target else None

    def compare(self, model: type[BaseModel], name: str, where: str = "") -> list[str]:
        """How ``model`` differs from definition ``name``: property names, required, read-only, defaults, enums and
        x-ms-mutability, in it and in the models it holds."""
        where = where or f"{model.__name__} ~ {name}"
        properties, required = self.properties(name), self.required(name)
        fields = {field.alias or field_name: field for field_name, field in model.model_fields.items()}
        mismatches = [f"{where}.{each}: not in the model" for each in sorted(properties.keys() - fields.keys())]
        mismatches += [f"{where}.{each}: not in the spec" for each in sorted(fields.keys() - properties.keys())]
        discriminator = self.discriminator(name)
        for each in sorted(properties.keys() & fields.keys()):
            mismatches += self._compare_field(fields[each], properties[each], each in required, f"{where}.{each}")
            if each != discriminator:
                mismatches += self._compare_enum(fields[each], properties[each], f"{where}.{each}")
        return mismatches

    def _compare_field(self, field: FieldInfo, schema: dict[str, Any], required: bool, where: str) -> list[str]:
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        facts = {
            "required": (field.is_required(), required),
            "readOnly": (bool(extra.get("readOnly")), bool(schema.get("readOnly"))),
            "default": (_default(field), schema.get("default")),
            "x-ms-mutability": (sorted(_mutability(extra)), sorted(_mutability(schema))),
        }
        mismatches = [f"{where}: {fact} is {ours!r}, the spec's {theirs!r}" for fact, (ours, theirs) in facts.items()]
        mismatches = [line for line, (ours, theirs) in zip(mismatches, facts.values(), strict=True) if ours != theirs]
        return mismatches + self._compare_nested(field.annotation, schema, where)

    def _compare_enum(self, field: FieldInfo, schema: dict[str, Any], where: str) -> list[str]:
        theirs = self.enum(schema)
        enums = [each for each in _leaves(field.annotation) if isinstance(each, type) and issubclass(each, Enum)]
        ours = {member.value for member in enums[0]} if enums else None
        return [] if ours == theirs else [f"{where}: enum is {_sorted(ours)}, the spec's {_sorted(theirs)}"]

    def _compare_nested(self, annotation: Any, schema: dict[str, Any], where: str) -> list[str]:
        models = [each for each in _leaves(annotation) if isinstance(each, type) and issubclass(each, BaseModel)]
        target = schema.get("items") or schema.get("additionalProperties") or schema
        if not models or not isinstance(target, dict) or "$ref" not in target:
            return []
        name = ref_name(target)
        discriminator = self.definitions[name].get("discriminator")
        if discriminator is None:
            return self.compare(models[0], name, f"{where}({name})")
        mismatches = []
        for model in models:
            value = _literal(model.model_fields[discriminator].annotation)
            if value not in (self.enum(self.properties(name)[discriminator]) or {value}):
                mismatches.append(f"{where}: {model.__name__}'s {discriminator} {value!r} is not one of {name}'s")
                continue
            subtype = self.subtype(name, value) or name  # a value without a subtype of its own takes the base
            mismatches += self.compare(model, subtype, f"{where}({subtype})")
        return mismatches


def ref_name(schema: dict[str, Any]) -> str:
    return str(schema["$ref"]).rsplit("/", 1)[-1]


def _leaves(annotation: Any) -> list[Any]:
    """The types an annotation is made of, through ``Annotated``, ``Optional``, unions, lists and maps."""
    origin = typing.get_origin(annotation)
    if origin is None:
        return [annotation]
    if origin is typing.Annotated:
        return _leaves(typing.get_args(annotation)[0])
    if origin is Literal:
        return [annotation]
    arguments = typing.get_args(annotation)
    if origin in (Union, types.UnionType, list, dict):
        return [leaf for argument in arguments for leaf in _leaves(argument)]
    return [annotation]


def _literal(annotation: Any) -> str | None:
    for leaf in _leaves(annotation):
        if typing.get_origin(leaf) is Literal:
            return str(typing.get_args(leaf)[0])
    return None


def _default(field: FieldInfo) -> Any:
    default = field.get_default(call_default_factory=False)
    if default in (None, PydanticUndefined) or field.is_required():
        return None
    return default.value if isinstance(default, Enum) else default


def _mutability(schema: dict[str, Any]) -> frozenset[str]:
    """What a property allows: its x-ms-mutability; without one, read only when read-only, else everything."""
    if "x-ms-mutability" in schema:
        return frozenset(schema["x-ms-mutability"])
    return frozenset({"read"}) if schema.get("readOnly") else ALL


def _sorted(values: set[str] | None) -> list[str] | None:
    return sorted(values) if values is not None else None
