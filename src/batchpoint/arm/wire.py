"""Building blocks: strict models, case-insensitive enums, read-only fields."""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

E = TypeVar("E", bound=Enum)


class WireModel(BaseModel):
    """A schema with ``additionalProperties: false``: unknown keys are refused."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class OpenModel(BaseModel):
    """A common-types schema that declares no ``additionalProperties`` (extra keys are kept)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


def enum_canonicalizer(enum_type: type[Enum]) -> Callable[[Any], Any]:
    """A function that turns a value of the enum in any casing into the canonical one; others pass unchanged."""
    by_lower = {member.value.lower(): member.value for member in enum_type}

    def canonicalize(value: Any) -> Any:
        if isinstance(value, str):
            return by_lower.get(value.lower(), value)
        return value

    return canonicalize


def canonical_enum(enum_type: type[Enum]) -> BeforeValidator:
    """Accept an enum value in any casing and hand pydantic the canonical one (the SDK sends ``aadToken``)."""
    return BeforeValidator(enum_canonicalizer(enum_type))


if TYPE_CHECKING:
    # To a type checker the field holds the enum itself.
    CaseInsensitive = Annotated[E, "case-insensitive"]
else:

    class CaseInsensitive:
        """``CaseInsensitive[SomeEnum]``: the enum, taken in any casing (see :func:`canonical_enum`)."""

        def __class_getitem__(cls, enum_type: type[Enum]) -> Any:
            return Annotated[enum_type, canonical_enum(enum_type)]


def ReadOnly(**kwargs: Any) -> Any:  # noqa: N802 - mirrors pydantic's Field
    """A server-set field: documented as readOnly, ignored when a client sends it."""
    return Field(default=None, json_schema_extra={"readOnly": True}, **kwargs)


Int32 = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]
"""The spec's ``format: int32``."""
Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
"""The spec's ``format: int64``."""

MUTABILITY = "x-ms-mutability"


def CreateOnly(readable: bool = True, **kwargs: Any) -> Any:  # noqa: N802 - mirrors pydantic's Field
    """A field set when the resource is created and never changed after (``x-ms-mutability`` create and read;
    ``arm/mutability.py`` refuses a change). Not ``readable``: accepted on create and never returned (create)."""
    return Field(json_schema_extra={MUTABILITY: ["create", "read"] if readable else ["create"]}, **kwargs)


def models_in(annotation: Any) -> list[type[BaseModel]]:
    """The models an annotation names as the value itself, through ``Annotated``, optionals and unions (not the
    items of lists or maps)."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return models_in(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return [model for argument in typing.get_args(annotation) for model in models_in(argument)]
    return [annotation] if isinstance(annotation, type) and issubclass(annotation, BaseModel) else []


StringMap = dict[str, str | None]


def _scalar_as_string(value: Any) -> Any:
    """JSON scalars become strings (booleans as ``true``/``false``); anything else is left for the type check."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if isinstance(value, int | float) else value


ScalarMap = dict[str, Annotated[str | None, BeforeValidator(_scalar_as_string)]]
"""A map of strings that also takes numbers and booleans, as strings."""
