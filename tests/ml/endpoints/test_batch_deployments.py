"""Batch deployments: defaults, create-only fields, provisioning checks, paging and errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchpoint.store import open_store
from tests.api.arm import (
    create_endpoint,
    deployment_body,
    deployment_url,
    endpoint_url,
    put_and_wait,
    wait_for_operation,
)
from tests.server import API, WORKSPACE_ID, Server, running

V = {"api-version": API}
CODE = {"properties": {"codeUri": "https://x/y"}}
DEFAULTS = {
    "errorThreshold": -1,
    "loggingLevel": "Info",
    "maxConcurrencyPerInstance": 1,
    "miniBatchSize": 10,
    "outputAction": "AppendRow",
    "outputFileName": "predictions.csv",
    "resources": {"instanceCount": 1},
    "retrySettings": {"maxRetries": 3, "timeout": "PT30S"},
    "properties": {},
    "provisioningState": "Succeeded",
}


@pytest.fixture(scope="module", autouse=True)
def endpoint(server: Server) -> None:
    with server.client() as client:
        create_endpoint(client, "dep-ep")


def test_defaults_are_filled_in(server: Server) -> None:
    with server.client() as client:
        deployment = put_and_wait(client, deployment_url("dep-ep", "plain"), deployment_body()).json()
    assert deployment["properties"] == DEFAULTS
    assert deployment["type"] == "Microsoft.MachineLearningServices/workspaces/batchEndpoints/deployments"


def test_sdk_casing_is_accepted_and_canonicalized(server: Server) -> None:
    body = deployment_body(loggingLevel="debug", outputAction="summaryonly", model=None)
    with server.client() as client:
        deployment = put_and_wait(client, deployment_url("dep-ep", "cased"), body).json()
    assert deployment["properties"]["loggingLevel"] == "Debug"
    assert deployment["properties"]["outputAction"] == "SummaryOnly"


def test_missing_model_fails_provisioning_with_a_reason(server: Server) -> None:
    body = deployment_body(model={"referenceType": "Id", "assetId": f"{WORKSPACE_ID}/models/nope/versions/1"})
    with server.client() as client:
        created = client.put(deployment_url("dep-ep", "broken"), params=V, json=body)
        status = wait_for_operation(client, created).json()
        deployment = client.get(deployment_url("dep-ep", "broken"), params=V).json()
    assert status["status"] == "Failed"
    assert "nope" in status["error"]["message"] and status["error"]["code"]
    assert deployment["properties"]["provisioningState"] == "Failed"


def test_a_provisioning_that_fails_unexpectedly_fails_the_deployment_not_leaves_it_creating(tmp_path: Path) -> None:
    """A model version the server cannot read (stored by an earlier server that took a number for its modelType)
    makes provisioning raise an AttributeError. Before, the operation failed but the deployment read `Creating` until
    its next PUT, and its invokes were refused."""
    model = f"{WORKSPACE_ID}/models/odd/versions/1"
    with running(tmp_path) as server, server.client() as client:
        create_endpoint(client, "odd-ep")
        assert client.put(model, params=V, json={"properties": {"modelType": "custom_model"}}).status_code == 201
    store = open_store(f"sqlite:///{tmp_path / 'batchpoint.db'}")
    stored = store.get(model)
    assert stored is not None
    stored.body["properties"]["modelType"] = 5
    store.update(stored)
    store.close()

    body = deployment_body(model={"referenceType": "Id", "assetId": "azureml:odd:1"})
    with running(tmp_path) as server, server.client() as client:
        created = client.put(deployment_url("odd-ep", "odd"), params=V, json=body)
        status = wait_for_operation(client, created).json()
        failed = client.get(deployment_url("odd-ep", "odd"), params=V).json()
        fixed = put_and_wait(client, deployment_url("odd-ep", "odd"), deployment_body()).json()
    assert status["status"] == "Failed"
    assert status["error"] == {"code": "InternalError", "message": "The operation failed; see the server's log."}
    assert failed["properties"]["provisioningState"] == "Failed"
    assert fixed["properties"]["provisioningState"] == "Succeeded"


def test_create_only_fields_cannot_change(server: Server) -> None:
    body = deployment_body(codeConfiguration={"scoringScript": "score.py"}, resources={"instanceCount": 2})
    with server.client() as client:
        put_and_wait(client, deployment_url("dep-ep", "fixed"), body)
        code = client.put(
            deployment_url("dep-ep", "fixed"),
            params=V,
            json=deployment_body(codeConfiguration={"scoringScript": "other.py"}, resources={"instanceCount": 2}),
        )
        scale = client.put(
            deployment_url("dep-ep", "fixed"),
            params=V,
            json=deployment_body(codeConfiguration={"scoringScript": "score.py"}, resources={"instanceCount": 3}),
        )
        same = client.put(deployment_url("dep-ep", "fixed"), params=V, json={**body, "tags": {"k": "v"}})
        wait_for_operation(client, same)
    assert code.status_code == 400 and "codeConfiguration" in code.json()["error"]["message"]
    assert scale.status_code == 400 and "resources" in scale.json()["error"]["message"]
    assert same.status_code == 200


def test_patch_changes_only_tags_and_description(server: Server) -> None:
    with server.client() as client:
        put_and_wait(client, deployment_url("dep-ep", "patched"), deployment_body(description="old"))
        patched = client.patch(
            deployment_url("dep-ep", "patched"),
            params=V,
            json={"tags": {"a": "b"}, "properties": {"description": "new"}},
        )
        final = wait_for_operation(client, patched).json()
        refused = client.patch(deployment_url("dep-ep", "patched"), params=V, json={"properties": {"miniBatchSize": 5}})
    assert final["tags"] == {"a": "b"} and final["properties"]["description"] == "new"
    assert refused.status_code == 400


@pytest.mark.parametrize(
    ("properties", "field"),
    [
        ({"miniBatchSize": "many"}, "miniBatchSize"),
        ({"miniBatchSize": 2**63}, "miniBatchSize"),
        ({"loggingLevel": "Verbose"}, "loggingLevel"),
        ({"errorThreshold": -2}, "errorThreshold"),
        ({"model": {"referenceType": "Id"}}, "assetId"),
        ({"model": {"referenceType": "Url", "assetId": "x"}}, "model"),
        ({"codeConfiguration": {"codeId": "x"}}, "scoringScript"),
        ({"codeConfiguration": {"scoringScript": "---"}}, "scoringScript"),
        ({"retrySettings": {"timeout": "soon"}}, "timeout"),
        ({"unknownField": 1}, "unknownField"),
        ({"deploymentConfiguration": {"deploymentConfigurationType": "Model", "extra": 1}}, "extra"),
    ],
)
def test_invalid_bodies_get_400_naming_the_field(server: Server, properties: dict, field: str) -> None:
    with server.client() as client:
        response = client.put(deployment_url("dep-ep", "invalid"), params=V, json=deployment_body(**properties))
    assert response.status_code == 400, response.text
    assert field in response.json()["error"]["message"]


TOO_LONG = ["P99999999999D", "P1000000000D", "PT99999999999999999999S"]


@pytest.mark.parametrize("timeout", TOO_LONG)
def test_a_timeout_too_long_for_a_duration_is_a_400_naming_it(server: Server, timeout: str) -> None:
    """Before, a 500: isodate's OverflowError ("Python int too large to convert to C int")."""
    with server.client() as client:
        response = client.put(
            deployment_url("dep-ep", "long"), params=V, json=deployment_body(retrySettings={"timeout": timeout})
        )
        missing = client.get(deployment_url("dep-ep", "long"), params=V)
    assert response.status_code == 400, response.text
    assert response.json() == {
        "error": {
            "code": "BadRequest",
            "message": f"retrySettings.timeout '{timeout}' is not a valid duration: it is too long (at most "
            "999999999 days).",
        }
    }
    assert missing.status_code == 404


