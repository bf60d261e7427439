"""The embedded token issuer's public side: its OpenID configuration and signing keys, read without a token."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from batchpoint.access.issuer import ALGORITHM, Issuer
from batchpoint.api.deps import base_url
from batchpoint.api.routing import routes

router = routes(tags=["Identity"])
KEYS = "/discovery/keys"


def _issuer(request: Request) -> Issuer:
    return request.app.state.issuer


@router.get("/.well-known/openid-configuration", operation_id="Issuer_OpenIdConfiguration", response_class=JSONResponse)
def openid_configuration(request: Request) -> dict[str, Any]:
    """Where the keys of the issuer that ``batchpoint token`` signs with are, as OpenID Connect discovery says."""
    return {
        "issuer": _issuer(request).url,
        "jwks_uri": base_url(request) + KEYS,
        "id_token_signing_alg_values_supported": [ALGORITHM],
        "token_endpoint_auth_signing_alg_values_supported": [ALGORITHM],
    }


@router.get(KEYS, operation_id="Issuer_Keys", response_class=JSONResponse)
def keys(request: Request) -> dict[str, Any]:
    """The issuer's public signing keys (JWKS)."""
    return _issuer(request).jwks()
