"""Every resource type the registry serves (``arm/registry.py``), and the rules its writes follow: adding a type
is its folder and one line here."""

from __future__ import annotations

from batchpoint.arm.registry import Served
from batchpoint.ml.computes.resource_types import COMPUTES
from batchpoint.ml.computes.rules import ComputeKind
from batchpoint.ml.endpoints.environments import DeploymentEnvironments
from batchpoint.ml.endpoints.resource_types import BATCH_DEPLOYMENTS, BATCH_ENDPOINTS
from batchpoint.ml.endpoints.rules import BatchDeploymentKind, BatchEndpointKind
from batchpoint.store import Store

SERVED: tuple[Served, ...] = (
    Served(BATCH_ENDPOINTS, lambda provide: BatchEndpointKind()),
    Served(BATCH_DEPLOYMENTS, lambda provide: BatchDeploymentKind(provide(Store), provide(DeploymentEnvironments))),
    Served(COMPUTES, lambda provide: ComputeKind()),
)