def test_location_is_required(server: Server) -> None:
    with server.client() as client:
        response = client.put(deployment_url("dep-ep", "nowhere"), params=V, json={"properties": {}})
    assert response.status_code == 400 and "location" in response.json()["error"]["message"]


def test_names_outside_the_arm_pattern_are_refused(server: Server) -> None:
    with server.client() as client:
        response = client.put(deployment_url("dep-ep", "-bad.name"), params=V, json=deployment_body())
    assert response.status_code == 400


def test_deployment_under_missing_endpoint_is_404(server: Server) -> None:
    with server.client() as client:
        put = client.put(deployment_url("ghost", "d"), params=V, json=deployment_body())
        listed = client.get(endpoint_url("ghost") + "/deployments", params=V)
    assert put.status_code == 404 and "ghost" in put.json()["error"]["message"]
    assert listed.status_code == 404 and listed.json()["error"]["code"] == "ResourceNotFound"


def test_deleting_an_endpoint_deletes_its_deployments(server: Server) -> None:
    with server.client() as client:
        create_endpoint(client, "cascade")
        put_and_wait(client, deployment_url("cascade", "child"), deployment_body())
        wait_for_operation(client, client.delete(endpoint_url("cascade"), params=V))
        create_endpoint(client, "cascade")
        child = client.get(deployment_url("cascade", "child"), params=V)
    assert child.status_code == 404


