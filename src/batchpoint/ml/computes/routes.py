"""Compute_Delete (the registry routes the other compute operations: ``resource_types.py``) and
VirtualMachineSizes_List, the sizes a compute may have (not a resource: a list below a location)."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

from fastapi import Path, Query, Response

from batchpoint.api.crud import id_dependency
from batchpoint.api.deps import MlContext, ResourcesDep, SubscriptionId, check_subscription, provided_service
from batchpoint.api.docs import responses
from batchpoint.api.responses import accepted_response, arm_json
from batchpoint.api.routing import routes
from batchpoint.arm.ids import PROVIDER
from batchpoint.arm.registry import SUBSCRIPTION_PATH, ResourceService, Verb
from batchpoint.ml.computes.resource_types import COMPUTES
from batchpoint.ml.computes.rules import refuse_builtin_change
from batchpoint.ml.computes.sizes import vm_sizes
from batchpoint.ml.computes.wire import VirtualMachineSizeListResult

router = routes(tags=[COMPUTES.operations.tag])

VM_SIZES = SUBSCRIPTION_PATH + f"/providers/{PROVIDER}/locations/{{location}}/vmSizes"
Location = Annotated[str, Path(min_length=1, description="The location upon which virtual-machine-sizes is queried.")]

ComputeId = Annotated[str, id_dependency(COMPUTES)]
Computes = Annotated[ResourceService, provided_service(COMPUTES)]


class UnderlyingResourceAction(str, Enum):
    DELETE = "Delete"
    DETACH = "Detach"


@router.delete(
    COMPUTES.item_path,
    operation_id=COMPUTES.operation_id(Verb.DELETE),
    responses=responses({200: None, 202: None, 204: None}),
)
def delete_compute(
    ctx: MlContext,
    computes: Computes,
    resource_id: ComputeId,
    underlying_resource_action: Annotated[UnderlyingResourceAction, Query(alias="underlyingResourceAction")],
) -> Response:
    """Delete and Detach both remove the compute: batchpoint clusters have no underlying machines to keep."""
    refuse_builtin_change(resource_id)
    return accepted_response(ctx, computes.delete(ctx, resource_id))


@router.get(VM_SIZES, operation_id="VirtualMachineSizes_List", responses=responses({200: VirtualMachineSizeListResult}))
def list_vm_sizes(
    ctx: MlContext,
    resources: ResourcesDep,
    subscriptionId: SubscriptionId,  # noqa: N803 - the path's spelling
    location: Location,
) -> Response:
    """The VM sizes batchpoint knows (``ml_client.compute.list_sizes()``), with the GPUs of each; plain ``def``:
    it reads the subscription's workspaces for their locations."""
    sizes = vm_sizes(resources.store, check_subscription(subscriptionId), location, ctx.api_version)
    return arm_json(sizes, ctx.base_url)
