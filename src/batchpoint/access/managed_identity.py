"""Managed identity, as azure-identity's ``ManagedIdentityCredential`` (and so ``DefaultAzureCredential``) asks for it.

Two token endpoints, one per protocol azure-identity speaks, each guarded by a secret (docs/security.md):

- ``GET /identity/oauth2/token`` (Azure App Service's protocol: ``IDENTITY_ENDPOINT`` + ``IDENTITY_HEADER``) is for
  the user's own processes after ``eval "$(batchpoint env)"``. Its secret derives from the issuer's signing key, so
  whoever can mint tokens with ``batchpoint token`` can compute it, and nobody else. Its tokens are the server
  owner's (the login that runs the server, as ``batchpoint token`` without ``--user``), and only for audiences this
  server accepts.
- ``GET /identity/msi/token`` (the Azure ML compute protocol: ``MSI_ENDPOINT`` + ``MSI_SECRET``) is for a job's
  worker processes. Its secret names the job and works while the job has not ended. Its tokens are the managed
  identity of the job's compute (as on Azure, where a scoring script gets the compute cluster's identity), for any
  audience asked: a token for another service is still signed by batchpoint's issuer, which nobody else trusts.

Failures answer 4xx (azure-core retries 5xx and 429) with both the managed-identity services' body
(``statusCode``, ``message``: what MSAL shows the user) and the ARM error body.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import uuid
from typing import Annotated, Any

import jwt
from fastapi import Header, Query, Request
from fastapi.responses import JSONResponse

from batchpoint.access.issuer import Issuer, audience_of
from batchpoint.access.tokens import TokenValidator
from batchpoint.access.wire import ManagedIdentityToken
from batchpoint.api.deps import services_of
from batchpoint.api.docs import responses
from batchpoint.api.routing import routes
from batchpoint.arm.resources import Resources
from batchpoint.runtime.status import TERMINAL

router = routes(tags=["Identity"])

IDENTITY_PATH = "/identity/oauth2/token"
"""``IDENTITY_ENDPOINT``: the App Service protocol."""
MSI_PATH = "/identity/msi/token"
"""``MSI_ENDPOINT``: the Azure ML compute protocol."""
IDENTITY_HEADER_PURPOSE = "identity-header/v1"
JOB_SECRET_PURPOSE = "job-msi/v1/"
SELECTOR_HINT = "Unset AZURE_CLIENT_ID (DefaultAzureCredential passes it as the identity to use)."


def identity_header(issuer: Issuer) -> str:
    """``IDENTITY_HEADER``: the secret of the App Service endpoint."""
    return issuer.secret(IDENTITY_HEADER_PURPOSE)


def job_secret(issuer: Issuer, job_id: str) -> str:
    """``MSI_SECRET`` of one job: it names the job, signed, so any replica can check it without a lookup table."""
    key = job_id.lower()
    named = base64.urlsafe_b64encode(key.encode()).rstrip(b"=").decode()
    return f"{named}.{issuer.secret(JOB_SECRET_PURPOSE + key)}"


def job_of_secret(issuer: Issuer, secret: str) -> str | None:
    """The job id an ``MSI_SECRET`` names, when its signature is right; else None."""
    named, _, signature = secret.rpartition(".")
    try:
        key = base64.urlsafe_b64decode(named + "=" * (-len(named) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return key if hmac.compare_digest(secret, job_secret(issuer, key)) and signature else None


def _refused(status: int, message: str) -> JSONResponse:
    code = "AuthenticationFailed" if status == 401 else "BadRequest"
    return JSONResponse(
        {"statusCode": status, "message": message, "error": {"code": code, "message": message}}, status_code=status
    )


def _token_response(token: str, resource: str, client_id: str) -> JSONResponse:
    expires = jwt.decode(token, options={"verify_signature": False})["exp"]
    return JSONResponse(
        {
            "access_token": token,
            "expires_on": str(expires),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": client_id,
        }
    )


Resource = Annotated[str, Query(max_length=2048, description="The audience of the token, e.g. https://ml.azure.com.")]


@router.get(
    IDENTITY_PATH,
    operation_id="ManagedIdentity_AppServiceToken",
    response_class=JSONResponse,
    responses=responses({200: ManagedIdentityToken}),
)
async def app_service_token(
    request: Request,
    resource: Resource = "",
    client_id: Annotated[str | None, Query(max_length=256)] = None,
    object_id: Annotated[str | None, Query(max_length=256)] = None,
    mi_res_id: Annotated[str | None, Query(max_length=2048)] = None,
    x_identity_header: Annotated[str, Header(max_length=256)] = "",
) -> JSONResponse:
    """A token of the server owner for an audience this server accepts (``IDENTITY_ENDPOINT``)."""
    issuer: Issuer = request.app.state.issuer
    if not hmac.compare_digest(x_identity_header.encode(), identity_header(issuer).encode()):
        return _refused(401, 'The X-IDENTITY-HEADER is missing or wrong: run eval "$(batchpoint env)" again.')
    audience = audience_of(resource)
    validator: TokenValidator = request.app.state.tokens
    if audience not in validator.audiences[True]:
        accepted = ", ".join(sorted(validator.audiences[True]))
        return _refused(400, f"Unknown resource '{resource}': this server's tokens are for {accepted}.")
    owner = issuer.object_id()
    if any(selector not in (None, owner) for selector in (client_id, object_id)) or mi_res_id:
        return _refused(400, f"This endpoint has one identity, the server owner's ({owner}). {SELECTOR_HINT}")
    return _token_response(issuer.mint(audience), resource, owner)


@router.get(
    MSI_PATH,
    operation_id="ManagedIdentity_ComputeToken",
    response_class=JSONResponse,
    responses=responses({200: ManagedIdentityToken}),
)
def compute_token(
    request: Request,
    resource: Resource = "",
    clientid: Annotated[str | None, Query(max_length=256)] = None,
    secret: Annotated[str, Header(max_length=4096)] = "",
) -> JSONResponse:
    """A token of the managed identity of a running job's compute (``MSI_ENDPOINT``). Plain ``def``: it reads the
    job and its compute from the database, on FastAPI's thread pool."""
    issuer: Issuer = request.app.state.issuer
    job_id = job_of_secret(issuer, secret)
    store = services_of(request).provide(Resources).store
    job = store.get(job_id) if job_id else None
    if job is None or job.body["properties"].get("status") in TERMINAL:
        return _refused(401, "The secret is missing or wrong, or its job has ended.")
    if not audience_of(resource):
        return _refused(400, "The resource (the token's audience) is missing.")
    compute_id = job.body["properties"].get("computeId") or ""
    compute = store.get(compute_id) if compute_id else None
    identity = _identity(issuer, compute_id, (compute.body.get("identity") if compute else None) or {}, clientid)
    if identity is None and clientid:
        return _refused(400, f"The compute has no managed identity with client id '{clientid}'. {SELECTOR_HINT}")
    if identity is None:
        return _refused(400, "The compute has several user-assigned identities: set AZURE_CLIENT_ID to one's.")
    principal, client, resource_id = identity
    claims = {"oid": principal, "sub": principal, "appid": client, "idtyp": "app", "xms_mirid": resource_id}
    return _token_response(issuer.sign(audience_of(resource), claims), resource, client)


def _identity(
    issuer: Issuer, compute_id: str, identity: dict[str, Any], client_id: str | None
) -> tuple[str, str, str] | None:
    """(object id, client id, resource id) of the compute's identity that ``client_id`` selects: its system-assigned
    one by default, else its only user-assigned one; a compute without any has one named after it."""
    system = identity.get("principalId")
    users = {name: value for name, value in (identity.get("userAssignedIdentities") or {}).items() if value}
    candidates = [(user["principalId"], user["clientId"], name) for name, user in users.items()]
    if system:
        candidates.insert(0, (system, system, compute_id))
    if not candidates:
        named = str(uuid.uuid5(uuid.UUID(issuer.tenant), compute_id.lower()))
        candidates.append((named, named, compute_id))
    if not client_id:
        return candidates[0] if system or len(candidates) == 1 else None
    wanted = client_id.lower()
    return next((found for found in candidates if wanted in (found[0].lower(), found[1].lower())), None)
