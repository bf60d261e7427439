"""List paging: page size, ``$orderBy``, and keyset continuation tokens carried in ``$skip``.

A token remembers the sort value and key of the last item served, so the next page starts strictly after it:
items added or removed between pages never make an item that existed throughout appear twice or go missing.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from batchpoint.arm.errors import bad_request
from batchpoint.store.entities import Cursor, Listed, SortField, SortOrder

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

_ORDERS = {
    "createdatdesc": SortOrder(SortField.CREATED, True),
    "createdatasc": SortOrder(SortField.CREATED, False),
    "createdat": SortOrder(SortField.CREATED, False),
    "createdtimedesc": SortOrder(SortField.CREATED, True),
    "createdtimeasc": SortOrder(SortField.CREATED, False),
    "createdtime": SortOrder(SortField.CREATED, False),
    "updatedatdesc": SortOrder(SortField.UPDATED, True),
    "updatedatasc": SortOrder(SortField.UPDATED, False),
    "updatedat": SortOrder(SortField.UPDATED, False),
}
ORDER_CHOICES = "CreatedAtDesc, CreatedAtAsc, UpdatedAtDesc, UpdatedAtAsc (or 'createdAt desc' forms)"


def parse_order(value: str | None) -> SortOrder:
    if value is None or not value.strip():
        return SortOrder()
    order = _ORDERS.get("".join(value.split()).lower())
    if order is None:
        raise bad_request(f"Invalid $orderBy '{value}'. Supported values: {ORDER_CHOICES}.")
    return order


def parse_page_size(value: str | None) -> int:
    if value is None or value == "":
        return DEFAULT_PAGE_SIZE
    if not re.fullmatch(r"[0-9]{1,5}", value) or not 1 <= int(value) <= MAX_PAGE_SIZE:
        raise bad_request(f"The page size must be a whole number from 1 to {MAX_PAGE_SIZE}; got '{value}'.")
    return int(value)


@dataclass(frozen=True)
class Position:
    """Where a page starts: after a keyset cursor, or (for a numeric ``$skip``) after that many items."""

    cursor: Cursor | None = None
    offset: int = 0


MAX_OFFSET = 1_000_000
INT64 = 2**63 - 1
OFFSET = re.compile(r"^[0-9]{1,7}$")


def parse_skip(value: str | None) -> Position:
    if value is None or value == "":
        return Position()
    if OFFSET.match(value) and int(value) <= MAX_OFFSET:
        return Position(offset=int(value))
    try:
        padded = value + "=" * (-len(value) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        micros, key = data["m"], data["k"]
        if type(micros) is not int or not 0 <= micros <= INT64 or not isinstance(key, str):
            raise ValueError("out of range")
        return Position(cursor=Cursor(micros=micros, key=key))
    except (ValueError, KeyError, TypeError, UnicodeEncodeError, binascii.Error):
        raise bad_request(
            f"The continuation token '$skip={value}' is invalid: pass on the nextLink as given, "
            f"or a number of items to skip (at most {MAX_OFFSET})."
        ) from None


def encode_cursor(position: Cursor) -> str:
    raw = json.dumps({"m": position.micros, "k": position.key}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


@dataclass
class Page:
    items: Sequence[Listed]
    next_skip: str | None


def fetch_page(fetch: Callable[[Cursor | None, int], list[Listed]], position: Position, size: int) -> Page:
    """Read one page plus one item, to know whether another page follows."""
    rows = fetch(position.cursor, position.offset + size + 1)[position.offset :]
    items = rows[:size]
    more = len(rows) > size
    return Page(items=items, next_skip=encode_cursor(items[-1].position) if more and items else None)


Keep = Callable[[Listed], bool]
"""A filtered list's test of each item: the collection is paged through, keeping what passes (`fetch_kept_page`)."""

SCAN_BUDGET = 5 * MAX_PAGE_SIZE
"""The most items one page of a filtered list examines past its start: where matches are rare, a page holds fewer
items (even none) and a nextLink that goes on from the last item examined, never a scan of the whole collection in
one request."""
SCAN_CHUNK = 500


def fetch_kept_page(
    fetch: Callable[[Cursor | None, int], list[Listed]], position: Position, size: int, keep: Keep
) -> Page:
    """One page of the items `keep` keeps, in the collection's order. A numeric ``$skip`` skips that many kept
    items, reading as far as that takes (as an unfiltered list reads its skipped items); the budget counts from
    there."""
    cursor, skip, items, examined = position.cursor, position.offset, [], 0
    while examined < SCAN_BUDGET:
        rows = fetch(cursor, SCAN_CHUNK)
        for row in rows:
            cursor = row.position
            examined += 0 if skip else 1
            if not keep(row):
                continue
            if skip:
                skip -= 1
                continue
            items.append(row)
            if len(items) == size:
                return Page(items=items, next_skip=encode_cursor(cursor))
        if len(rows) < SCAN_CHUNK:
            return Page(items=items, next_skip=None)
    return Page(items=items, next_skip=encode_cursor(cursor) if cursor is not None else None)


def next_link(base_url: str, path: str, query: dict[str, Any], next_skip: str | None) -> str | None:
    if next_skip is None:
        return None
    pairs = [f"{name}={quote(str(value), safe='')}" for name, value in query.items() if value is not None]
    # The token is URL-safe base64 already.
    return f"{base_url}{quote(path)}?{'&'.join(pairs)}&$skip={next_skip}"