def test_create_only_fields_left_out_of_a_later_put_are_kept(server: Server) -> None:
    """azure-ai-ml sends ``resources.properties: {}``; a later PUT without it, or without ``codeId`` or
    ``instanceCount``, keeps what was stored, and ``{}`` is the same as no object."""
    code_id = f"{WORKSPACE_ID}/codes/kept-code/versions/1"
    sdk = deployment_body(
        codeConfiguration={"codeId": code_id, "scoringScript": "score.py"},
        resources={"instanceCount": 2, "properties": {}},
    )
    bare = deployment_body(codeConfiguration={"scoringScript": "score.py"}, resources={"instanceCount": 2})
    with server.client() as client:
        assert client.put(f"{WORKSPACE_ID}/codes/kept-code/versions/1", params=V, json=CODE).status_code in (200, 201)
        put_and_wait(client, deployment_url("dep-ep", "kept"), sdk)
        answers = []
        for body in (
            bare,
            sdk,
            deployment_body(description="new", codeConfiguration={"scoringScript": "score.py"}),
            deployment_body(description="newer", resources={}),
        ):
            answer = client.put(deployment_url("dep-ep", "kept"), params=V, json=body)
            answers.append(answer.status_code)
            if "Azure-AsyncOperation" in answer.headers:
                wait_for_operation(client, answer)
        put_and_wait(client, deployment_url("dep-ep", "kept-bare"), bare)
        with_empty = deployment_body(
            codeConfiguration={"scoringScript": "score.py"}, resources={"instanceCount": 2, "properties": {}}
        )
        reverse = client.put(deployment_url("dep-ep", "kept-bare"), params=V, json=with_empty)
        final = client.get(deployment_url("dep-ep", "kept"), params=V).json()["properties"]
    assert answers == [200, 200, 200, 200], answers
    assert reverse.status_code == 200, reverse.text
    assert final["codeConfiguration"] == {"codeId": code_id, "scoringScript": "score.py"}
    assert final["resources"]["instanceCount"] == 2 and final["description"] == "newer"


