"""Rules every ARM resource shares: parents must exist, 404 messages, systemData, tags, paged lists."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import isodate

from batchpoint.arm.context import Caller, RequestContext
from batchpoint.arm.errors import ArmError, bad_request, resource_group_not_found, resource_not_found
from batchpoint.arm.ids import RESOURCE_GROUP_TYPE, ArmPath, ancestors, relative_type_and_name, type_of
from batchpoint.arm.operations import iso
from batchpoint.arm.paging import Keep, Page, Position, fetch_kept_page, fetch_page
from batchpoint.store import Store, VersionConflict
from batchpoint.store.entities import Cursor, Listed, Resource, SortOrder, utcnow


@dataclass
class Upserted:
    resource: Resource
    created: bool


@dataclass
class Resources:
    store: Store

    def not_found(self, resource_id: str) -> ArmError:
        """The error for the first missing link of the id's chain (resource group first)."""
        path = ArmPath.parse(resource_id)
        for ancestor in ancestors(resource_id):
            if self.store.get_body_json(ancestor) is None:
                if type_of(ancestor) == RESOURCE_GROUP_TYPE:
                    return resource_group_not_found(path.resource_group)
                return resource_not_found(relative_type_and_name(ancestor), path.resource_group)
        return resource_not_found(relative_type_and_name(resource_id), path.resource_group)

    def get(self, resource_id: str) -> Resource:
        resource = self.store.get(resource_id)
        if resource is None:
            raise self.not_found(resource_id)
        return resource

    def get_json(self, resource_id: str) -> str:
        body = self.store.get_body_json(resource_id)
        if body is None:
            raise self.not_found(resource_id)
        return body

    def require(self, resource_id: str) -> None:
        if self.store.get_body_json(resource_id) is None:
            raise self.not_found(resource_id)

    def delete(self, resource_id: str) -> None:
        """A synchronous delete: the resource and everything below it."""
        self.require(resource_id)
        self.store.delete_tree(resource_id)

    def list_page(
        self,
        parent_id: str,
        type_: str,
        order: SortOrder,
        position: Position,
        size: int,
        keep: Keep | None = None,
    ) -> Page:
        """A page of the children; with `keep`, of those it keeps (`fetch_kept_page`: a budget per page)."""

        def fetch(cursor: Cursor | None, limit: int) -> list[Listed]:
            return self.store.list_children(parent_id, type_, order, cursor, limit)

        page = fetch_page(fetch, position, size) if keep is None else fetch_kept_page(fetch, position, size, keep)
        if not page.items:
            self.require(parent_id)  # children exist only while their parent does: check it only when empty
        return page


class OnResources:
    """A service built on ``Resources``, reaching the store through it."""

    resources: Resources

    @property
    def store(self) -> Store:
        return self.resources.store


def system_data(caller: Caller, existing: Resource | None) -> dict[str, Any]:
    now = iso(utcnow())
    created = (existing.body.get("systemData") if existing else None) or {
        "createdBy": caller.name,
        "createdByType": caller.type,
        "createdAt": now,
    }
    return {
        "createdBy": created.get("createdBy"),
        "createdByType": created.get("createdByType"),
        "createdAt": created.get("createdAt"),
        "lastModifiedBy": caller.name,
        "lastModifiedByType": caller.type,
        "lastModifiedAt": now,
    }


def check_tags(tags: dict[str, Any] | None) -> dict[str, str]:
    """AML refuses null or empty tag values."""
    tags = tags or {}
    empty = sorted(name for name, value in tags.items() if value is None or value == "")
    if empty:
        raise bad_request(f"Tag values must not be null or empty (tags: {', '.join(empty)}).", "UserError")
    return tags


def check_duration(field: str, value: str) -> None:
    """A positive ISO-8601 duration in days, hours, minutes or seconds (months and years have no fixed length)."""
    duration_seconds(field, value)


def duration_seconds(field: str, value: str) -> float:
    """The seconds of `value`, a positive ISO-8601 duration in days, hours, minutes or seconds (months and years
    have no fixed length), at most Python's longest (999999999 days); a 400 naming `field` otherwise."""
    try:
        duration = isodate.parse_duration(value)
    except OverflowError:  # more days than a timedelta holds, or more digits than a C int
        raise bad_request(
            f"{field} '{value}' is not a valid duration: it is too long (at most {timedelta.max.days} days)."
        ) from None
    except (isodate.ISO8601Error, ValueError, TypeError, AttributeError):
        raise bad_request(f"{field} '{value}' is not an ISO-8601 duration (e.g. 'PT30S').") from None
    if isinstance(duration, isodate.Duration) or duration.total_seconds() <= 0:
        raise ArmError(
            400, "BadRequest", f"{field} '{value}' must be a positive duration in days, hours, minutes or seconds."
        )
    return float(duration.total_seconds())


def same_location(a: str, b: str) -> bool:
    """ARM compares locations ignoring case and spaces ('East US' == 'eastus')."""
    return "".join(a.split()).lower() == "".join(b.split()).lower()


def new_version(
    ctx: RequestContext, resource_id: str, type_: str, document: dict[str, Any], existing: Resource | None
) -> Resource:
    """The resource as it will be stored: server-set envelope fields first, then the caller's document."""
    body = {
        "id": resource_id,
        "name": resource_id.rsplit("/", 1)[-1],
        "type": type_,
        **document,
        "systemData": system_data(ctx.caller, existing),
    }
    now = utcnow()
    return Resource(
        id=resource_id,
        type=type_,
        body=body,
        created_at=existing.created_at if existing else now,
        updated_at=now,
        version=existing.version if existing else 0,
    )


def save(store: Store, resource: Resource, existing: Resource | None) -> None:
    if existing is None:
        store.insert(resource)
    else:
        store.update(resource)


MODIFY_TRIES = 50


def modify(store: Store, resource_id: str, change: Callable[[Resource], None]) -> Resource | None:
    """Read a resource, change it and write it back; when another writer got in between (the update's version
    check failed), start again from a fresh read. Background work (job progress, provisioning states) uses this:
    it has no client to answer 409 to. None when the resource is gone."""
    for _ in range(MODIFY_TRIES):
        resource = store.get(resource_id)
        if resource is None:
            return None
        change(resource)
        try:
            store.update(resource)
        except VersionConflict:
            continue
        return resource
    raise VersionConflict(resource_id)
