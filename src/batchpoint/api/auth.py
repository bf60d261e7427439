"""The one authentication seam: every ARM route's context dependency calls ``authenticate``.

For now any bearer token is accepted; its ``oid``/``upn`` claims (read without checking the signature)
name the caller in ``systemData``. A stricter validator replaces the body of ``authenticate`` only.
"""

from __future__ import annotations

from functools import lru_cache

import jwt
from fastapi import Request

from batchpoint.services.context import Caller
from batchpoint.services.errors import ArmError

ANONYMOUS = "unknown"


def _missing_header() -> ArmError:
    return ArmError(
        401,
        "AuthenticationFailed",
        "Authentication failed. The 'Authorization' header is missing.",
        headers={
            "WWW-Authenticate": 'Bearer authorization_uri="https://login.windows.net/common", '
            'error="invalid_token", '
            'error_description="The authentication failed because of missing \'Authorization\' header."'
        },
    )


@lru_cache(maxsize=1024)
def _caller_from_token(token: str) -> Caller:
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return Caller(name=ANONYMOUS)
    name = claims.get("upn") or claims.get("unique_name") or claims.get("preferred_username") or claims.get("oid")
    kind = "User" if claims.get("upn") or claims.get("preferred_username") else "Application"
    return Caller(name=str(name or ANONYMOUS), type=kind, object_id=claims.get("oid"))


def authenticate(request: Request) -> Caller:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _missing_header()
    return _caller_from_token(token.strip())
