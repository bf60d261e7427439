"""The workspace discovery document: the registry routes resource groups and workspaces (``resource_types.py``)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse

from batchpoint.api.deps import base_url
from batchpoint.api.routing import routes
from batchpoint.ml.workspaces.service import discovery_document

router = routes(tags=["Workspaces"])


@router.get("/discovery", operation_id="Workspaces_Discovery", tags=["Discovery"], response_class=JSONResponse)
def discovery(request: Request) -> dict[str, str]:
    """Read without a token, as azure-ai-ml does: where the data-plane and history services are."""
    return discovery_document(base_url(request))
