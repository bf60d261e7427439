"""A resource type declared once gets working routes: a throwaway type, declared here and nowhere in the server,
served by a real server (uvicorn on a free port, in this process) through list, get, put, patch and delete, its
writes polled to their end as ARM clients poll them."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from batchpoint.access.issuer import ensure_issuer
from batchpoint.app.asgi import create_app
from batchpoint.app.resource_types import SERVED
from batchpoint.arm.operations import Progress
from batchpoint.arm.registry import Operations, ResourceType, Served, Wire
from batchpoint.arm.schemas import ArmEnvelope
from batchpoint.arm.wire import ReadOnly, StringMap, WireModel
from batchpoint.config import Settings
from batchpoint.ml.workspaces.resource_types import WORKSPACES
from batchpoint.store.entities import Resource
from tests.api.arm import wait_for_operation
from tests.ports import free_port
from tests.server import API, TEST_USER, WORKSPACE_ID


class GadgetProperties(WireModel):
    size: int
    provisioningState: str | None = ReadOnly()


class Gadget(ArmEnvelope):
    properties: GadgetProperties


class GadgetPatch(WireModel):
    tags: StringMap | None = None


class GadgetList(WireModel):
    value: list[Gadget]
    nextLink: str | None = None


GADGETS = ResourceType(
    parent=WORKSPACES,
    collection="gadgets",
    name_parameter="gadgetName",
    long_running=True,
    operations=Operations("Gadgets", "Gadget", tag="Gadgets"),
    wire=Wire(Gadget, page=GadgetList, patch=GadgetPatch),
)


class GadgetRules:
    """The throwaway type's rules: a gadget keeps its size, and provisions in no time."""

    def build_properties(
        self, resource_id: str, requested: dict[str, Any], existing: Resource | None
    ) -> dict[str, Any]:
        return {"size": requested["size"]}

    def build_secrets(self, requested: dict[str, Any], existing: Resource | None) -> dict[str, Any]:
        return {}

    def as_written_now(self, resource_id: str, stored: dict[str, Any]) -> dict[str, Any]:
        """Gadgets have always been written this way."""
        return stored

    def check_parent(self, parent: Resource) -> None:
        """Any workspace takes gadgets."""

    def provision(self, resource: Resource, progress: Progress) -> None:
        """Nothing to prepare."""

    def apply_patch(self, body: dict[str, Any], patch: dict[str, Any]) -> None:
        """Only tags change, as the generic flow does."""


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    home: Path = tmp_path_factory.mktemp("registry")
    settings = Settings(home=home, port=free_port(), tls=False, owners=[TEST_USER])
    app = create_app(settings, served=(*SERVED, Served(GADGETS, lambda provide: GadgetRules())))
    server = uvicorn.Server(uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="registry-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    token = ensure_issuer(home).mint(audience=settings.base_url, user=TEST_USER, minutes=60)
    with httpx.Client(base_url=settings.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        yield client
    server.should_exit = True
    thread.join(timeout=30)


def gadget(name: str) -> str:
    return f"{WORKSPACE_ID}/gadgets/{name}"


def test_a_declared_type_is_created_listed_patched_and_deleted_over_http(client: httpx.Client) -> None:
    api = {"api-version": API}
    created = client.put(gadget("g1"), params=api, json={"location": "local", "properties": {"size": 3}})
    assert created.status_code == 201, created.text
    assert created.json()["type"] == "Microsoft.MachineLearningServices/workspaces/gadgets"
    assert wait_for_operation(client, created).json()["status"] == "Succeeded"

    read = client.get(gadget("g1"), params=api)
    assert read.status_code == 200
    assert read.json()["properties"] == {"size": 3, "provisioningState": "Succeeded"}
    listed = client.get(f"{WORKSPACE_ID}/gadgets", params=api)
    assert [each["name"] for each in listed.json()["value"]] == ["g1"]

    patched = client.patch(gadget("g1"), params=api, json={"tags": {"colour": "red"}})
    assert patched.status_code == 202
    assert wait_for_operation(client, patched).status_code == 200
    assert client.get(gadget("g1"), params=api).json()["tags"] == {"colour": "red"}

    deleted = client.delete(gadget("g1"), params=api)
    assert deleted.status_code == 202
    assert wait_for_operation(client, deleted).status_code == 204
    missing = client.get(gadget("g1"), params=api)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "ResourceNotFound"


def test_a_declared_type_checks_its_requests_as_every_type_does(client: httpx.Client) -> None:
    api = {"api-version": API}
    wrong_body = client.put(gadget("g2"), params=api, json={"location": "local", "properties": {"size": "big"}})
    assert wrong_body.status_code == 400
    assert client.put(gadget("-g"), params=api, json={"properties": {"size": 1}}).status_code == 400
    assert client.get(gadget("g2"), params={"api-version": "1999-01-01"}).status_code == 400
    assert client.get(gadget("g2"), params=api, headers={"Authorization": ""}).status_code == 401


def test_a_declared_type_is_in_the_openapi_document_and_its_path_is_matched_in_any_casing(
    client: httpx.Client,
) -> None:
    api = {"api-version": API}
    operations = {
        operation["operationId"]
        for item in client.get("/openapi.json").json()["paths"].values()
        for operation in item.values()
    }
    assert {"Gadgets_List", "Gadgets_Get", "Gadgets_CreateOrUpdate", "Gadgets_Update", "Gadgets_Delete"} <= operations
    wait_for_operation(
        client, client.put(gadget("g3"), params=api, json={"location": "local", "properties": {"size": 1}})
    )
    assert client.get(gadget("g3").replace("/gadgets/", "/GADGETS/"), params=api).status_code == 200
