"""Every resource type the registry serves (``arm/registry.py``), and the rules its writes follow: adding a type
is its folder and one line here."""

from __future__ import annotations

from batchpoint.arm.registry import Provider, ResourceType, Served
from batchpoint.arm.resources import Resources
from batchpoint.jobs.listing import JobSelection
from batchpoint.jobs.resource_types import JOBS
from batchpoint.ml.assets.resource_types import (
    CODE_VERSIONS,
    COMPONENT_VERSIONS,
    DATA_VERSIONS,
    ENVIRONMENT_VERSIONS,
    MODEL_VERSIONS,
)
from batchpoint.ml.assets.service import AssetContainers, AssetVersions
from batchpoint.ml.components.from_jobs import ComponentVersions
from batchpoint.ml.computes.resource_types import COMPUTES
from batchpoint.ml.computes.rules import ComputeKind
from batchpoint.ml.datastores.resource_types import DATASTORES
from batchpoint.ml.datastores.service import Datastores
from batchpoint.ml.endpoints.environments import DeploymentEnvironments
from batchpoint.ml.endpoints.resource_types import BATCH_DEPLOYMENTS, BATCH_ENDPOINTS
from batchpoint.ml.endpoints.rules import BatchDeploymentKind, BatchEndpointKind
from batchpoint.ml.workspaces.resource_types import RESOURCE_GROUPS, WORKSPACES
from batchpoint.ml.workspaces.service import ResourceGroups, Workspaces
from batchpoint.store import Store


def assets(versions: ResourceType, service: type[AssetVersions] = AssetVersions) -> tuple[Served, Served]:
    """The containers of one asset collection (the parent of ``versions``) and their versions."""
    assert versions.parent is not None
    containers = versions.parent

    def containers_of(provide: Provider) -> AssetContainers:
        return AssetContainers(provide(Resources), containers)

    return (
        Served(containers, containers_of),
        Served(versions, lambda provide: service(provide(Resources), containers_of(provide), versions)),
    )


SERVED: tuple[Served, ...] = (
    Served(RESOURCE_GROUPS, lambda provide: provide(ResourceGroups)),
    Served(WORKSPACES, lambda provide: provide(Workspaces)),
    Served(DATASTORES, lambda provide: provide(Datastores)),
    *assets(MODEL_VERSIONS),
    *assets(CODE_VERSIONS),
    *assets(ENVIRONMENT_VERSIONS),
    *assets(DATA_VERSIONS),
    *assets(COMPONENT_VERSIONS, ComponentVersions),
    Served(BATCH_ENDPOINTS, lambda provide: BatchEndpointKind()),
    Served(BATCH_DEPLOYMENTS, lambda provide: BatchDeploymentKind(provide(Store), provide(DeploymentEnvironments))),
    Served(COMPUTES, lambda provide: ComputeKind()),
    Served(JOBS, lambda provide: JobSelection(provide(Resources))),
)