def test_a_code_id_is_the_same_in_any_casing_and_short_form(server: Server) -> None:
    """ARM ids are case-insensitive: an MLClient spelling the resource group otherwise can still update the
    deployment. 'azureml:name:version' is stored as the ARM id azure-ai-ml sends for it."""
    code_id = f"{WORKSPACE_ID}/codes/cased-code/versions/1"

    def body(code: str, script: str = "score.py") -> dict:
        return deployment_body(codeConfiguration={"codeId": code, "scoringScript": script})

    with server.client() as client:
        for version in ("1", "2"):
            client.put(f"{WORKSPACE_ID}/codes/cased-code/versions/{version}", params=V, json=CODE).raise_for_status()
        put_and_wait(client, deployment_url("dep-ep", "cased-code"), body(code_id))
        same = [
            client.put(deployment_url("dep-ep", "cased-code"), params=V, json=body(spelling))
            for spelling in (code_id.lower(), code_id.replace("/resourceGroups/local/", "/resourceGroups/LOCAL/"))
        ]
        short = put_and_wait(client, deployment_url("dep-ep", "short-code"), body("azureml:cased-code:1")).json()
        sdk = client.put(deployment_url("dep-ep", "short-code"), params=V, json=body(code_id))
        other = client.put(deployment_url("dep-ep", "cased-code"), params=V, json=body(code_id[:-1] + "2"))
        script = client.put(deployment_url("dep-ep", "cased-code"), params=V, json=body(code_id, "Score.py"))
        stored = client.get(deployment_url("dep-ep", "cased-code"), params=V).json()["properties"]
    assert [answer.status_code for answer in same] == [200, 200], same[0].text
    assert short["properties"]["codeConfiguration"]["codeId"] == code_id
    assert sdk.status_code == 200, sdk.text
    assert other.status_code == 400 and script.status_code == 400
    assert stored["codeConfiguration"]["codeId"] == code_id


def test_a_code_id_an_earlier_server_stored_short_is_the_id_it_names(tmp_path: Path) -> None:
    """Servers before 143ac8b stored codeId as sent ('azureml:name:version', '@latest'). Each later PUT of such a
    deployment was then a 400 "'properties.codeConfiguration.codeId' can only be set when the resource is created
    (it is 'azureml:old-code:1')": one leaving codeConfiguration out, one re-sending the same short form and
    azure-ai-ml's ARM id alike. A stored short form is now compared as the id it names ('@latest': the version
    latest now, as the earlier server's invokes used)."""
    versions = f"{WORKSPACE_ID}/codes/old-code/versions"
    pinned, latest = deployment_url("old-code-ep", "pinned"), deployment_url("old-code-ep", "latest")

    def body(code: str) -> dict:
        return deployment_body(codeConfiguration={"codeId": code, "scoringScript": "score.py"})

    with running(tmp_path) as server, server.client() as client:
        create_endpoint(client, "old-code-ep")
        for version in ("1", "2"):
            client.put(f"{versions}/{version}", params=V, json=CODE).raise_for_status()
        for url in (pinned, latest):
            put_and_wait(client, url, body(f"{versions}/1"))
    store = open_store(f"sqlite:///{tmp_path / 'batchpoint.db'}")
    for url, short in ((pinned, "azureml:old-code:1"), (latest, "azureml:old-code@latest")):
        stored = store.get(url)
        assert stored is not None
        stored.body["properties"]["codeConfiguration"]["codeId"] = short
        store.update(stored)
    store.close()

    with running(tmp_path) as server, server.client() as client:
        same = [client.put(pinned, params=V, json=body(code)) for code in ("azureml:old-code:1", f"{versions}/1")]
        described = put_and_wait(client, pinned, deployment_body(description="newer")).json()["properties"]
        again = put_and_wait(client, pinned, deployment_body(description="newest")).json()["properties"]
        other = client.put(pinned, params=V, json=body(f"{versions}/2"))
        latest_sdk = client.put(latest, params=V, json=body(f"{versions}/2"))
        latest_described = put_and_wait(client, latest, deployment_body(description="newer")).json()["properties"]
        latest_before = client.put(latest, params=V, json=body(f"{versions}/1"))
    assert [answer.status_code for answer in same] == [200, 200], same[0].text
    assert described["codeConfiguration"]["codeId"] == f"{versions}/1" and described["description"] == "newer"
    assert again["provisioningState"] == "Succeeded" and again["description"] == "newest"
    assert other.status_code == 400 and "it is '/subscriptions/" in other.json()["error"]["message"]
    assert latest_sdk.status_code == 200, latest_sdk.text
    assert latest_described["codeConfiguration"]["codeId"] == f"{versions}/2"
    assert latest_before.status_code == 400
