"""The URI resolver: every form users write for data resolves to the same place, and nothing escapes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from batchpoint.app.wiring import SYSTEM, Services
from batchpoint.arm.errors import ArmError
from batchpoint.config import Settings
from batchpoint.ml.assets.resource_types import DATA_VERSIONS
from tests.server import WORKSPACE_ID


@pytest.fixture
def allowed(tmp_path: Path) -> Path:
    folder = tmp_path / "allowed"
    folder.mkdir()
    return folder


@pytest.fixture
def services(tmp_path: Path, allowed: Path) -> Iterator[Services]:
    running = Services.open(Settings(home=tmp_path / "home", allowed_local_paths=[allowed]))
    running.start()
    yield running
    running.close()


def blobstore_root(services: Services) -> Path:
    location = services.uris.resolve(WORKSPACE_ID, "azureml://datastores/workspaceblobstore/paths/")
    assert location.local_path is not None
    return location.local_path


def test_short_and_long_datastore_forms_agree(services: Services) -> None:
    short = services.uris.resolve(WORKSPACE_ID, "azureml://datastores/workspaceblobstore/paths/data/in/")
    long = services.uris.resolve(
        WORKSPACE_ID,
        "azureml://subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/local/workspaces/default"
        "/datastores/workspaceblobstore/paths/data/in",
    )
    assert short.local_path == long.local_path == blobstore_root(services) / "data" / "in"
    assert short.writable


def test_data_assets_resolve_through_their_data_uri(services: Services) -> None:
    body = {
        "properties": {"dataUri": "azureml://datastores/workspaceblobstore/paths/sets/one", "dataType": "uri_folder"}
    }
    services.resource_service(DATA_VERSIONS).put(SYSTEM, f"{WORKSPACE_ID}/data/set/versions/1", body)
    expected = blobstore_root(services) / "sets" / "one"
    for reference in ("azureml:set:1", "azureml:set@latest", f"{WORKSPACE_ID}/data/set/versions/1"):
        assert services.uris.resolve(WORKSPACE_ID, reference).local_path == expected


def test_urls_of_this_servers_blob_api_are_local(services: Services) -> None:
    root = blobstore_root(services)
    account, container = root.parent.name, root.name
    location = services.uris.resolve(WORKSPACE_ID, f"https://127.0.0.1:8443/blob/{account}/{container}/code/src")
    assert location.local_path == root / "code" / "src"


def test_other_https_urls_are_read_only(services: Services) -> None:
    location = services.uris.resolve(WORKSPACE_ID, "https://example.com/data/file.csv")
    assert location.protocol == "https" and not location.writable and location.local_path is None


def test_local_paths_only_under_allowed_folders(services: Services, allowed: Path, tmp_path: Path) -> None:
    assert services.uris.resolve(WORKSPACE_ID, str(allowed / "in")).local_path == allowed / "in"
    assert services.uris.resolve(WORKSPACE_ID, f"file://{allowed}/x").local_path == allowed / "x"
    for refused in (str(tmp_path / "elsewhere"), str(allowed / ".." / "elsewhere"), "relative/path"):
        with pytest.raises(ArmError) as error:
            services.uris.resolve(WORKSPACE_ID, refused)
        assert (
            error.value.status == 400 and "allow-local-path" in error.value.message or "absolute" in error.value.message
        )


@pytest.mark.parametrize(
    ("uri", "status"),
    [
        ("azureml://datastores/nope/paths/x", 404),
        ("azureml://datastores/workspaceblobstore/paths/../../etc", 400),
        ("azureml://datastores/workspaceblobstore/paths/a/%2e%2e/%2e%2e/b", 400),
        ("azureml://subscriptions/1/resourcegroups/rg/workspaces/other/datastores/workspaceblobstore/paths/x", 400),
        ("azureml:missing:1", 400),
        ("s3://bucket/key", 400),
    ],
)
def test_bad_uris_are_refused_with_a_reason(services: Services, uri: str, status: int) -> None:
    with pytest.raises(ArmError) as error:
        services.uris.resolve(WORKSPACE_ID, uri)
    assert error.value.status == status and error.value.message
