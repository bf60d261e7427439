"""Batch endpoints over the real HTTP server, on SQLite and (when reachable) PostgreSQL."""

from __future__ import annotations

import uuid
from pathlib import Path

from batchpoint.access.issuer import ensure_issuer
from batchpoint.store import open_store
from tests.api.arm import (
    ENDPOINTS,
    compute_url,
    create_compute,
    create_endpoint,
    endpoint_body,
    endpoint_url,
    grant,
    put_and_wait,
    wait_for_operation,
)
from tests.server import API, WORKSPACE_ID, Server, running

V = {"api-version": API}


def test_create_answers_201_with_async_operation_then_succeeds(server: Server) -> None:
    with server.client() as client:
        created = client.put(endpoint_url("ep1"), params=V, json=endpoint_body(description="first"))
        assert created.status_code == 201
        assert created.headers["Retry-After"] == "1"
        assert created.headers["Azure-AsyncOperation"].startswith(server.base_url + "/subscriptions/")
        assert created.json()["properties"]["provisioningState"] == "Creating"
        status = wait_for_operation(client, created).json()
        assert status["status"] == "Succeeded" and status["name"] and status["endTime"]
        endpoint = client.get(endpoint_url("ep1"), params=V).json()
    assert endpoint["id"] == f"{ENDPOINTS}/ep1"
    assert endpoint["type"] == "Microsoft.MachineLearningServices/workspaces/batchEndpoints"
    assert endpoint["properties"]["provisioningState"] == "Succeeded"
    assert endpoint["properties"]["authMode"] == "AADToken"
    assert endpoint["properties"]["scoringUri"] == f"{server.base_url}/inference{ENDPOINTS}/ep1/jobs"
    assert endpoint["properties"]["swaggerUri"].startswith(server.base_url)
    assert "keys" not in endpoint["properties"]
    assert endpoint["systemData"]["createdAt"].endswith("Z")


def test_enum_values_match_any_case_and_come_back_canonical(server: Server) -> None:
    with server.client() as client:
        endpoint = create_endpoint(client, "ep-case", authMode="key")
    assert endpoint["properties"]["authMode"] == "Key"


def test_keys_are_generated_and_only_returned_by_listkeys(server: Server) -> None:
    with server.client() as client:
        create_endpoint(client, "keyed", authMode="Key")
        keys = client.post(endpoint_url("keyed") + "/listkeys", params=V).json()
        listed = client.get(ENDPOINTS, params=V).text
    assert len(keys["primaryKey"]) >= 32 and len(keys["secondaryKey"]) >= 32
    assert keys["primaryKey"] != keys["secondaryKey"]
    assert keys["primaryKey"] not in listed


def test_keys_given_on_create_are_kept(server: Server) -> None:
    with server.client() as client:
        create_endpoint(client, "given", authMode="Key", keys={"primaryKey": "p" * 40, "secondaryKey": "s" * 40})
        keys = client.post(endpoint_url("given") + "/listkeys", params=V).json()
    assert keys == {"primaryKey": "p" * 40, "secondaryKey": "s" * 40}


def test_names_are_case_insensitive_and_keep_their_case(server: Server) -> None:
    with server.client() as client:
        create_endpoint(client, "MyEndpoint")
        got = client.get(endpoint_url("myendpoint"), params=V).json()
        again = client.put(endpoint_url("MYENDPOINT"), params=V, json=endpoint_body(description="changed"))
        wait_for_operation(client, again)
        listed = client.get(ENDPOINTS, params=V).json()["value"]
    assert got["name"] == "MyEndpoint"
    assert again.status_code == 200 and again.json()["name"] == "MyEndpoint"
    same = [item for item in listed if item["name"].lower() == "myendpoint"]
    assert [item["name"] for item in same] == ["MyEndpoint"]
    assert same[0]["properties"]["description"] == "changed"


