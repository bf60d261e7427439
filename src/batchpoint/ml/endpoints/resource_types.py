"""Batch endpoints and their deployments, as the resource registry serves them (``arm/registry.py``)."""

from __future__ import annotations

from batchpoint.arm.registry import ResourceType
from batchpoint.ml.endpoints.wire import (
    BatchDeploymentList,
    BatchDeploymentPatch,
    BatchDeploymentTrackedResource,
    BatchEndpointList,
    BatchEndpointPatch,
    BatchEndpointTrackedResource,
)

BATCH_ENDPOINTS = ResourceType(
    collection="batchEndpoints",
    name_parameter="endpointName",
    operation_group="BatchEndpoints",
    singular="Endpoint",
    tag="Batch",
    wire=BatchEndpointTrackedResource,
    patch_wire=BatchEndpointPatch,
    list_wire=BatchEndpointList,
    size_parameter="count",
    fast_reads=True,
)
BATCH_DEPLOYMENTS = ResourceType(
    collection="deployments",
    name_parameter="deploymentName",
    operation_group="BatchDeployments",
    singular="Deployment",
    tag="Batch",
    wire=BatchDeploymentTrackedResource,
    patch_wire=BatchDeploymentPatch,
    list_wire=BatchDeploymentList,
    parent=BATCH_ENDPOINTS,
    fast_reads=True,
)
BATCH_ENDPOINT_TYPE = BATCH_ENDPOINTS.type
BATCH_DEPLOYMENT_TYPE = BATCH_DEPLOYMENTS.type
