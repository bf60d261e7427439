"""Jobs, as the resource registry serves their reads (``arm/registry.py``); ``routes.py`` routes their PUT (a
submitted pipeline job) and actions."""

from __future__ import annotations

from batchpoint.arm.registry import Names, Operations, ResourceType, Verb, Wire
from batchpoint.jobs.listing import JOB_LIST_QUERY
from batchpoint.ml.assets.wire import AssetList, AssetVersion
from batchpoint.ml.workspaces.resource_types import WORKSPACES

JOBS = ResourceType(
    collection="jobs",
    name_parameter="jobName",
    parent=WORKSPACES,
    operations=Operations("Jobs", "Job", tag="Jobs", verbs=frozenset({Verb.LIST, Verb.GET})),
    wire=Wire(AssetVersion, page=AssetList),
    names=Names(pattern=r"^[a-zA-Z0-9][a-zA-Z0-9\-_]*$", min_length=1, max_length=255),
    list_query=JOB_LIST_QUERY,
)
