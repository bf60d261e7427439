"""Datastores, as the resource registry serves them (``arm/registry.py``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from batchpoint.arm.registry import CHILD_NAME_PATTERN, Names, Operations, ResourceType, Verb, Wire
from batchpoint.ml.assets.wire import AssetContainer, AssetList
from batchpoint.ml.workspaces.resource_types import WORKSPACES

DATASTORES = ResourceType(
    collection="datastores",
    name_parameter="name",
    parent=WORKSPACES,
    operations=Operations("Datastores", "Datastore", tag="Datastores", verbs=frozenset(Verb) - {Verb.PATCH}),
    wire=Wire(AssetContainer, page=AssetList),
    names=Names(pattern=CHILD_NAME_PATTERN, min_length=1, max_length=255),
    size_parameter="count",
    ordered=False,
    list_query={"is_default": Annotated[bool | None, Query(alias="isDefault")]},
)
DATASTORE_TYPE = DATASTORES.type
