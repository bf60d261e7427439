"""Versioned assets, as the resource registry serves them (``arm/registry.py``): of each kind (models, codes,
environments, data, components) the containers ``{workspace}/{collection}/{name}`` and their versions
``.../versions/{version}``. A version's GET is routed in ``routes.py`` (``azureml_default`` names the latest)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from batchpoint.arm.registry import CHILD_NAME_PATTERN, Names, Operations, ResourceType, Verb, Wire
from batchpoint.ml.assets.wire import AssetContainer, AssetList, version_model
from batchpoint.ml.workspaces.resource_types import WORKSPACES

CONTAINER_NAMES = Names(pattern=CHILD_NAME_PATTERN, min_length=1, max_length=255)
VERSION_NAMES = Names(pattern=r"^[a-zA-Z0-9][a-zA-Z0-9\-_.]*$", min_length=1, max_length=255)
ListViewType = Annotated[str | None, Query(alias="listViewType", description="ActiveOnly, ArchivedOnly or All")]
Hash = Annotated[str | None, Query(description="Content hash of a code folder")]
HashVersion = Annotated[str | None, Query(alias="hashVersion")]


ASSET_KINDS = {
    "models": "Model",
    "codes": "Code",
    "environments": "Environment",
    "data": "Data",
    "components": "Component",
}
"""Each asset collection, and the kind of asset it holds."""


def asset_types(collection: str) -> tuple[ResourceType, ResourceType]:
    """The containers of one asset collection (``models``) and their versions."""
    kind = ASSET_KINDS[collection]
    containers = ResourceType(
        collection=collection,
        name_parameter="name",
        parent=WORKSPACES,
        operations=Operations(f"{kind}Containers", "Container", tag="Assets", verbs=frozenset(Verb) - {Verb.PATCH}),
        wire=Wire(AssetContainer, page=AssetList),
        names=CONTAINER_NAMES,
        list_query={"list_view_type": ListViewType},
    )
    versions = ResourceType(
        collection="versions",
        name_parameter="version",
        parent=containers,
        operations=Operations(
            f"{kind}Versions", "Version", tag="Assets", verbs=frozenset({Verb.LIST, Verb.PUT, Verb.DELETE})
        ),
        wire=Wire(version_model(kind, collection), page=AssetList),
        names=VERSION_NAMES,
        list_query={"list_view_type": ListViewType, "hash": Hash, "hash_version": HashVersion},
    )
    return containers, versions


MODEL_CONTAINERS, MODEL_VERSIONS = asset_types("models")
CODE_CONTAINERS, CODE_VERSIONS = asset_types("codes")
ENVIRONMENT_CONTAINERS, ENVIRONMENT_VERSIONS = asset_types("environments")
DATA_CONTAINERS, DATA_VERSIONS = asset_types("data")
COMPONENT_CONTAINERS, COMPONENT_VERSIONS = asset_types("components")
ASSET_VERSIONS = (MODEL_VERSIONS, CODE_VERSIONS, ENVIRONMENT_VERSIONS, DATA_VERSIONS, COMPONENT_VERSIONS)
"""Each with its containers as its parent."""
