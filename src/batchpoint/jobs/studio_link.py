"""A job's link to its studio page, shaped as Azure's: ``{base}/jobs/{name}?wsid=/subscriptions/{s}/resourcegroups/
{g}/workspaces/{w}`` (Azure's is ``https://ml.azure.com/runs/{name}?wsid=...``). It has a query string because
azure-ai-ml appends ``&tid={tenant}`` to it (``jobs.get(...).studio_url``, so ``az ml job show --web``); ``wsid``
names the workspace, as ``/jobs/{name}`` does not. docs/web.md lists every link the clients print or open."""

from __future__ import annotations

import re
from typing import Any

from batchpoint.arm.context import BASE_URL
from batchpoint.arm.ids import ArmPath, workspace_id

WSID = re.compile(
    r"^/subscriptions/(?P<subscription>[^/]+)/resourcegroups/(?P<group>[^/]+)"
    r"(?:/providers/Microsoft\.MachineLearningServices)?/workspaces/(?P<workspace>[^/]+)/?$",
    re.IGNORECASE,
)


def studio_services(workspace: str, job_name: str) -> dict[str, Any]:
    """A job's ``services``, which azure-ai-ml reads (and prints as "Web View") for every job."""
    path = ArmPath.parse(workspace)
    wsid = f"/subscriptions/{path.subscription}/resourcegroups/{path.resource_group}/workspaces/{path.workspace}"
    return {"Studio": {"jobServiceType": "Studio", "endpoint": f"{BASE_URL}/jobs/{job_name}?wsid={wsid}"}}


def workspace_of_wsid(wsid: str) -> str | None:
    """The workspace a link's ``wsid`` names (Azure's short form or an ARM id), or None when it names none."""
    match = WSID.match(wsid)
    return workspace_id(match["subscription"], match["group"], match["workspace"]) if match else None
