"""Hostile input against the real server: oversized, deep or malformed bodies, odd names, paths and headers.

Targeted tests pin each bound; a hypothesis fuzz then sends hundreds (`make fuzz`: thousands) of hostile requests
and checks that none gets a 5xx and that no answer shows a server path, a stack trace, the datastore key or the
caller's token.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import requests
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from batchpoint.api.limits import MAX_DEPTH, MAX_MEMBERS, MAX_STRING, json_problem
from batchpoint.arm.registry import CHILD_NAME_PATTERN
from tests.api.arm import ENDPOINTS, create_endpoint, endpoint_body, endpoint_url
from tests.server import API, WORKSPACE_ID, Server, running

LIMIT = 256 * 1024
V = {"api-version": API}
JSON_TYPE = {"Content-Type": "application/json"}
ENDPOINT = "hostile-endpoint"
FUZZ_REQUESTS = int(os.environ.get("BATCHPOINT_FUZZ_REQUESTS", "500"))
"""`make test` sends 500 (the first 500 of the same derandomized sequence), `make fuzz` many more."""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running(tmp_path_factory.mktemp("home"), "--max-body-bytes", str(LIMIT)) as started:
        with started.client() as client:
            create_endpoint(client, ENDPOINT)
        yield started


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as opened:
        yield opened


def error_of(response: httpx.Response) -> dict[str, str]:
    return response.json()["error"]


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


# --- body size ---


def test_a_body_over_the_limit_is_refused_by_its_content_length(client: httpx.Client) -> None:
    response = client.put(endpoint_url("big"), params=V, content=b" " * (LIMIT + 1), headers=JSON_TYPE)
    assert response.status_code == 413 and error_of(response)["code"] == "RequestBodyTooLarge"
    assert response.headers["x-ms-request-id"]


def test_a_huge_declared_length_is_refused_before_any_body_arrives(server: Server) -> None:
    head = (
        f"PUT {endpoint_url('big')}?api-version={API} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {server.token()}\r\nContent-Type: application/json\r\nContent-Length: {10**12}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head.encode())
        answer = sock.recv(65536).decode("latin-1")
    assert answer.startswith("HTTP/1.1 413") and "RequestBodyTooLarge" in answer


def test_a_client_that_sends_its_whole_body_before_reading_gets_the_413(tls_server: Server) -> None:
    """requests (under azure-core, so every SDK) writes the whole body before it reads an answer: before, the server
    answered and closed at once, and the client saw its connection reset mid-body (`ServiceRequestError: EOF
    occurred in violation of protocol` over TLS) instead of the 413 naming the limit."""
    body = b" " * (8 * 1024 * 1024)  # twice the server's limit, more than the socket buffers hold
    response = requests.put(
        f"{tls_server.base_url}{endpoint_url('big')}",
        params=V,
        data=body,
        headers={**JSON_TYPE, "Authorization": f"Bearer {tls_server.token()}"},
        timeout=60,
        verify=str(tls_server.ca_cert),
    )
    assert response.status_code == 413 and response.json()["error"]["code"] == "RequestBodyTooLarge"


def test_a_chunked_body_growing_over_the_limit_is_refused(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"location": "'
        for _ in range(LIMIT // 4096 + 2):
            yield b"a" * 4096

    response = client.put(endpoint_url("big"), params=V, content=chunks(), headers=JSON_TYPE)
    assert response.status_code == 413 and error_of(response)["code"] == "RequestBodyTooLarge"


def test_a_body_at_the_limit_is_read(client: httpx.Client) -> None:
    body = json.dumps(endpoint_body()).ljust(LIMIT).encode()
    response = client.put(endpoint_url("padded"), params=V, content=body, headers=JSON_TYPE)
    assert response.status_code in (200, 201), response.text


def test_the_blob_api_is_not_bound_by_the_json_limit(client: httpx.Client) -> None:
    response = client.put("/blob/nosuchaccount/container/big.bin", content=b"\0" * (LIMIT * 2))
    assert response.status_code == 404 and error_of(response)["code"] == "AccountNotFound"


# --- JSON shape ---


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 100_000])
def test_deep_nesting_is_refused(client: httpx.Client, depth: int) -> None:
    response = client.put(endpoint_url("deep"), params=V, content=nested(depth), headers=JSON_TYPE)
    assert response.status_code == 400 and "nested deeper" in error_of(response)["message"]


def test_nesting_at_the_bound_reaches_validation() -> None:
    assert json_problem(nested(MAX_DEPTH)) is None
    assert json_problem(nested(MAX_DEPTH + 1)) is not None


@pytest.mark.parametrize(
    "body",
    [
        {"location": "x" * (MAX_STRING + 1), "properties": {"authMode": "AADToken"}},
        {"location": "local", "tags": {"k" * (MAX_STRING + 1): "v"}},
    ],
    ids=["value", "key"],
)
def test_huge_strings_are_refused(client: httpx.Client, body: dict[str, Any]) -> None:
    response = client.put(endpoint_url("long"), params=V, json=body)
    assert response.status_code == 400 and "string longer" in error_of(response)["message"]


def test_huge_maps_are_refused(client: httpx.Client) -> None:
    tags = {f"t{index}": "v" for index in range(MAX_MEMBERS + 1)}
    response = client.put(endpoint_url("tagged"), params=V, json={"location": "local", "tags": tags})
    assert response.status_code == 400 and "members" in error_of(response)["message"]


@pytest.mark.parametrize("body", [b'{"location": "\xff\xfe"}', b"\xc3\x28", b"\x00\x00\x00"])
def test_invalid_utf8_bodies_get_400(client: httpx.Client, body: bytes) -> None:
    response = client.put(endpoint_url("bytes"), params=V, content=body, headers=JSON_TYPE)
    assert response.status_code == 400


def test_echoed_input_is_clipped(client: httpx.Client) -> None:
    unknown = "u" * 10_000
    response = client.put(endpoint_url("echo"), params=V, json={"location": "local", unknown: 1})
    assert response.status_code == 400 and len(error_of(response)["message"]) < 2100


# --- names, paths and headers ---


@pytest.mark.parametrize("name", ["%2E%2E", "..%2F..%2Fetc", "a%2F..%2F..", "%2E%2E%5C%2E%2E", "a" * 300])
def test_traversal_and_overlong_names_never_create_a_resource(client: httpx.Client, name: str) -> None:
    body = {"location": "local", "properties": {"authMode": "AADToken"}}
    response = client.put(f"{ENDPOINTS}/{name}", params=V, json=body)
    assert 400 <= response.status_code < 500
    names = [endpoint["name"] for endpoint in client.get(ENDPOINTS, params=V).json()["value"]]
    assert all(re.fullmatch(CHILD_NAME_PATTERN, listed) for listed in names)


@pytest.mark.parametrize("segment", ["a%00b", "%00", "a%0Ab", "%1B%5B31m", "%7F"])
@pytest.mark.parametrize("prefix", [f"{ENDPOINTS}/", f"{WORKSPACE_ID}/datastores/", "/blob/account/container/"])
def test_control_characters_in_paths_get_400(client: httpx.Client, prefix: str, segment: str) -> None:
    response = client.get(prefix + segment, params=V)
    assert response.status_code == 400 and error_of(response)["code"] == "InvalidResourceName"


def test_a_huge_authorization_header_is_refused_without_being_echoed(server: Server) -> None:
    garbage = "g" * 8000
    with server.client(token=garbage) as hostile:
        response = hostile.get(ENDPOINTS, params=V)
    assert response.status_code == 401 and garbage[:50] not in response.text


def test_the_callers_token_is_never_echoed(server: Server, client: httpx.Client) -> None:
    token = client.headers["authorization"].split(" ", 1)[1]
    missing = client.get(f"/nowhere/{token}")
    invalid = client.put(endpoint_url("echo"), params=V, json={"location": "local", token: 1})
    for response in (missing, invalid):
        assert 400 <= response.status_code < 500 and token[:40] not in response.text and "[redacted]" in response.text


def test_headers_beyond_the_servers_limit_are_refused(client: httpx.Client) -> None:
    response = client.get(ENDPOINTS, params=V, headers={"x-ms-client-request-id": "r" * 1_000_000})
    assert response.status_code == 400


# --- the fuzz ---

HOSTILE_SEGMENTS = [
    "..",
    "%2E%2E",
    "%2e%2e%2f",
    "..%2F..%2Fetc%2Fpasswd",
    "%00",
    "a%00",
    "%0D%0A",
    "%C0%AE%C0%AE",
    "%FF%FE",
    "%",
    "%zz",
    "~",
    "a" * 300,
    "\u202e",
    "\U0001f600",
    "CON",
    "aux.txt",
    " ",
    "%20",
    "x" * 5000,
    "$(id)",
    "'\"<>",
]
ALPHABET = st.characters(codec="utf-8", exclude_categories=["Cs"])
SEGMENTS = st.one_of(
    st.sampled_from(HOSTILE_SEGMENTS),
    st.text(ALPHABET, max_size=40).map(lambda text: quote(text, safe="")),
    st.text(st.sampled_from("abcAB-_.~%0123456789"), min_size=1, max_size=300),
)
PRINTABLE = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
HEADER_TEXT = st.text(PRINTABLE, max_size=300).map(str.strip) | st.sampled_from(
    ["x" * 8000, "bytes=0-", "bytes=-1-99999999999999999999", "application/json; charset=utf-16", "SharedKey a:b"]
)
HEADER_NAMES = st.sampled_from(
    [
        "content-type",
        "x-ms-client-request-id",
        "azureml-model-deployment",
        "range",
        "x-ms-range",
        "repeatability-request-id",
        "x-ms-meta-a",
        "accept",
        "x-ms-date",
        "if-match",
        "x-ms-version",
    ]
)


def containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(children, max_size=5) | st.dictionaries(st.text(ALPHABET, max_size=20), children, max_size=5)


SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(ALPHABET, max_size=50)
JSON = st.recursive(SCALARS, containers, max_leaves=25)
ARM_BODIES = st.fixed_dictionaries(
    {"location": st.text(ALPHABET, max_size=30)},
    optional={
        "tags": st.dictionaries(st.text(max_size=20), JSON, max_size=5),
        "properties": JSON,
        "identity": JSON,
        "sku": JSON,
    },
)


def templates(segment: str, other: str) -> list[str]:
    """Paths the fuzz aims at, each with hostile segments where a name goes."""
    return [
        f"{ENDPOINTS}/{segment}",
        f"{ENDPOINTS}/{ENDPOINT}/deployments/{segment}",
        f"{ENDPOINTS}/{segment}/listkeys",
        f"/inference{ENDPOINTS}/{segment}/jobs",
        f"/inference{ENDPOINTS}/{ENDPOINT}/jobs",
        f"{WORKSPACE_ID}/jobs/{segment}",
        f"{WORKSPACE_ID}/datastores/{segment}",
        f"{WORKSPACE_ID}/datastores/{segment}/listSecrets",
        f"{WORKSPACE_ID}/models/{segment}/versions/{other}",
        f"{WORKSPACE_ID}/data/{segment}/versions/{other}",
        f"/subscriptions/{segment}/resourceGroups/{other}/providers/Microsoft.MachineLearningServices/workspaces/{other}",
        f"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/{segment}",
        f"/blob/{segment}/{other}/{segment}",
        f"/{segment}",
    ]


@dataclass
class Hostile:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None


@st.composite
def hostile_requests(draw: st.DrawFn) -> Hostile:
    path = draw(st.sampled_from(templates(draw(SEGMENTS), draw(SEGMENTS))))
    query = V if draw(st.integers(0, 9)) else {"api-version": draw(HEADER_TEXT)}
    if path.startswith("/blob/") and draw(st.booleans()):
        query = {"comp": draw(st.sampled_from(["block", "blocklist", "metadata", "list", "x"])), "sig": "forged"}
    headers = draw(st.dictionaries(HEADER_NAMES, HEADER_TEXT, max_size=3))
    if not draw(st.integers(0, 9)):
        headers["authorization"] = draw(HEADER_TEXT)
    body = draw(bodies())
    if body is not None and draw(st.integers(0, 4)):
        headers.setdefault("content-type", "application/json")  # else FastAPI never parses it
    return Hostile(draw(st.sampled_from(["GET", "PUT", "POST", "PATCH", "DELETE", "HEAD"])), path, query, headers, body)


def bodies() -> st.SearchStrategy[bytes | None]:
    as_json = (ARM_BODIES | JSON).map(lambda value: json.dumps(value).encode())
    deep = st.integers(MAX_DEPTH - 2, 3000).map(nested)
    long = st.integers(MAX_STRING - 2, MAX_STRING + 2).map(lambda size: json.dumps({"location": "s" * size}).encode())
    return st.none() | as_json | st.binary(max_size=200) | deep | long | st.just(b"\xff" * 64) | st.just(b"{" * 200)


@dataclass
class Secrets:
    """What no answer may show: unless the request itself carried it (the token never counts as carried)."""

    token: str
    echoable: list[str]

    def leaked(self, response: httpx.Response, sent: str) -> list[str]:
        shown = response.text
        found = [self.token] if self.token in shown else []
        return found + [secret for secret in self.echoable if secret in shown and secret not in sent]


@pytest.fixture(scope="module")
def secrets(server: Server, client: httpx.Client) -> Secrets:
    key = client.post(f"{WORKSPACE_ID}/datastores/workspaceblobstore/listSecrets", params=V).json()["key"]
    token = client.headers["authorization"].split(" ", 1)[1]
    return Secrets(token, [str(server.home), "/work/", "site-packages", "Traceback", key])


def test_a_fuzz_of_hostile_requests_gets_no_5xx_and_leaks_nothing(client: httpx.Client, secrets: Secrets) -> None:
    sent: list[int] = []
    started = time.monotonic()

    @given(request=hostile_requests())
    @settings(
        max_examples=FUZZ_REQUESTS + 100,
        derandomize=True,
        deadline=None,
        phases=(Phase.generate, Phase.shrink),
        suppress_health_check=list(HealthCheck),
    )
    def send(request: Hostile) -> None:
        response = client.request(
            request.method, request.path, params=request.query, headers=request.headers, content=request.body
        )
        sent.append(response.status_code)
        text = f"{response.request.url} {request.headers} {request.body!r}"
        assert response.status_code < 500, f"{request} -> {response.status_code} {response.text[:500]}"
        assert not secrets.leaked(response, text), f"{request} -> {response.text[:500]}"

    send()
    assert len(sent) >= FUZZ_REQUESTS, len(sent)
    print(f"{len(sent)} hostile requests in {time.monotonic() - started:.1f} s")
