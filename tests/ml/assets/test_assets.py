"""Versioned assets as ARM resources, and deployments that point at them."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchpoint.store import open_store
from tests.api.arm import create_compute, create_endpoint, deployment_body, deployment_url, put_and_wait
from tests.server import API, WORKSPACE_ID, Server, running

V = {"api-version": API}


def test_model_version_round_trip_with_flavors_object(server: Server) -> None:
    url = f"{WORKSPACE_ID}/models/sk/versions/1"
    with server.client() as client:
        created = client.put(url, params=V, json={"properties": {"modelUri": "azureml://datastores/x/paths/m"}})
        container = client.get(f"{WORKSPACE_ID}/models/sk", params=V)
        got = client.get(url, params=V).json()
    assert created.status_code == 201
    assert container.status_code == 200
    assert got["properties"]["flavors"] == {} and got["properties"]["isArchived"] is False
    assert got["type"] == "Microsoft.MachineLearningServices/workspaces/models/versions"


def test_versions_list_newest_first(server: Server) -> None:
    with server.client() as client:
        for version in ("1", "2", "3"):
            client.put(
                f"{WORKSPACE_ID}/environments/env/versions/{version}", params=V, json={"properties": {"image": "x"}}
            )
        newest = client.get(
            f"{WORKSPACE_ID}/environments/env/versions", params={**V, "$orderBy": "createdtime desc", "$top": "1"}
        ).json()
    assert [item["name"] for item in newest["value"]] == ["3"]


def test_unknown_asset_kind_is_404(server: Server) -> None:
    with server.client() as client:
        response = client.get(f"{WORKSPACE_ID}/gadgets/x", params=V)
    assert response.status_code == 404 and response.json()["error"]["code"] == "NotFound"


def test_deployment_referencing_existing_assets_succeeds(server: Server) -> None:
    with server.client() as client:
        create_endpoint(client, "assets-ep")
        create_compute(client, "cpu-cluster")
        client.put(f"{WORKSPACE_ID}/models/m/versions/1", params=V, json={"properties": {}})
        client.put(f"{WORKSPACE_ID}/models/m/versions/2", params=V, json={"properties": {}})
        client.put(f"{WORKSPACE_ID}/codes/c/versions/1", params=V, json={"properties": {"codeUri": "x"}})
        client.put(f"{WORKSPACE_ID}/environments/e/versions/1", params=V, json={"properties": {"image": "x"}})
        body = deployment_body(
            model={"referenceType": "Id", "assetId": "azureml:m@latest"},
            codeConfiguration={"codeId": f"{WORKSPACE_ID}/codes/c/versions/1", "scoringScript": "score.py"},
            environmentId="azureml:e:1",
            compute=f"{WORKSPACE_ID}/computes/cpu-cluster",
        )
        deployment = put_and_wait(client, deployment_url("assets-ep", "ok-1"), body).json()
    assert deployment["properties"]["provisioningState"] == "Succeeded"


def test_list_view_type_is_taken_and_every_container_listed(server: Server) -> None:
    with server.client() as client:
        client.put(f"{WORKSPACE_ID}/data/viewed/versions/1", params=V, json={"properties": {"dataUri": "x"}})
        archived = client.get(f"{WORKSPACE_ID}/data", params={**V, "listViewType": "ArchivedOnly"})
    assert archived.status_code == 200
    assert "viewed" in [item["name"] for item in archived.json()["value"]]


@pytest.mark.parametrize(
    ("collection", "properties", "field"),
    [
        ("models", {"modelType": 5}, "modelType"),
        ("models", {"modelUri": ["azureml://datastores/x/paths/m"]}, "modelUri"),
        ("models", {"description": {"a": 1}}, "description"),
        ("environments", {"condaFile": 5}, "condaFile"),
        ("environments", {"image": True}, "image"),
        ("codes", {"codeUri": 5}, "codeUri"),
        ("data", {"dataUri": 5}, "dataUri"),
        ("components", {"isArchived": [1]}, "isArchived"),
    ],
)
def test_a_version_field_the_spec_types_as_a_string_refuses_another_type(
    server: Server, collection: str, properties: dict[str, object], field: str
) -> None:
    """Before, the version was stored (201), and a deployment of it failed with an InternalError (AttributeError:
    'int' object has no attribute 'lower', or 'read')."""
    url = f"{WORKSPACE_ID}/{collection}/typed/versions/1"
    with server.client() as client:
        refused = client.put(url, params=V, json={"properties": properties})
        missing = client.get(url, params=V)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["code"] == "InvalidRequestContent"
    assert f"properties.{field}: " in refused.json()["error"]["message"]
    assert missing.status_code == 404


@pytest.mark.parametrize("collection", ["models", "environments", "codes"])
def test_a_containers_read_only_versions_are_the_servers_whatever_a_client_sends(
    server: Server, collection: str
) -> None:
    """latestVersion and nextVersion are readOnly in the spec. Before, a container PUT stored what it sent: with
    nextVersion 'abc' the next version PUT was a 500 (and the version was saved anyway), and with latestVersion '99'
    `versions/azureml_default` was a 404."""
    container = f"{WORKSPACE_ID}/{collection}/read-only"
    with server.client() as client:
        created = client.put(container, params=V, json={"properties": {"nextVersion": "abc", "latestVersion": "99"}})
        version = client.put(f"{container}/versions/1", params=V, json={"properties": {"description": "one"}})
        updated = client.put(
            container, params=V, json={"properties": {"description": "c", "nextVersion": "7", "latestVersion": "99"}}
        )
        default = client.get(f"{container}/versions/azureml_default", params=V)
    assert created.status_code == 201
    assert "nextVersion" not in created.json()["properties"]
    assert "latestVersion" not in created.json()["properties"]
    assert version.status_code == 201, version.text
    assert updated.status_code == 200
    assert updated.json()["properties"]["description"] == "c"
    assert updated.json()["properties"]["nextVersion"] == "2"
    assert updated.json()["properties"]["latestVersion"] == "1"
    assert default.status_code == 200 and default.json()["properties"]["description"] == "one"


def test_a_version_an_earlier_server_stored_with_nulls_is_the_same_definition_sent_again(tmp_path: Path) -> None:
    """An earlier server stored a version's top-level nulls as sent (`isAnonymous`, `modelType`); a null is now
    absent, so its default applies. Before, sending the same body again was a 409 'differs in: isAnonymous,
    modelType, properties'; it is the same definition."""
    version = f"{WORKSPACE_ID}/models/old/versions/1"
    body = {"properties": {"modelUri": "azureml://x", "isAnonymous": None, "modelType": None, "properties": None}}
    with running(tmp_path) as server, server.client() as client:
        assert client.put(version, params=V, json={"properties": {"modelUri": "azureml://x"}}).status_code == 201
    store = open_store(f"sqlite:///{tmp_path / 'batchpoint.db'}")
    stored = store.get(version)
    assert stored is not None
    stored.body["properties"].update(isAnonymous=None, modelType=None, properties=None)  # as an earlier server did
    store.update(stored)
    store.close()

    with running(tmp_path) as server, server.client() as client:
        again = client.put(version, params=V, json=body)

    assert again.status_code == 200, again.text
