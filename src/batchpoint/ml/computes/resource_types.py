"""Compute clusters, as the resource registry serves them (``arm/registry.py``); DELETE is routed in
``routes.py`` (it takes ``underlyingResourceAction``)."""

from __future__ import annotations

from batchpoint.arm.registry import ResourceType, Verb
from batchpoint.ml.computes.wire import ComputeResource, ComputeResourceList

COMPUTES = ResourceType(
    collection="computes",
    name_parameter="computeName",
    operation_group="Compute",
    singular="Compute",
    tag="Computes",
    wire=ComputeResource,
    list_wire=ComputeResourceList,
    verbs=frozenset({Verb.LIST, Verb.GET, Verb.PUT}),
    new_name_pattern=None,
    size_parameter="count",
    ordered=False,
)
COMPUTE_TYPE = COMPUTES.type
