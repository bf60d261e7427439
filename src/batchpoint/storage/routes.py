"""The part of the Azure Blob REST API that the Azure SDKs use to upload and download datastore files.

URLs are path-style, as for the storage emulator: ``/blob/{account}/{container}/{blob}``. Every request is
authorised by the account's Shared Key or by a SAS token this server issued.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from collections.abc import AsyncIterator, Iterator
from email.utils import format_datetime
from typing import Annotated, Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from fastapi import Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from batchpoint.api.deps import provided
from batchpoint.api.routing import routes
from batchpoint.arm.errors import ArmError
from batchpoint.storage.accounts import StorageAccounts
from batchpoint.storage.auth import BlobRequest, check_sas, check_shared_key
from batchpoint.storage.blobs import BlobContainer, BlobInfo

router = routes(tags=["Blob storage"], include_in_schema=False)

BLOCK_LIST_LIMIT = 4 * 1024 * 1024
READ_CHUNK = 1024 * 1024
STORAGE_VERSION = "2021-08-06"
LIST_PAGE = 5000
Accounts = Annotated[StorageAccounts, provided(StorageAccounts)]


def _query(request: Request) -> dict[str, str]:
    return dict(parse_qsl(request.url.query, keep_blank_values=True))


def _authorise(accounts: Accounts, request: Request, account: str, container: str, blob: str) -> None:
    key = accounts.account(account).key
    authorization = request.headers.get("authorization", "")
    raw_path = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1")
    if "%2f" in raw_path.lower() or "%5c" in raw_path.lower():
        raise ArmError(400, "InvalidResourceName", "Encoded path separators are not allowed in blob names.")
    if authorization.startswith("SharedKey "):
        blob_request = BlobRequest(
            method=request.method,
            path=raw_path,
            query=parse_qsl(request.url.query, keep_blank_values=True),
            headers={name.lower(): value for name, value in request.headers.items()},
        )
        check_shared_key(blob_request, authorization, account, key)
    elif "sig" in _query(request):
        check_sas(_query(request), account, key, container, blob, request.method)
    else:
        raise ArmError(401, "NoAuthenticationInformation", "The request carries neither a Shared Key nor a SAS token.")


def _container(accounts: Accounts, request: Request, account: str, container: str, blob: str) -> BlobContainer:
    _authorise(accounts, request, account, container, blob)
    target = accounts.container(account, container)
    if not target.exists():
        raise ArmError(404, "ContainerNotFound", f"The container '{container}' does not exist.")
    return target


def _blob_headers(info: BlobInfo) -> dict[str, str]:
    headers = {
        "ETag": info.etag,
        "Last-Modified": format_datetime(info.modified, usegmt=True),
        "x-ms-blob-type": "BlockBlob",
        "x-ms-version": STORAGE_VERSION,
        "x-ms-creation-time": format_datetime(info.modified, usegmt=True),
        "x-ms-lease-state": "available",
        "x-ms-lease-status": "unlocked",
        "x-ms-server-encrypted": "true",
        "Accept-Ranges": "bytes",
    }
    headers.update({f"x-ms-meta-{name}": value for name, value in info.metadata.items()})
    return headers


def _created(info: BlobInfo) -> Response:
    headers = {key: value for key, value in _blob_headers(info).items() if not key.startswith("x-ms-meta-")}
    headers["x-ms-request-server-encrypted"] = "true"
    return Response(status_code=201, headers=headers)


async def _body(request: Request) -> AsyncIterator[bytes]:
    async for chunk in request.stream():
        if chunk:
            yield chunk


@router.put("/blob/{account}/{container}")
def put_container(request: Request, accounts: Accounts, account: str, container: str) -> Response:
    _authorise(accounts, request, account, container, "")
    accounts.container(account, container).create()
    return Response(status_code=201, headers={"x-ms-version": STORAGE_VERSION})


@router.api_route("/blob/{account}/{container}", methods=["GET", "HEAD"])
def get_container(request: Request, accounts: Accounts, account: str, container: str) -> Response:
    target = _container(accounts, request, account, container, "")
    query = _query(request)
    if query.get("comp") != "list":
        return Response(status_code=200, headers={"x-ms-version": STORAGE_VERSION, "ETag": '"0x1"'})
    listing = _listing_xml(request, target, container, query)
    return Response(content=listing, media_type="application/xml", headers={"x-ms-version": STORAGE_VERSION})


@router.put("/blob/{account}/{container}/{blob:path}")
async def put_blob(request: Request, accounts: Accounts, account: str, container: str, blob: str) -> Response:
    """Async to stream the body; every database and file step runs on the thread pool, off the event loop."""
    target = await run_in_threadpool(_container, accounts, request, account, container, blob)
    query = _query(request)
    operation = query.get("comp")
    if operation == "metadata":
        metadata = {
            name[len("x-ms-meta-") :]: value
            for name, value in request.headers.items()
            if name.lower().startswith("x-ms-meta-")
        }
        info = await run_in_threadpool(target.set_metadata, blob, metadata)
        return Response(status_code=200, headers={"ETag": info.etag, "x-ms-version": STORAGE_VERSION})
    if operation == "block":
        await target.stage_block(blob, query.get("blockid", ""), _body(request))
        return Response(status_code=201, headers={"x-ms-version": STORAGE_VERSION})
    if operation == "blocklist":
        block_ids = await _block_ids(request)
        return _created(await run_in_threadpool(target.commit_blocks, blob, block_ids))
    if operation is not None:
        raise ArmError(400, "UnsupportedQueryParameter", f"comp={operation} is not supported on this server.")
    return _created(await target.write(blob, _body(request)))


@router.api_route("/blob/{account}/{container}/{blob:path}", methods=["GET", "HEAD"])
def get_blob(request: Request, accounts: Accounts, account: str, container: str, blob: str) -> Response:
    target = _container(accounts, request, account, container, blob)
    info = target.info(blob)
    headers = _blob_headers(info)
    start, end = _range(request, info.size)
    status = 200
    if start is not None:
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{info.size}"
    first, last = (start, end) if start is not None else (0, info.size - 1)
    headers["Content-Length"] = str(max(0, last - first + 1))
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type="application/octet-stream")
    body = _read(target.path_of(blob), first, last)
    return StreamingResponse(body, status_code=status, headers=headers, media_type="application/octet-stream")


@router.delete("/blob/{account}/{container}/{blob:path}")
def delete_blob(request: Request, accounts: Accounts, account: str, container: str, blob: str) -> Response:
    _container(accounts, request, account, container, blob).delete(blob)
    return Response(status_code=202, headers={"x-ms-version": STORAGE_VERSION})


def _range(request: Request, size: int) -> tuple[int | None, int]:
    header = request.headers.get("x-ms-range") or request.headers.get("range")
    if not header:
        return None, size - 1
    try:
        unit, _, span = header.partition("=")
        first_text, _, last_text = span.partition("-")
        first = int(first_text)
        last = min(int(last_text), size - 1) if last_text else size - 1
    except ValueError:
        raise ArmError(400, "InvalidRange", f"The range '{header}' is not understood.") from None
    if unit.strip() != "bytes" or first >= size or first > last:  # an empty blob has no range: clients retry without
        raise ArmError(416, "InvalidRange", f"The range '{header}' is not satisfiable for a blob of {size} bytes.")
    return first, last


def _read(path: Any, first: int, last: int) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        handle.seek(first)
        remaining = last - first + 1
        while remaining > 0:
            chunk = handle.read(min(READ_CHUNK, remaining))
            if not chunk:
                return
            remaining -= len(chunk)
            yield chunk


async def _block_ids(request: Request) -> list[str]:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > BLOCK_LIST_LIMIT:
            raise ArmError(413, "RequestBodyTooLarge", "The block list is too large.")
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        raise ArmError(400, "InvalidXmlDocument", "The block list is not valid XML.") from None
    return [element.text or "" for element in root if element.tag in ("Latest", "Committed", "Uncommitted")]


def _listing_xml(request: Request, target: BlobContainer, container: str, query: dict[str, str]) -> str:
    prefix, delimiter, marker = query.get("prefix", ""), query.get("delimiter", ""), query.get("marker", "")
    limit = min(int(query.get("maxresults", LIST_PAGE) or LIST_PAGE), LIST_PAGE)
    with_metadata = "metadata" in query.get("include", "")
    items: list[str] = []
    last_name, last_folder, next_marker = "", "", ""
    for info in target.list(prefix):
        if marker and (
            info.name <= marker or (delimiter and marker.endswith(delimiter) and info.name.startswith(marker))
        ):
            continue
        rest = info.name[len(prefix) :]
        folder = prefix + rest.split(delimiter, 1)[0] + delimiter if delimiter and delimiter in rest else ""
        if folder and folder == last_folder:
            continue
        if len(items) == limit:
            next_marker = last_name
            break
        if folder:
            items.append(f"<BlobPrefix><Name>{escape(folder)}</Name></BlobPrefix>")
            last_folder = last_name = folder
        else:
            items.append(_blob_xml(info, with_metadata))
            last_name = info.name
    endpoint = str(request.url).split(f"/{container}", 1)[0] + "/"
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<EnumerationResults ServiceEndpoint="{escape(endpoint)}" ContainerName="{escape(container)}">'
        f"<Prefix>{escape(prefix)}</Prefix><Marker>{escape(marker)}</Marker><MaxResults>{limit}</MaxResults>"
        f"<Delimiter>{escape(delimiter)}</Delimiter><Blobs>{''.join(items)}</Blobs>"
        f"<NextMarker>{escape(next_marker)}</NextMarker></EnumerationResults>"
    )


def _blob_xml(info: BlobInfo, with_metadata: bool) -> str:
    modified = format_datetime(info.modified, usegmt=True)
    metadata = ""
    if with_metadata:
        metadata = "<Metadata>" + "".join(f"<{k}>{escape(v)}</{k}>" for k, v in info.metadata.items()) + "</Metadata>"
    return (
        f"<Blob><Name>{escape(info.name)}</Name><Properties><Creation-Time>{modified}</Creation-Time>"
        f"<Last-Modified>{modified}</Last-Modified><Etag>{escape(info.etag)}</Etag>"
        f"<Content-Length>{info.size}</Content-Length><Content-Type>application/octet-stream</Content-Type>"
        "<BlobType>BlockBlob</BlobType><AccessTier>Hot</AccessTier><LeaseStatus>unlocked</LeaseStatus>"
        f"<LeaseState>available</LeaseState><ServerEncrypted>true</ServerEncrypted></Properties>{metadata}</Blob>"
    )
