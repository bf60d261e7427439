"""The job list of an endpoint's page (and of one deployment's): filtered by status, deployment and creation date,
sorted by creation time either way, and paged with the store's keyset cursors, so that a page costs the same at
50,000 jobs as at 50 (docs/decisions.md, Decision 18). Every control is a plain link or GET form."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlencode

from batchpoint.arm.errors import bad_request
from batchpoint.arm.paging import encode_cursor, parse_skip
from batchpoint.jobs.invoke import Jobs
from batchpoint.runtime.status import JobStatus
from batchpoint.store.entities import JOB_TYPE, JobFilter, Listed, Resource, SortOrder
from batchpoint.web.views import JobView, Studio

PAGE_SIZE = 50
STATUSES = tuple(status.value for status in JobStatus)
"""The statuses the filter offers."""


def _date(params: Mapping[str, str], name: str) -> date | None:
    text = params.get(name, "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise bad_request(f"The date '{text}' ({name}) is not a date such as 2026-12-06.") from None


def _micros(day: date) -> int:
    return int(datetime.combine(day, time(), UTC).timestamp()) * 1_000_000


@dataclass(frozen=True)
class JobQuery:
    """What a job list shows, as its URL's query string holds it."""

    deployment: str = ""
    status: str = ""
    created_from: date | None = None
    created_to: date | None = None
    """The last day (UTC) whose jobs are shown."""
    oldest_first: bool = False
    after: str = ""
    """The page starts after this cursor (a ``$skip`` token of the API's lists) ..."""
    before: str = ""
    """... or ends before this one."""

    @classmethod
    def of(cls, params: Mapping[str, str]) -> JobQuery:
        """The query of a list's URL; a status, date or page token that is not one is a 400."""
        status = params.get("status", "")
        if status and status not in STATUSES:
            raise bad_request(f"There is no job status '{status}'; it is one of {', '.join(STATUSES)}.")
        query = cls(
            deployment=params.get("deployment", ""),
            status=status,
            created_from=_date(params, "from"),
            created_to=_date(params, "to"),
            oldest_first=params.get("order", "") == "oldest",
            after=params.get("after", ""),
            before=params.get("before", ""),
        )
        for token in (query.after, query.before):
            if token and parse_skip(token).cursor is None:  # a number of jobs to skip: the API's, not the page's
                raise bad_request(f"The page token '{token}' is not one of the page's links.")
        return query

    @property
    def filter(self) -> JobFilter:
        return JobFilter(
            deployment=self.deployment or None,
            status=self.status or None,
            created_from_us=_micros(self.created_from) if self.created_from else None,
            created_before_us=_micros(self.created_to + timedelta(days=1)) if self.created_to else None,
        )

    @property
    def filtered(self) -> bool:
        return self.filter != JobFilter()

    def link(self, **changes: object) -> str:
        """The query string of this list with ``changes`` (a new filter or order starts at the first page)."""
        changed = replace(self, **changes)  # type: ignore[arg-type]
        fields = {
            "deployment": changed.deployment,
            "status": changed.status,
            "from": changed.created_from.isoformat() if changed.created_from else "",
            "to": changed.created_to.isoformat() if changed.created_to else "",
            "order": "oldest" if changed.oldest_first else "",
            "after": changed.after,
            "before": changed.before,
        }
        given = urlencode({name: value for name, value in fields.items() if value})
        return f"?{given}" if given else ""


@dataclass(frozen=True)
class JobList:
    query: JobQuery
    rows: list[JobView]
    """Without logs, outputs or steps."""
    next_page: str | None
    """The query string of the next page, if there is one."""
    previous_page: str | None

    @property
    def running(self) -> bool:
        return any(not job.finished for job in self.rows)


def job_list(studio: Studio, jobs: Jobs, endpoint_id: str, query: JobQuery) -> JobList:
    """One page of the endpoint's jobs that ``query`` asks for."""
    order = SortOrder(descending=not query.oldest_first)
    if query.before:
        backwards = jobs.of_endpoint(
            endpoint_id,
            query.filter,
            replace(order, descending=not order.descending),
            parse_skip(query.before),
            PAGE_SIZE,
        )
        if backwards.next_skip is None:  # no page before this one: show the whole first page
            return job_list(studio, jobs, endpoint_id, replace(query, before=""))
        items, more_after, more_before = list(reversed(backwards.items)), True, True
    else:
        page = jobs.of_endpoint(endpoint_id, query.filter, order, parse_skip(query.after), PAGE_SIZE)
        items, more_after, more_before = list(page.items), page.next_skip is not None, bool(query.after)
    return JobList(
        query=query,
        rows=[studio.job(_resource(item), with_details=False) for item in items],
        next_page=query.link(after=encode_cursor(items[-1].position), before="") if items and more_after else None,
        previous_page=query.link(before=encode_cursor(items[0].position), after="") if items and more_before else None,
    )


def _resource(item: Listed) -> Resource:
    """A listed job as a resource, from the row the list read (no second read per job)."""
    return Resource(id=item.id, type=JOB_TYPE, body=json.loads(item.body_json))


def ran_seconds(job: JobView) -> float | None:
    """How long the job ran, from its start to its end (or until now); None before it started."""
    if not job.started:
        return None
    until = datetime.fromisoformat(job.ended) if job.ended else datetime.now(UTC)
    return max((until - datetime.fromisoformat(job.started)).total_seconds(), 0.0)