def test_reads_take_names_outside_the_name_pattern(server: Server) -> None:
    with server.client() as client:
        read = client.get(endpoint_url("-named-before-the-rule"), params=V)
        written = client.put(endpoint_url("-named-before-the-rule"), params=V, json=endpoint_body())
    assert read.status_code == 404 and read.json()["error"]["code"] == "ResourceNotFound"
    assert written.status_code == 400


def test_fixed_path_segments_are_case_insensitive(server: Server) -> None:
    with server.client() as client:
        create_endpoint(client, "ep1")
        url = (
            endpoint_url("ep1").replace("resourceGroups", "RESOURCEGROUPS").replace("batchEndpoints", "batchendpoints")
        )
        response = client.get(
            url.replace("Microsoft.MachineLearningServices", "microsoft.machinelearningservices"), params=V
        )
    assert response.status_code == 200 and response.json()["name"] == "ep1"


def test_unchanged_put_answers_200_without_an_operation(server: Server) -> None:
    with server.client() as client:
        create_endpoint(client, "same")
        response = client.put(endpoint_url("same"), params=V, json=endpoint_body())
    assert response.status_code == 200
    assert "Azure-AsyncOperation" not in response.headers
    assert response.json()["properties"]["provisioningState"] == "Succeeded"


def test_read_only_fields_are_ignored(server: Server) -> None:
    body = endpoint_body(scoringUri="https://elsewhere/x", provisioningState="Failed")
    body |= {"id": "/bogus", "name": "bogus", "type": "bogus", "systemData": {"createdBy": "mallory"}}
    with server.client() as client:
        endpoint = put_and_wait(client, endpoint_url("read-only"), body).json()
    assert endpoint["name"] == "read-only" and endpoint["id"].endswith("/batchEndpoints/read-only")
    assert endpoint["properties"]["scoringUri"].startswith(server.base_url)
    assert endpoint["systemData"]["createdBy"] != "mallory"


def test_location_cannot_change(server: Server) -> None:
    with server.client() as client:
        create_endpoint(client, "loc")
        response = client.put(endpoint_url("loc"), params=V, json={**endpoint_body(), "location": "westus"})
    assert response.status_code == 400
    assert "location" in response.json()["error"]["message"]


def test_properties_can_be_added_but_not_altered(server: Server) -> None:
    with server.client() as client:
        create_endpoint(client, "props", properties={"a": "1"})
        added = put_and_wait(client, endpoint_url("props"), endpoint_body(properties={"b": "2"})).json()
        altered = client.put(endpoint_url("props"), params=V, json=endpoint_body(properties={"a": "9"}))
    assert added["properties"]["properties"] == {"a": "1", "b": "2"}
    assert altered.status_code == 400


def test_patch_changes_tags_through_location_polling(server: Server) -> None:
    with server.client() as client:
        create_endpoint(client, "tagged")
        patched = client.patch(endpoint_url("tagged"), params=V, json={"tags": {"team": "ml"}})
        assert patched.status_code == 202 and patched.headers["Retry-After"] == "1"
        final = wait_for_operation(client, patched)
    assert final.status_code == 200
    assert final.json()["tags"] == {"team": "ml"}
    assert final.json()["properties"]["provisioningState"] == "Succeeded"


def test_patch_refuses_properties(server: Server) -> None:
    with server.client() as client:
        create_endpoint(client, "strict")
        response = client.patch(endpoint_url("strict"), params=V, json={"properties": {"description": "x"}})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "InvalidRequestContent"


def test_empty_tag_values_are_refused(server: Server) -> None:
    with server.client() as client:
        response = client.put(endpoint_url("tags"), params=V, json={**endpoint_body(), "tags": {"a": ""}})
    assert response.status_code == 400


