"""Compute clusters, as the resource registry serves them (``arm/registry.py``); DELETE is routed in
``routes.py`` (it takes ``underlyingResourceAction``)."""

from __future__ import annotations

from batchpoint.arm.registry import Names, Operations, ResourceType, Verb, Wire
from batchpoint.ml.computes.wire import ComputeResource, ComputeResourceList
from batchpoint.ml.workspaces.resource_types import WORKSPACES

COMPUTES = ResourceType(
    collection="computes",
    name_parameter="computeName",
    parent=WORKSPACES,
    operations=Operations("Compute", "Compute", tag="Computes", verbs=frozenset({Verb.LIST, Verb.GET, Verb.PUT})),
    wire=Wire(ComputeResource, page=ComputeResourceList),
    long_running=True,
    names=Names(min_length=1),
    size_parameter="count",
    ordered=False,
)
COMPUTE_TYPE = COMPUTES.type
