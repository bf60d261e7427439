"""Azure's rules for new batch endpoints and deployments, with Azure's status, code and message; what a deployment
sets that batchpoint does not act on, named in its provisioning status (docs/management-plane.md, "Azure's
validations"). Through azure-ai-ml: tests/sdk/test_mlclient.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchpoint.store import open_store
from batchpoint.store.entities import Resource
from tests.api.arm import (
    create_endpoint,
    deployment_body,
    deployment_url,
    endpoint_body,
    endpoint_url,
    put_and_wait,
    wait_for_operation,
)
from tests.server import API, WORKSPACE_ID, Server, running

V = {"api-version": API}
LENGTH = "The name for {} must be at least 3 and at most 32 characters long (inclusive of both limits)."
CHARACTERS = (
    "The name for {} must start with an upper- or lowercase letter and only consist of '-'s and alphanumeric "
    "characters."
)
REFUSED_NAMES = [
    ("ab", LENGTH),
    ("a" * 33, LENGTH),
    ("my_endpoint", CHARACTERS),
    ("1st-endpoint", CHARACTERS),
    ("ends-with-", CHARACTERS),
]
ACCEPTED_NAMES = ["abc", "A" * 32, "blue-2", "Mixed-Case9"]


@pytest.fixture(scope="module", autouse=True)
def endpoint(server: Server) -> None:
    with server.client() as client:
        create_endpoint(client, "rules-ep")


@pytest.mark.parametrize(("name", "message"), REFUSED_NAMES)
def test_a_new_endpoint_with_a_name_azure_refuses_is_a_400_with_azures_message(
    server: Server, name: str, message: str
) -> None:
    with server.client() as client:
        refused = client.put(endpoint_url(name), params=V, json=endpoint_body())
        missing = client.get(endpoint_url(name), params=V)
    assert refused.status_code == 400
    assert refused.json() == {"error": {"code": "UserError", "message": message.format("an endpoint")}}
    assert missing.status_code == 404


@pytest.mark.parametrize(("name", "message"), REFUSED_NAMES)
def test_a_new_deployment_with_a_name_azure_refuses_is_a_400_with_azures_message(
    server: Server, name: str, message: str
) -> None:
    with server.client() as client:
        refused = client.put(deployment_url("rules-ep", name), params=V, json=deployment_body())
    assert refused.status_code == 400
    assert refused.json() == {"error": {"code": "UserError", "message": message.format("a deployment")}}


@pytest.mark.parametrize("name", ACCEPTED_NAMES)
def test_names_within_azures_rules_are_accepted(server: Server, name: str) -> None:
    with server.client() as client:
        endpoint = put_and_wait(client, endpoint_url(name), endpoint_body()).json()
        deployment = put_and_wait(client, deployment_url(name, name), deployment_body()).json()
        client.delete(endpoint_url(name), params=V)
    assert endpoint["name"] == deployment["name"] == name


def test_what_batchpoint_does_not_act_on_is_a_warning_of_the_deployments_provisioning(server: Server) -> None:
    environment = f"{WORKSPACE_ID}/environments/imaged/versions/1"
    body = deployment_body(environmentId=environment, resources={"instanceCount": 1, "instanceType": "Standard_D4"})
    with server.client() as client:
        assert client.put(environment, params=V, json={"properties": {"image": "python:3.11"}}).status_code == 201
        created = client.put(deployment_url("rules-ep", "warned"), params=V, json=body)
        status = wait_for_operation(client, created).json()
    assert status["status"] == "Succeeded"
    assert status["properties"]["warnings"] == [
        "resources.instanceType 'Standard_D4' is recorded, not acted on: the jobs run on the compute's workers (this "
        "server's processes or its Ray cluster's nodes), whatever the instance type.",
        "The environment's image 'python:3.11' is recorded, not pulled: the workers run in the server's own Python "
        "(the environment has no conda file).",
    ]


def test_endpoints_and_deployments_named_before_the_rules_keep_working(tmp_path: Path) -> None:
    """Names the rules refuse, stored by an earlier server, are read, changed, used and deleted as before."""
    old_endpoint, old_deployment = endpoint_url("my_old_ep"), deployment_url("my_old_ep", "d")
    with running(tmp_path) as server, server.client() as client:
        create_endpoint(client, "old-ep")
        put_and_wait(client, deployment_url("old-ep", "blue"), deployment_body())
    store = open_store(f"sqlite:///{tmp_path / 'batchpoint.db'}")
    for old, new in ((endpoint_url("old-ep"), old_endpoint), (deployment_url("old-ep", "blue"), old_deployment)):
        stored = store.get(old)
        assert stored is not None
        store.insert(Resource(new, stored.type, {**stored.body, "id": new, "name": new.rsplit("/", 1)[-1]}))
    store.close()

    with running(tmp_path) as server, server.client() as client:
        read = client.get(old_endpoint, params=V)
        changed = put_and_wait(client, old_endpoint, {**endpoint_body(), "tags": {"kept": "yes"}})
        redeployed = put_and_wait(client, old_deployment, {**deployment_body(), "tags": {"kept": "yes"}})
        new_deployment = put_and_wait(client, deployment_url("my_old_ep", "green"), deployment_body())
        deleted = wait_for_operation(client, client.delete(old_endpoint, params=V))
    assert read.status_code == 200
    assert changed.json()["tags"] == redeployed.json()["tags"] == {"kept": "yes"}
    assert new_deployment.json()["properties"]["provisioningState"] == "Succeeded"
    assert deleted.status_code in (200, 204)


UNRUNNABLE = [
    ({"miniBatchSize": 0}, "mini_batch_size must be at least 1, not 0 (properties.miniBatchSize)."),
    (
        {"maxConcurrencyPerInstance": 0},
        "max_concurrency_per_instance must be at least 1, not 0 (properties.maxConcurrencyPerInstance).",
    ),
    (
        {"resources": {"instanceCount": 0}},
        "instance_count must be at least 1, not 0 (properties.resources.instanceCount).",
    ),
    (
        {"retrySettings": {"maxRetries": -1}},
        "max_retries must be at least 0, not -1 (properties.retrySettings.maxRetries).",
    ),
    ({"outputFileName": "results/predictions.csv"}, "output_file_name must be a plain file name"),
    ({"outputFileName": ".."}, "output_file_name must be a plain file name"),
    ({"outputFileName": ""}, "output_file_name must be a plain file name, not ''"),
    ({"outputFileName": "logs"}, "output_file_name cannot be 'logs': the job keeps its logs"),
    ({"outputFileName": ".batchpoint"}, "output_file_name cannot be '.batchpoint'"),
    ({"outputFileName": "é" * 128}, "output_file_name must be a file name of at most 255 bytes, not 256"),
    ({"environmentVariables": {"A=B": "1"}}, "environment variable name 'A=B' is not valid"),
    ({"environmentVariables": {"": "1"}}, "environment variable name '' is not valid"),
    ({"environmentVariables": {"A": "x\u0000y"}}, "environment variable 'A' has a NUL character"),
]


@pytest.mark.parametrize(("settings", "message"), UNRUNNABLE)
def test_settings_no_job_could_run_with_are_a_400_naming_them_on_create_and_on_update(
    server: Server, settings: dict[str, object], message: str
) -> None:
    """Before, such a deployment was `Succeeded` and each invoke was refused (`maxRetries` -1 until this test named
    it, "The job cannot run with these settings: max_retries must be at least 0, not -1"), or (for an environment
    variable) each job's workers died in their start with "exited with code 1 during init()"."""
    with server.client() as client:
        put_and_wait(client, deployment_url("rules-ep", "runnable"), deployment_body())
        created = client.put(deployment_url("rules-ep", "unrunnable"), params=V, json=deployment_body(**settings))
        updated = client.put(deployment_url("rules-ep", "runnable"), params=V, json=deployment_body(**settings))
        missing = client.get(deployment_url("rules-ep", "unrunnable"), params=V)
    for refused in (created, updated):
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["code"] == "UserError"
        assert refused.json()["error"]["message"].startswith("No job can run with this deployment's settings: ")
        assert message in refused.json()["error"]["message"]
    assert missing.status_code == 404


def test_odd_but_runnable_settings_are_accepted(server: Server) -> None:
    settings = {
        "miniBatchSize": 10**12,
        "outputFileName": "prédictions 日本.csv",
        "environmentVariables": {"EQUALS": "a=b=c", "LINES": "one\ntwo", "EMPTY": "", "NONE": None},
    }
    with server.client() as client:
        deployment = put_and_wait(client, deployment_url("rules-ep", "odd"), deployment_body(**settings))
    assert deployment.json()["properties"]["provisioningState"] == "Succeeded", deployment.text
