"""Fuzz the real HTTP server with schemathesis, from the OpenAPI document it serves itself.

Every generated request must get a documented status code, content type and body, and never a 5xx.
Most requests aim at the default workspace and at an endpoint and deployment created up front, so that
they reach the handlers instead of stopping at a 404 for an unknown subscription or workspace.

Generation is derandomized, so a run is reproducible; a failure prints a curl command that replays it.
Requests once seen failing are replayed on every run too, as generation reaches them only by luck.
`make test` sends a few examples per operation; `make fuzz` (BATCHPOINT_FUZZ_EXAMPLES) sends many more.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core import NOT_SET
from schemathesis.core.result import Err
from schemathesis.hooks import HookContext
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.schemas import OpenApiSchema

from tests.api.arm import create_endpoint, deployment_body, deployment_url, put_and_wait
from tests.server import API, SUBSCRIPTION, Server

ENDPOINT = "fuzz-endpoint"
DEPLOYMENT = "fuzz-deployment"
# The existing parents every ARM path hangs from; `location` only appears in the operation status paths.
WORKSPACE_SCOPE = {
    "subscriptionId": SUBSCRIPTION,
    "resourceGroupName": "local",
    "workspaceName": "default",
    "location": "local",
}
SEEDED_RESOURCES = {"endpointName": ENDPOINT, "deploymentName": DEPLOYMENT}
EXISTING = WORKSPACE_SCOPE | SEEDED_RESOURCES
MAX_EXAMPLES = int(os.environ.get("BATCHPOINT_FUZZ_EXAMPLES", "5"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@dataclass(frozen=True)
class Finding:
    """A request, against the existing resources, that once failed the checks."""

    operation_id: str
    query: dict[str, str] = field(default_factory=dict)
    body: Any = NOT_SET


# base64url of {"m":1e999,"k":"a"}: a continuation token whose keyset timestamp is infinite.
INFINITE_CURSOR = "eyJtIjoxZTk5OSwiayI6ImEifQ"

# Server bugs found while writing this test, each answered with a 500: these cases fail until they are fixed.
FINDINGS = [
    pytest.param(Finding("BatchEndpoints_Update", body={"identity": {"type": None}}), id="patch-identity-type-null"),
    pytest.param(Finding("BatchEndpoints_List", query={"$skip": str(2**63)}), id="skip-beyond-int64"),
    pytest.param(Finding("BatchEndpoints_List", query={"$skip": "\N{SUPERSCRIPT TWO}"}), id="skip-non-ascii-digit"),
    pytest.param(Finding("BatchEndpoints_List", query={"$skip": INFINITE_CURSOR}), id="skip-infinite-cursor"),
]


@pytest.fixture(scope="module")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The real server over plain HTTP on SQLite, holding one endpoint with one deployment."""
    running = Server(home=tmp_path_factory.mktemp("home")).start()
    with running.client() as client:
        create_endpoint(client, ENDPOINT)
        put_and_wait(client, deployment_url(ENDPOINT, DEPLOYMENT), deployment_body())
    yield running
    running.stop()


@pytest.fixture(scope="module")
def api_schema(sqlite_server: Server) -> OpenApiSchema:
    """The document the server serves, with hooks that aim generated requests at existing resources."""
    schema = schemathesis.openapi.from_url(f"{sqlite_server.base_url}/openapi.json")
    schema.config.update(base_url=sqlite_server.base_url, headers=authorization(sqlite_server))
    schema.hooks.hook("flatmap_path_parameters")(aim_at_existing_resources)
    schema.hooks.hook("flatmap_query")(mostly_valid_api_version)
    return schema


def authorization(server: Server) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.token()}"}


def chance(numerator: int, denominator: int) -> st.SearchStrategy[bool]:
    return st.integers(min_value=1, max_value=denominator).map(lambda drawn: drawn <= numerator)


def deleted_parameter(path: str) -> str:
    """The path parameter naming the resource a DELETE on `path` removes: its last one."""
    return path.rsplit("{", 1)[-1].rstrip("}")


def aim_at_existing_resources(
    context: HookContext, generated: dict[str, Any] | None
) -> st.SearchStrategy[dict[str, Any] | None]:
    """Nine requests in ten go to the default workspace, half of them to the seeded endpoint and deployment.

    A DELETE keeps its generated resource name, so that the fuzzer never removes what the others rely on."""
    operation = context.operation
    assert operation is not None
    spared = deleted_parameter(operation.path) if operation.method.upper() == "DELETE" else None

    def override(in_scope: bool, seeded: bool) -> dict[str, Any] | None:
        if not generated or not in_scope:
            return generated
        chosen = EXISTING if seeded else WORKSPACE_SCOPE
        return generated | {name: value for name, value in chosen.items() if name in generated and name != spared}

    return st.tuples(chance(9, 10), chance(1, 2)).map(lambda flags: override(*flags))


def mostly_valid_api_version(
    context: HookContext, generated: dict[str, Any] | None
) -> st.SearchStrategy[dict[str, Any] | None]:
    """Nine requests in ten carry the supported api-version; the rest keep whatever was generated, if anything."""
    return chance(9, 10).map(lambda valid: {**(generated or {}), "api-version": API} if valid else generated)


def operations(schema: OpenApiSchema) -> Iterator[APIOperation]:
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        yield result.ok()


def fuzz(operation: APIOperation) -> None:
    """Send valid and invalid requests to one operation; a failure names the broken checks and a curl to replay it."""
    requests = st.one_of(*(operation.as_strategy(mode) for mode in GenerationMode))

    @given(case=requests)
    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        deadline=None,
        phases=(Phase.generate, Phase.shrink),  # no explain phase: it replays a failure many more times
    )
    def send(case: Case) -> None:
        case.call_and_validate(checks=CHECKS)

    send()


# One subtest per operation, as the operations are only known once the server runs; schemathesis's own
# `schemathesis.pytest.from_fixture` does the same but breaks on pytest 9 (it reads `Function._nodeid`).
def test_every_response_is_documented_and_never_a_server_error(
    api_schema: OpenApiSchema, subtests: pytest.Subtests
) -> None:
    for operation in operations(api_schema):
        with subtests.test(operation.label):
            fuzz(operation)


@pytest.mark.parametrize("finding", FINDINGS)
def test_requests_that_once_failed_are_answered_as_documented(
    sqlite_server: Server, api_schema: OpenApiSchema, finding: Finding
) -> None:
    operation = api_schema.find_operation_by_id(finding.operation_id)
    path_parameters = {name: value for name, value in EXISTING.items() if f"{{{name}}}" in operation.path}
    query = {"api-version": API, **finding.query}
    case = operation.Case(
        path_parameters=path_parameters, headers=authorization(sqlite_server), query=query, body=finding.body
    )
    case.call_and_validate(checks=CHECKS)
