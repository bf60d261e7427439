"""List paging: page size, order, continuation tokens and consistency while the list changes."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

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
