"""Datastores as ARM resources: the built-in two, further ones, and their secrets."""

from __future__ import annotations

from tests.server import API, WORKSPACE_ID, Server

V = {"api-version": API}
DATASTORES = f"{WORKSPACE_ID}/datastores"


def test_every_workspace_has_a_default_blob_store_and_an_artifact_store(server: Server) -> None:
    with server.client() as client:
        names = [item["name"] for item in client.get(DATASTORES, params=V).json()["value"]]
        default = client.get(DATASTORES, params={**V, "isDefault": "true", "count": "30"}).json()["value"]
        blobstore = client.get(f"{DATASTORES}/workspaceblobstore", params=V).json()["properties"]
    assert {"workspaceblobstore", "workspaceartifactstore"} <= set(names)
    assert [item["name"] for item in default] == ["workspaceblobstore"]
    assert blobstore["datastoreType"] == "AzureBlob" and blobstore["isDefault"] is True
    assert blobstore["accountName"].startswith(server.base_url.split("://")[1] + "/blob/bp")
    assert blobstore["credentials"] == {"credentialsType": "AccountKey"}


def test_list_secrets_returns_the_account_key(server: Server) -> None:
    with server.client() as client:
        secrets = client.post(f"{DATASTORES}/workspaceblobstore/listSecrets", params=V, json={"expirableSecret": True})
    assert secrets.status_code == 200
    assert secrets.json()["secretsType"] == "AccountKey" and len(secrets.json()["key"]) == 44


def test_remote_datastore_keeps_its_key_secret(server: Server) -> None:
    body = {
        "properties": {
            "datastoreType": "azureblob",
            "accountName": "devstoreaccount1",
            "containerName": "data",
            "endpoint": "127.0.0.1:10000",
            "protocol": "http",
            "credentials": {
                "credentialsType": "AccountKey",
                "secrets": {"secretsType": "AccountKey", "key": "c2VjcmV0"},
            },
        }
    }
    with server.client() as client:
        created = client.put(f"{DATASTORES}/remote", params=V, json=body)
        got = client.get(f"{DATASTORES}/remote", params=V).text
        secrets = client.post(f"{DATASTORES}/remote/listSecrets", params=V).json()
    assert created.status_code == 201 and "c2VjcmV0" not in created.text and "c2VjcmV0" not in got
    assert secrets == {"secretsType": "AccountKey", "key": "c2VjcmV0"}


def test_other_datastore_types_and_missing_fields_are_refused(server: Server) -> None:
    with server.client() as client:
        files = client.put(f"{DATASTORES}/files", params=V, json={"properties": {"datastoreType": "AzureFile"}})
        partial = client.put(f"{DATASTORES}/partial", params=V, json={"properties": {"datastoreType": "AzureBlob"}})
        builtin = client.delete(f"{DATASTORES}/workspaceblobstore", params=V)
    assert files.status_code == 400 and "AzureBlob" in files.json()["error"]["message"]
    assert partial.status_code == 400 and "accountName" in partial.json()["error"]["message"]
    assert builtin.status_code == 400


def test_code_hash_lookup_finds_versions_under_any_name(server: Server) -> None:
    body = {
        "properties": {
            "codeUri": "https://x/y",
            "isAnonymous": True,
            "properties": {"hash_sha256": "abc", "hash_version": 202208},
        }
    }
    with server.client() as client:
        client.put(f"{WORKSPACE_ID}/codes/first/versions/1", params=V, json=body)
        found = client.get(
            f"{WORKSPACE_ID}/codes/random-name/versions", params={**V, "hash": "abc", "hashVersion": "202208"}
        )
        none = client.get(
            f"{WORKSPACE_ID}/codes/random-name/versions", params={**V, "hash": "zzz", "hashVersion": "202208"}
        )
    assert [item["name"] for item in found.json()["value"]] == ["1"]
    assert found.json()["value"][0]["id"].endswith("/codes/first/versions/1")
    assert none.json()["value"] == []
