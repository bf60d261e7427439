"""The filters of `Jobs_List` (`ml_client.jobs.list(...)`, `az ml job list`): `tag`, `jobType`, `properties`,
`listViewType`, `scheduled` and `scheduleId`, as the REST specification defines them (docs/management-plane.md,
"Lists")."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Query

from batchpoint.arm.paging import Keep
from batchpoint.arm.resources import OnResources, Resources
from batchpoint.store.entities import Listed, Resource

JOB_LIST_QUERY = {
    "list_view_type": Annotated[str | None, Query(alias="listViewType", description="ActiveOnly, ArchivedOnly or All")],
    "tag": Annotated[str | None, Query(description="Jobs returned will have this tag key.")],
    "job_type": Annotated[str | None, Query(alias="jobType", description="Type of job to be returned.")],
    "properties": Annotated[
        str | None,
        Query(description="Comma-separated list of user property names (and optionally values): prop1,prop2=value2"),
    ],
    "scheduled": Annotated[bool | None, Query(description="Only the jobs a schedule started (batchpoint has none).")],
    "schedule_id": Annotated[str | None, Query(alias="scheduleId", description="Only this schedule's jobs.")],
}

Test = Callable[[dict[str, Any]], bool]


@dataclass
class JobSelection(OnResources):
    """What a filtered job list holds: the workspace's jobs that pass each filter given, paged through with a budget
    per page (`arm/paging.py fetch_kept_page`), never read whole. Without a filter (or with only
    `listViewType=ActiveOnly` or `All`, since batchpoint archives no job: none has `isArchived` set unless a client
    stored it so), the list is the paged collection."""

    resources: Resources

    def select(
        self,
        parent_id: str,
        list_view_type: str | None = None,
        tag: str | None = None,
        job_type: str | None = None,
        properties: str | None = None,
        scheduled: bool | None = None,
        schedule_id: str | None = None,
    ) -> list[Resource] | Keep | None:
        if scheduled or schedule_id:
            self.resources.require(parent_id)
            return []  # batchpoint has no schedules
        tests = [
            *_archived(list_view_type),
            *([_has_tag(tag)] if tag else []),
            *([_of_type(job_type)] if job_type else []),
            *[_has_property(wanted) for wanted in (properties or "").split(",") if wanted.strip()],
        ]
        if not tests:
            return None
        self.resources.require(parent_id)

        def keep(row: Listed) -> bool:
            body = json.loads(row.body_json)
            return all(test(body) for test in tests)

        return keep


def _archived(list_view_type: str | None) -> list[Test]:
    view = (list_view_type or "ActiveOnly").lower()
    if view == "archivedonly":
        return [lambda body: bool(body["properties"].get("isArchived"))]
    return []  # ActiveOnly and All: no job is archived (see JobSelection)


def _has_tag(key: str) -> Test:
    return lambda body: key in (body["properties"].get("tags") or {})


def _of_type(job_type: str) -> Test:
    return lambda body: str(body["properties"].get("jobType", "")).lower() == job_type.lower()


def _has_property(wanted: str) -> Test:
    name, equals, value = (part.strip() for part in wanted.partition("="))

    def test(body: dict[str, Any]) -> bool:
        given = body["properties"].get("properties") or {}
        return name in given and (not equals or str(given[name]) == value)

    return test
