"""The blob API of the local datastores, driven by the official azure-storage-blob client."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError
from azure.storage.blob import BlobServiceClient, ContainerClient

from tests.server import API, WORKSPACE_ID, Server

V = {"api-version": API}


@pytest.fixture(scope="module")
def storage(tls_server: Server) -> dict[str, str]:
    """Account URL, key, container and folder of the default datastore, as the SDKs find them."""
    with tls_server.client() as client:
        datastore = client.get(f"{WORKSPACE_ID}/datastores/workspaceblobstore", params=V).json()["properties"]
        key = client.post(f"{WORKSPACE_ID}/datastores/workspaceblobstore/listSecrets", params=V).json()["key"]
    account_url = f"https://{datastore['accountName']}.blob.core.windows.net"
    account = datastore["accountName"].split("/blob/")[1].split("?")[0]
    folder = tls_server.home / "storage" / account / datastore["containerName"]
    return {
        "url": account_url,
        "key": key,
        "container": datastore["containerName"],
        "folder": str(folder),
        "account": account,
    }


@pytest.fixture(scope="module")
def container(tls_server: Server, storage: dict[str, str]) -> Iterator[ContainerClient]:
    service = BlobServiceClient(storage["url"], credential=storage["key"], connection_verify=str(tls_server.ca_cert))
    yield service.get_container_client(storage["container"])
    service.close()


def test_upload_lands_byte_identical_in_the_datastore_folder(
    container: ContainerClient, storage: dict[str, str]
) -> None:
    payload = os.urandom(70_000)
    container.upload_blob("data/in/a.bin", payload)
    assert (Path(storage["folder"]) / "data" / "in" / "a.bin").read_bytes() == payload
    assert container.download_blob("data/in/a.bin").readall() == payload


def test_large_upload_goes_in_blocks(tls_server: Server, container: ContainerClient, storage: dict[str, str]) -> None:
    payload = os.urandom(3 * 1024 * 1024 + 17)
    small_blocks = BlobServiceClient(
        storage["url"],
        credential=storage["key"],
        connection_verify=str(tls_server.ca_cert),
        max_block_size=1024 * 1024,
        max_single_put_size=1024 * 1024,
    )
    small_blocks.get_container_client(storage["container"]).upload_blob("big/blocks.bin", payload, max_concurrency=2)
    assert (Path(storage["folder"]) / "big" / "blocks.bin").read_bytes() == payload
    assert container.download_blob("big/blocks.bin", offset=1000, length=5000).readall() == payload[1000:6000]


def test_metadata_round_trips_and_lists(container: ContainerClient) -> None:
    blob = container.upload_blob("meta/x.txt", b"x")
    blob.set_blob_metadata({"upload_status": "completed", "name": "m"})
    assert blob.get_blob_properties().metadata == {"upload_status": "completed", "name": "m"}
    listed = list(container.list_blobs(name_starts_with="meta/", include=["metadata"]))
    assert [(item.name, item.metadata) for item in listed] == [
        ("meta/x.txt", {"upload_status": "completed", "name": "m"})
    ]


def test_listing_pages_and_folders(container: ContainerClient) -> None:
    for index in range(7):
        container.upload_blob(f"list/f{index}.txt", b"1")
    container.upload_blob("list/sub/g.txt", b"1")
    names = [item.name for item in container.list_blobs(name_starts_with="list/", results_per_page=3)]
    assert names == [f"list/f{index}.txt" for index in range(7)] + ["list/sub/g.txt"]
    top = sorted(item.name for item in container.walk_blobs(name_starts_with="list/", delimiter="/"))
    assert top == [f"list/f{index}.txt" for index in range(7)] + ["list/sub/"]


def test_missing_blob_is_404(container: ContainerClient) -> None:
    with pytest.raises(ResourceNotFoundError):
        container.download_blob("nothing/here").readall()
    assert not container.get_blob_client("nothing/here").exists()


def test_wrong_key_is_refused(tls_server: Server, storage: dict[str, str]) -> None:
    forged = "A" * 43 + "="
    service = BlobServiceClient(storage["url"], credential=forged, connection_verify=str(tls_server.ca_cert))
    with pytest.raises(ClientAuthenticationError):
        service.get_container_client(storage["container"]).upload_blob("forged.txt", b"x")
    assert not (Path(storage["folder"]) / "forged.txt").exists()


@pytest.mark.parametrize(
    "path",
    [
        "../escape.txt",
        "a/../../escape.txt",
        "a/%2e%2e/%2e%2e/escape.txt",
        "a%2F..%2F..%2Fescape.txt",
        "a%5C..%5Cescape.txt",
    ],
)
def test_path_escapes_are_refused(tls_server: Server, storage: dict[str, str], path: str) -> None:
    url = f"{tls_server.base_url}/blob/{storage['account']}/{storage['container']}/{path}"
    with httpx.Client(verify=str(tls_server.ca_cert)) as client:
        response = client.put(url, content=b"x", headers={"x-ms-blob-type": "BlockBlob"})
    assert response.status_code in (400, 401, 404)
    assert response.json()["error"]["code"]
    assert not (Path(storage["folder"]).parent / "escape.txt").exists()
    assert not (Path(storage["folder"]).parents[1] / "escape.txt").exists()


def test_symlinks_out_of_the_datastore_are_refused(
    container: ContainerClient, storage: dict[str, str], tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (Path(storage["folder"]) / "link").symlink_to(outside)
    with pytest.raises(HttpResponseError) as error:
        container.upload_blob("link/evil.txt", b"x")
    assert error.value.status_code == 400
    assert not (outside / "evil.txt").exists()


def test_unauthenticated_requests_are_refused(tls_server: Server, storage: dict[str, str]) -> None:
    url = f"{tls_server.base_url}/blob/{storage['account']}/{storage['container']}/anon.txt"
    with httpx.Client(verify=str(tls_server.ca_cert)) as client:
        response = client.put(url, content=b"x", headers={"x-ms-blob-type": "BlockBlob"})
    assert response.status_code == 401 and response.json()["error"]["code"] == "NoAuthenticationInformation"


def pending_upload(tls_server: Server) -> dict:
    with tls_server.client() as client:
        response = client.post(
            f"{WORKSPACE_ID}/codes/snap/versions/1/startPendingUpload",
            params=V,
            json={"pendingUploadType": "TemporaryBlobReference"},
        )
    assert response.status_code == 200
    return response.json()["blobReferenceForConsumption"]


def test_sas_upload_and_forged_or_expired_tokens(tls_server: Server) -> None:
    reference = pending_upload(tls_server)
    sas_url = reference["credential"]["sasUri"]
    client = ContainerClient.from_container_url(sas_url, connection_verify=str(tls_server.ca_cert))
    client.upload_blob("src/score.py", b"def run(x): return x\n")
    assert client.download_blob("src/score.py").readall() == b"def run(x): return x\n"

    forged = sas_url.replace("sig=", "sig=AAAA")
    with pytest.raises(ClientAuthenticationError):
        ContainerClient.from_container_url(forged, connection_verify=str(tls_server.ca_cert)).upload_blob("f.py", b"x")
    base, _, query = sas_url.partition("?")
    fields = dict(parse_qsl(query))
    stretched = f"{base}?{urlencode({**fields, 'se': '2999-01-01T00:00:00Z'})}"
    with pytest.raises(ClientAuthenticationError):
        ContainerClient.from_container_url(stretched, connection_verify=str(tls_server.ca_cert)).upload_blob(
            "g.py", b"x"
        )


def test_expired_sas_is_refused(tls_server: Server, storage: dict[str, str]) -> None:
    from batchpoint.storage.auth import sas_for

    container_url = pending_upload(tls_server)["blobUri"]
    container_name = container_url.rsplit("/", 1)[1]
    expired = sas_for(storage["account"], storage["key"], container_name, "", "racwdl", timedelta(seconds=-1))
    client = ContainerClient.from_container_url(f"{container_url}?{expired}", connection_verify=str(tls_server.ca_cert))
    with pytest.raises(ClientAuthenticationError) as error:
        client.upload_blob("late.py", b"x")
    assert "expired" in str(error.value)


def test_unknown_account_and_container(tls_server: Server, storage: dict[str, str]) -> None:
    with httpx.Client(verify=str(tls_server.ca_cert)) as client:
        account = client.get(f"{tls_server.base_url}/blob/bp0000000000000000000000/c/x")
        container = client.get(f"{tls_server.base_url}/blob/{storage['account']}/no-such-container/x?sig=x&se=x&sp=r")
    assert account.status_code == 404 and account.json()["error"]["code"] == "AccountNotFound"
    assert container.status_code == 403
