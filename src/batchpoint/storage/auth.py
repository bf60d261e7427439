"""Authorising blob requests: Shared Key signatures and the SAS tokens this server issues.

Shared Key follows the Azure Storage scheme (string-to-sign from the verb, standard headers, ``x-ms-*`` headers
and the canonicalised resource, HMAC-SHA256 with the account key). SAS tokens look like Azure's to clients (they
only append the query string) but are batchpoint's own: signed over their permissions, expiry and scope.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import unquote, urlencode

from batchpoint.arm.errors import ArmError
from batchpoint.store.entities import utcnow

SAS_VERSION = "2021-08-06"
SIGNED_HEADERS = (
    "content-encoding",
    "content-language",
    "content-length",
    "content-md5",
    "content-type",
    "date",
    "if-modified-since",
    "if-match",
    "if-none-match",
    "if-unmodified-since",
    "range",
)
WRITE_METHODS = {"PUT", "POST", "DELETE"}


def denied(message: str) -> ArmError:
    return ArmError(403, "AuthenticationFailed", f"Server failed to authenticate the request. {message}")


def sign(key: str, text: str) -> str:
    digest = hmac.new(base64.b64decode(key), text.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


@dataclass(frozen=True)
class BlobRequest:
    method: str
    path: str
    """The request path exactly as sent (still percent-encoded)."""
    query: list[tuple[str, str]]
    headers: Mapping[str, str]
    """Lower-cased header names."""


def _x_ms_headers_orders(headers: Mapping[str, str]) -> list[list[tuple[str, str]]]:
    """Azure sorts ``x-ms-*`` headers with a culture-aware comparison that ignores '-'; clients that sort
    plainly produce a different order only for unusual names. Both orders are tried."""
    items = [(name, value.strip()) for name, value in headers.items() if name.startswith("x-ms-") and value]
    plain = sorted(items)
    culture = sorted(items, key=lambda item: (item[0].replace("-", ""), item[0]))
    return [plain] if plain == culture else [plain, culture]


def shared_key_strings(request: BlobRequest, account_in_header: str) -> list[str]:
    standard = []
    for name in SIGNED_HEADERS:
        value = request.headers.get(name, "")
        standard.append("" if name == "content-length" and value == "0" else value)
    query = "".join(f"\n{name.lower()}:{unquote(value)}" for name, value in sorted(request.query))
    head = request.method + "\n" + "\n".join(standard) + "\n"
    # Clients sign the path as they sent it; some sign it decoded.
    resources = dict.fromkeys(["/" + account_in_header + path for path in (request.path, unquote(request.path))])
    return [
        head + "".join(f"{name}:{value}\n" for name, value in order) + resource + query
        for order in _x_ms_headers_orders(request.headers)
        for resource in resources
    ]


def check_shared_key(request: BlobRequest, authorization: str, account: str, key: str) -> None:
    credential = authorization[len("SharedKey ") :]
    named, _, signature = credential.rpartition(":")
    if named not in (account, f"blob/{account}"):
        raise denied(f"The signature names account '{named}', not '{account}'.")
    expected = [sign(key, text) for text in shared_key_strings(request, named)]
    if not any(hmac.compare_digest(signature, candidate) for candidate in expected):
        raise denied("The MAC signature found in the HTTP request is not the same as any computed signature.")


@dataclass(frozen=True)
class SasGrant:
    container: str
    prefix: str
    permissions: str
    expiry: datetime


def _sas_string(account: str, grant: SasGrant, expiry_text: str) -> str:
    return "\n".join([grant.permissions, expiry_text, f"/blob/{account}/{grant.container}", grant.prefix, SAS_VERSION])


def issue_sas(account: str, key: str, grant: SasGrant) -> str:
    expiry = grant.expiry.strftime("%Y-%m-%dT%H:%M:%SZ")
    fields = {
        "sv": SAS_VERSION,
        "sr": "c",
        "sp": grant.permissions,
        "se": expiry,
        "bpprefix": grant.prefix,
        "sig": sign(key, _sas_string(account, grant, expiry)),
    }
    return urlencode(fields)


def sas_for(account: str, key: str, container: str, prefix: str, permissions: str, lifetime: timedelta) -> str:
    return issue_sas(account, key, SasGrant(container, prefix, permissions, utcnow() + lifetime))


PERMISSION_OF_METHOD = {"GET": "r", "HEAD": "r", "PUT": "w", "POST": "w", "DELETE": "d"}


def check_sas(query: Mapping[str, str], account: str, key: str, container: str, blob: str, method: str) -> None:
    try:
        expiry = datetime.strptime(query["se"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=utcnow().tzinfo)
        grant = SasGrant(container, query.get("bpprefix", ""), query["sp"], expiry)
        signature = query["sig"]
    except (KeyError, ValueError):
        raise denied("The SAS token is malformed.") from None
    if not hmac.compare_digest(signature, sign(key, _sas_string(account, grant, query["se"]))):
        raise denied("Signature did not match the SAS token.")
    if grant.expiry <= utcnow():
        raise denied("The SAS token has expired.")
    if not blob.startswith(grant.prefix):
        raise ArmError(403, "AuthorizationResourceTypeMismatch", "The SAS token does not cover this blob path.")
    needed = "l" if not blob and method == "GET" else PERMISSION_OF_METHOD.get(method, "w")
    if needed not in grant.permissions:
        raise ArmError(403, "AuthorizationPermissionMismatch", "The SAS token does not permit this operation.")