def test_delete_answers_202_then_the_endpoint_is_gone(server: Server) -> None:
    with server.client() as client:
        create_endpoint(client, "doomed")
        deleted = client.delete(endpoint_url("doomed"), params=V)
        assert deleted.status_code == 202 and deleted.headers["Location"].startswith(server.base_url)
        assert wait_for_operation(client, deleted).status_code in (200, 204)
        after = client.get(endpoint_url("doomed"), params=V)
        again = client.delete(endpoint_url("doomed"), params=V)
    assert after.status_code == 404 and after.json()["error"]["code"] == "ResourceNotFound"
    assert again.status_code == 404


def test_created_by_comes_from_the_token_claims(server: Server) -> None:
    with server.client() as owner:
        grant(owner, WORKSPACE_ID, ensure_issuer(server.home).object_id("ada@example.com"), "Contributor")
    with server.client(token=server.token(user="ada@example.com")) as client:
        endpoint = create_endpoint(client, "mine")
    assert endpoint["systemData"]["createdBy"] == "ada@example.com"
    assert endpoint["systemData"]["createdByType"] == "User"


def test_urls_in_a_read_name_the_host_the_request_named(server: Server) -> None:
    """A client behind another name of this server (a proxy, a DNS alias) gets links it can follow, read after read."""
    with server.client() as client:
        create_endpoint(client, "hosts")
        urls = [
            client.get(endpoint_url("hosts"), params=V, headers={"Host": host}).json()["properties"]["scoringUri"]
            for host in ("alias-one.example:8443", "alias-two.example", "alias-one.example:8443")
        ]
    assert [url.split("/inference/")[0] for url in urls] == [
        "http://alias-one.example:8443",
        "http://alias-two.example",
        "http://alias-one.example:8443",
    ]


IDENTITIES = f"/subscriptions/{WORKSPACE_ID.split('/')[2]}/resourceGroups/local/providers/Microsoft.ManagedIdentity"
U1, U2 = f"{IDENTITIES}/userAssignedIdentities/u1", f"{IDENTITIES}/userAssignedIdentities/u2"
BOTH = "SystemAssigned,UserAssigned"


def test_identity_patches_follow_arm(server: Server) -> None:
    """A PATCH's null removes that user-assigned identity and keeps the others (and their ids); type None clears
    every identity; SystemAssigned alone has no user-assigned ones; a PUT sets the identity as sent."""

    def patch(identity: dict) -> dict:
        patched = client.patch(endpoint_url("identity"), params=V, json={"identity": identity})
        assert patched.status_code == 202, patched.text
        return wait_for_operation(client, patched).json()["identity"]

    with server.client() as client:
        create_endpoint(client, "identity")
        both = patch({"type": BOTH, "userAssignedIdentities": {U1: {}, U2: {}}})
        removed = patch({"type": BOTH, "userAssignedIdentities": {U1.upper(): None}})
        system = patch({"type": "SystemAssigned"})
        user = patch({"type": "UserAssigned", "userAssignedIdentities": {U1: {}}})
        none = patch({"type": "None"})
        put = put_and_wait(
            client,
            endpoint_url("identity"),
            {**endpoint_body(), "identity": {"type": "UserAssigned", "userAssignedIdentities": {U2: {}}}},
        ).json()["identity"]
    assert set(both["userAssignedIdentities"]) == {U1, U2}
    assert removed["userAssignedIdentities"] == {U2: both["userAssignedIdentities"][U2]}
    assert removed["principalId"] == both["principalId"]
    assert system == {"type": "SystemAssigned", "principalId": both["principalId"], "tenantId": both["tenantId"]}
    assert user["type"] == "UserAssigned" and set(user["userAssignedIdentities"]) == {U1} and "principalId" not in user
    assert none == {"type": "None"}
    assert put["type"] == "UserAssigned" and set(put["userAssignedIdentities"]) == {U2}


