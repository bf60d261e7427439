"""The one authentication seam: every route's context dependency, and the read fast path, call ``authenticate``.

A request needs a bearer token that the app's ``TokenValidator`` accepts (see ``access/tokens.py``); its
``upn``/``oid`` claims name the caller in ``systemData``. ARM calls take the management audiences (this server's
own URL, ``https://management.azure.com/``); data-plane calls (invoke, run history) take ``https://ml.azure.com``
too. Refusals are ARM's 401s, with a ``WWW-Authenticate`` challenge.

``authorize`` then checks the caller's role assignments for the action the request needs (``access/permissions.py``);
a refusal is ARM's 403 ``AuthorizationFailed``. ``endpoint_key_caller`` lets a ``Key`` endpoint's own keys
invoke it.
"""

from __future__ import annotations

import hmac

from starlette.requests import Request

from batchpoint.access.issuer import Issuer
from batchpoint.access.permissions import Permission, required
from batchpoint.access.rbac import RoleAssignments, authorization_failed
from batchpoint.access.tokens import Claims, LocalKeys, TokenRejected, TokenValidator, audience_forms, key_source
from batchpoint.api.deps import services_of
from batchpoint.arm.context import Caller
from batchpoint.arm.errors import ArmError
from batchpoint.config import Settings
from batchpoint.store.entities import Resource

ANONYMOUS = "unknown"
KEY_NAMES = ("primaryKey", "secondaryKey")
MANAGEMENT_AUDIENCE = "https://management.azure.com/"
ML_AUDIENCE = "https://ml.azure.com"
LOCAL_HOSTS = ("127.0.0.1", "localhost")
AUTHORIZATION_URI = "https://login.windows.net/common"


def token_validator(settings: Settings, embedded: Issuer) -> TokenValidator:
    """The embedded issuer and the configured ones; the audiences of this server as configured.

    The server's own URL counts under its configured host and the local names only, never under a request's
    ``Host`` header, which would let a token meant for any other service in."""
    configured = {issuer: key_source(keys) for issuer, keys in settings.trusted_issuers.items()}
    issuers = {embedded.url: LocalKeys(embedded.jwks()), **configured}
    own_urls = {f"{settings.scheme}://{host}:{settings.port}" for host in (settings.host, *LOCAL_HOSTS)}
    management = audience_forms([*own_urls, MANAGEMENT_AUDIENCE])
    return TokenValidator(issuers, management, management | audience_forms([ML_AUDIENCE]))


def _challenge(description: str) -> dict[str, str]:
    return {
        "WWW-Authenticate": f'Bearer authorization_uri="{AUTHORIZATION_URI}", error="invalid_token", '
        f'error_description="{description}"'
    }


def _missing_header() -> ArmError:
    return ArmError(
        401,
        "AuthenticationFailed",
        "Authentication failed. The 'Authorization' header is missing.",
        headers=_challenge("The authentication failed because of missing 'Authorization' header."),
    )


def _rejected(rejected: TokenRejected) -> ArmError:
    if rejected.expired:
        return ArmError(
            401, "ExpiredAuthenticationToken", rejected.reason, headers=_challenge("The access token expired.")
        )
    message = f"The access token is invalid. {rejected.reason}"
    return ArmError(401, "InvalidAuthenticationToken", message, headers=_challenge("The access token is invalid."))


def _caller(claims: Claims) -> Caller:
    name = claims.get("upn") or claims.get("unique_name") or claims.get("preferred_username") or claims.get("oid")
    kind = "User" if claims.get("upn") or claims.get("preferred_username") else "Application"
    groups = claims.get("groups")
    principals = tuple(str(group) for group in groups) if isinstance(groups, list) else ()
    return Caller(name=str(name or ANONYMOUS), type=kind, object_id=claims.get("oid"), groups=principals)


def authenticate(request: Request, data_plane: bool = False) -> Caller:
    """The caller of ``request``, else a 401; ``data_plane`` routes also accept ``https://ml.azure.com`` tokens."""
    token = _bearer(request)
    if not token:
        raise _missing_header()
    return caller_of_token(request, token, data_plane)


def caller_of_token(request: Request, token: str, data_plane: bool = False) -> Caller:
    """The caller a token names, once the app's ``TokenValidator`` accepts it, else a 401 (the web page's
    session cookie holds a token too)."""
    validator: TokenValidator = request.app.state.tokens
    try:
        return _caller(validator.claims(token, data_plane))
    except TokenRejected as rejected:
        raise _rejected(rejected) from None


def _bearer(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def authorized_caller(request: Request, data_plane: bool = False) -> Caller:
    """The app's ``Authenticator`` (``api/deps.py``): the caller, once its role assignments allow the request."""
    caller = authenticate(request, data_plane)
    authorize(request, caller)
    return caller


def authorize(request: Request, caller: Caller) -> None:
    """403 unless the caller's role assignments grant what the request's method and path need."""
    permission = required(request.scope["method"], request.scope["path"])
    if permission is not None:
        check_permission(request, caller, permission)


def check_permission(request: Request, caller: Caller, permission: Permission) -> None:
    roles = services_of(request).provide(RoleAssignments)
    if not roles.permits(caller, permission.action, permission.scope):
        raise authorization_failed(caller, permission.action, permission.scope)


def endpoint_key_caller(request: Request, endpoint: Resource | None) -> Caller | None:
    """The caller when the bearer value is a key of ``endpoint`` and its ``authMode`` is ``Key``, else ``None``.

    Both keys are always compared, each in constant time, so timing tells neither which key nor how much of it
    matched."""
    presented = _bearer(request).encode()
    if endpoint is None or not presented or endpoint.body["properties"].get("authMode", "").lower() != "key":
        return None
    matches = [hmac.compare_digest(presented, str(endpoint.private.get(name, "")).encode()) for name in KEY_NAMES]
    return Caller(name=f"{endpoint.name} endpoint key", type="Key") if any(matches) else None
