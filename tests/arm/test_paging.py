"""List paging: page size, order, continuation tokens and consistency while the list changes."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from batchpoint.arm.paging import SCAN_BUDGET, Position, fetch_kept_page, parse_skip
from batchpoint.store.entities import Cursor, Listed
from tests.api.arm import create_endpoint, deployment_body, deployment_url, endpoint_url, wait_for_operation
from tests.server import API, Server

V = {"api-version": API}
LIST = endpoint_url("pages") + "/deployments"


@pytest.fixture(scope="module", autouse=True)
def deployments(server: Server) -> list[str]:
    names = [f"dep{index}" for index in range(7)]
    with server.client() as client:
        create_endpoint(client, "pages")
        for name in names:
            assert client.put(deployment_url("pages", name), params=V, json=deployment_body()).status_code == 201
    return names


def all_pages(client: httpx.Client, **params: str) -> list[list[str]]:
    pages, response = [], client.get(LIST, params={**V, **params})
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append([item["name"] for item in body["value"]])
        if not body.get("nextLink"):
            return pages
        response = client.get(body["nextLink"])


def test_pages_follow_next_links_in_created_order(server: Server, deployments: list[str]) -> None:
    with server.client() as client:
        newest_first = all_pages(client, **{"$top": "3", "$orderBy": "createdAt desc"})
        oldest_first = all_pages(client, **{"$top": "3", "$orderBy": "CreatedAtAsc"})
    assert newest_first == [["dep6", "dep5", "dep4"], ["dep3", "dep2", "dep1"], ["dep0"]]
    assert oldest_first == [["dep0", "dep1", "dep2"], ["dep3", "dep4", "dep5"], ["dep6"]]


def test_next_link_is_absolute_and_keeps_the_query(server: Server) -> None:
    with server.client() as client:
        link = client.get(LIST, params={**V, "$top": "2", "$orderBy": "CreatedAtDesc"}).json()["nextLink"]
    parts = urlsplit(link)
    query = parse_qs(parts.query)
    assert f"{parts.scheme}://{parts.netloc}" == server.base_url
    assert query["api-version"] == [API] and query["$top"] == ["2"] and query["$orderBy"] == ["CreatedAtDesc"]
    assert query["$skip"][0]


def test_default_page_holds_everything_small(server: Server, deployments: list[str]) -> None:
    with server.client() as client:
        body = client.get(LIST, params=V).json()
    assert [item["name"] for item in body["value"]] == deployments
    assert "nextLink" not in body


def test_items_existing_throughout_are_seen_once_while_the_list_changes(server: Server) -> None:
    with server.client() as client:
        create_endpoint(client, "moving")
        url = endpoint_url("moving") + "/deployments"
        for index in range(6):
            client.put(deployment_url("moving", f"move{index}"), params=V, json=deployment_body())
        first = client.get(url, params={**V, "$top": "3", "$orderBy": "createdAt asc"}).json()
        wait_for_operation(client, client.delete(deployment_url("moving", "move1"), params=V))
        client.put(deployment_url("moving", "move6"), params=V, json=deployment_body())
        wait_for_operation(client, client.delete(deployment_url("moving", "move4"), params=V))
        second = client.get(first["nextLink"]).json()
    seen = [item["name"] for item in first["value"] + second["value"]]
    assert seen[:3] == ["move0", "move1", "move2"]
    assert "move3" in seen and "move5" in seen
    assert len(seen) == len(set(seen))


@pytest.mark.parametrize(
    "params",
    [
        {"$orderBy": "name asc"},
        {"$orderBy": "createdAt sideways"},
        {"$top": "0"},
        {"$top": "1001"},
        {"$top": "many"},
        {"$skip": "not-a-token!"},
    ],
)
def test_bad_paging_parameters_get_400(server: Server, params: dict[str, str]) -> None:
    with server.client() as client:
        response = client.get(LIST, params={**V, **params})
    assert response.status_code == 400
    assert response.json()["error"]["message"]


def test_numeric_skip_is_an_offset(server: Server) -> None:
    with server.client() as client:
        body = client.get(LIST, params={**V, "$skip": "5"}).json()
    assert [item["name"] for item in body["value"]] == ["dep5", "dep6"]


def test_a_filtered_list_reads_at_most_its_budget_per_page_and_goes_on_where_it_stopped() -> None:
    """A job list filtered on a tag that only the last of 12,000 jobs has: no page reads the whole collection, an
    empty page's nextLink goes on from where it stopped, and following them finds each kept item once, in order."""
    rows = [Listed(f"job-{n:05d}", Cursor(micros=n, key=f"job-{n:05d}"), "{}") for n in range(12_000)]
    kept = {"job-00007", "job-00008", "job-11999"}
    reads: list[int] = []

    def fetch(cursor: Cursor | None, limit: int) -> list[Listed]:
        start = 0 if cursor is None else cursor.micros + 1
        reads.append(min(limit, len(rows) - start))
        return rows[start : start + limit]

    found, position, pages = [], Position(), 0
    while True:
        reads.clear()
        page = fetch_kept_page(fetch, position, 2, lambda row: row.id in kept)
        pages += 1
        assert sum(reads) <= SCAN_BUDGET + 500
        found += [item.id for item in page.items]
        if page.next_skip is None:
            break
        position = parse_skip(page.next_skip)
    assert found == sorted(kept) and pages == 4  # [7, 8], then two pages that read their budget, then [11999]
    skipped = fetch_kept_page(fetch, Position(offset=1), 5, lambda row: row.id in kept)  # $skip=1: one kept item
    assert [row.id for row in skipped.items] == ["job-00008"] and skipped.next_skip is not None