def test_identities_that_cannot_be_are_refused(server: Server) -> None:
    refused = [
        {"type": "UserAssigned"},
        {"type": "UserAssigned", "userAssignedIdentities": {}},
        {"type": "UserAssigned", "userAssignedIdentities": {"/u1": {}}},
        {"type": BOTH, "userAssignedIdentities": {f"{IDENTITIES}/otherThings/u1": {}}},
        {"type": "SystemAssigned", "userAssignedIdentities": {U1: {}}},
    ]
    with server.client() as client:
        create_endpoint(client, "bad-identity")
        patches = [
            client.patch(endpoint_url("bad-identity"), params=V, json={"identity": identity}) for identity in refused
        ]
        puts = [
            client.put(endpoint_url("bad-identity"), params=V, json={**endpoint_body(), "identity": identity})
            for identity in refused
        ]
        last = client.patch(
            endpoint_url("bad-identity"),
            params=V,
            json={"identity": {"type": "UserAssigned", "userAssignedIdentities": {U1: None}}},
        )
    assert [answer.status_code for answer in patches + puts + [last]] == [400] * 11, [a.text for a in patches + puts]


def _ids() -> dict[str, str]:
    return {"principalId": str(uuid.uuid4()), "clientId": str(uuid.uuid4())}


def test_identities_an_earlier_server_stored_survive_a_get_then_put(tmp_path: Path) -> None:
    """Servers before 86cb60b stored user-assigned identities beside types without UserAssigned, and any key
    (Azure's examples send 'string'). Since, re-sending what a GET answered (azure-mgmt's
    begin_create_or_update(get(...)), azure-ai-ml's compute begin_update(get(...))) was a 400: "can only be given
    with a type naming UserAssigned", "'string' ... is not the ARM id of a user-assigned identity". Now what is
    stored is accepted back: the user-assigned identities beside another type are dropped, stored keys stay with
    their ids; new ones are still checked."""
    system = {"type": "SystemAssigned", "principalId": str(uuid.uuid4()), "tenantId": str(uuid.UUID(int=0))}
    old = {
        endpoint_url("old-system"): {**system, "userAssignedIdentities": {U1: _ids()}},
        endpoint_url("old-none"): {"type": "None", "userAssignedIdentities": {U1: _ids()}},
        endpoint_url("old-string"): {"type": "UserAssigned", "userAssignedIdentities": {"string": _ids()}},
        compute_url("old-cpu"): {**system, "userAssignedIdentities": {"string": _ids(), U2: _ids()}},
    }
    with running(tmp_path) as server, server.client() as client:
        for name in ("old-system", "old-none", "old-string"):
            create_endpoint(client, name)
        create_compute(client, "old-cpu")
    store = open_store(f"sqlite:///{tmp_path / 'batchpoint.db'}")
    for url, identity in old.items():
        stored = store.get(url)
        assert stored is not None
        stored.body["identity"] = identity
        store.update(stored)
    store.close()

    with running(tmp_path) as server, server.client() as client:
        again = {url: put_and_wait(client, url, client.get(url, params=V).json()).json()["identity"] for url in old}
        unread = {url: put_and_wait(client, url, client.get(url, params=V).json()).json()["identity"] for url in old}
        patched = client.patch(
            endpoint_url("old-string"),
            params=V,
            json={"identity": {"userAssignedIdentities": {"string": None, U1: {}}}},
        )
        refused = [
            client.put(endpoint_url("old-string"), params=V, json={**endpoint_body(), "identity": identity})
            for identity in (
                {"type": "UserAssigned", "userAssignedIdentities": {"other": {}}},
                {"type": "SystemAssigned", "userAssignedIdentities": {U2: {}}},
                {"type": "None", "userAssignedIdentities": {U2: {}}},
            )
        ]
        after_patch = wait_for_operation(client, patched).json()["identity"]
    assert again[endpoint_url("old-system")] == system
    assert again[endpoint_url("old-none")] == {"type": "None"}
    assert again[endpoint_url("old-string")] == old[endpoint_url("old-string")]
    assert again[compute_url("old-cpu")] == system
    assert unread == again
    assert set(after_patch["userAssignedIdentities"]) == {U1}
    assert [answer.status_code for answer in refused] == [400] * 3, [answer.text for answer in refused]
