"""Batch endpoints and their deployments, as the resource registry serves them (``arm/registry.py``)."""

from __future__ import annotations

from batchpoint.arm.registry import Operations, ResourceType, Wire
from batchpoint.ml.endpoints.wire import (
    BatchDeploymentList,
    BatchDeploymentPatch,
    BatchDeploymentTrackedResource,
    BatchEndpointList,
    BatchEndpointPatch,
    BatchEndpointTrackedResource,
)
from batchpoint.ml.workspaces.resource_types import WORKSPACES

BATCH_ENDPOINTS = ResourceType(
    collection="batchEndpoints",
    name_parameter="endpointName",
    parent=WORKSPACES,
    operations=Operations("BatchEndpoints", "Endpoint", tag="Batch"),
    wire=Wire(BatchEndpointTrackedResource, page=BatchEndpointList, patch=BatchEndpointPatch),
    long_running=True,
    size_parameter="count",
    fast_reads=True,
)
"""A batch endpoint: the stable name and scoring URI that jobs are invoked through."""
BATCH_DEPLOYMENTS = ResourceType(
    collection="deployments",
    name_parameter="deploymentName",
    parent=BATCH_ENDPOINTS,
    operations=Operations("BatchDeployments", "Deployment", tag="Batch"),
    wire=Wire(BatchDeploymentTrackedResource, page=BatchDeploymentList, patch=BatchDeploymentPatch),
    long_running=True,
    fast_reads=True,
)
"""A deployment of a batch endpoint: what its jobs run (a model and scoring script, or a pipeline component)."""
BATCH_ENDPOINT_TYPE = BATCH_ENDPOINTS.type
BATCH_DEPLOYMENT_TYPE = BATCH_DEPLOYMENTS.type
