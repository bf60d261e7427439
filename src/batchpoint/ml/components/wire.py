"""A job's inputs and outputs as clients send them: by name, in an invoke (`jobs/wire.py`) and in a submitted
pipeline job; a pipeline binds them to its inputs (`pipelines.bind_inputs`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, StrictBool, StrictFloat, StrictInt, StrictStr, model_validator


def _camel_keys(value: Any) -> Any:
    """The REST docs spell keys ``InputData``/``JobInputType``; the SDK sends ``inputData``/``jobInputType``."""
    if isinstance(value, dict):
        return {(key[:1].lower() + key[1:] if isinstance(key, str) else key): item for key, item in value.items()}
    return value


Literal = StrictBool | StrictInt | StrictFloat | StrictStr


class InvokeModel(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def camel_case(cls, value: Any) -> Any:
        return _camel_keys(value)


class JobInput(InvokeModel):
    jobInputType: str
    uri: str | None = None
    mode: str | None = None
    value: Literal | None = None
    """A literal input's value: the SDK sends it with its JSON type (``2``, ``0.5``, ``false``, ``"p_"``)."""


class JobOutput(InvokeModel):
    jobOutputType: str | None = None
    uri: str | None = None
    mode: str | None = None
