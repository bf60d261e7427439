"""The embedded token issuer: an ES256 key pair made once in the data directory, trusted by default.

``batchpoint token`` signs access tokens with the private key; the server trusts the public key and publishes it
(``/discovery/keys``), so other tools can check the tokens too. The issuer's tenant id derives from the key, so
another data directory is another tenant, whose tokens this server refuses.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import hmac
import json
import os
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

ALGORITHM = "ES256"
ISSUER_BASE = "https://sts.batchpoint.local"
"""Issuer URLs look like Entra ID's v1 ones (``https://sts.windows.net/{tenant}/``); nothing is ever fetched there."""
DEFAULT_AUDIENCE = "https://management.azure.com/"
"""Every route accepts it, whatever the server's host and port."""
DEFAULT_MINUTES = 60
SCOPE_SUFFIX = "/.default"


def audience_of(scope: str) -> str:
    """The audience Entra ID puts in a token for ``scope``: the resource before ``/.default``
    (``https://ml.azure.com/.default`` -> ``https://ml.azure.com``, ``https://management.azure.com//.default`` ->
    ``https://management.azure.com/``); an audience stays as it is."""
    return scope[: -len(SCOPE_SUFFIX)] if scope.endswith(SCOPE_SUFFIX) else scope


def key_file(home: Path) -> Path:
    return home / "issuer" / "signing-key.pem"


@dataclass(frozen=True)
class Issuer:
    key: ec.EllipticCurvePrivateKey

    @cached_property
    def _public_key(self) -> dict[str, str]:
        jwk: dict[str, str] = ECAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return jwk

    @cached_property
    def kid(self) -> str:
        """The key's RFC 7638 thumbprint."""
        members = json.dumps(
            {name: self._public_key[name] for name in ("crv", "kty", "x", "y")}, separators=(",", ":"), sort_keys=True
        )
        return base64.urlsafe_b64encode(hashlib.sha256(members.encode()).digest()).rstrip(b"=").decode()

    @cached_property
    def tenant(self) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{ISSUER_BASE}/{self.kid}"))

    @property
    def url(self) -> str:
        return f"{ISSUER_BASE}/{self.tenant}/"

    def object_id(self, user: str | None = None) -> str:
        """The ``oid`` the tokens of ``user`` (default: the login name) carry: stable per user and tenant."""
        return str(uuid.uuid5(uuid.UUID(self.tenant), user or getpass.getuser()))

    def principal_id(self, user_or_id: str) -> str:
        """An object id as given, else the one this issuer's tokens for that user name carry."""
        try:
            return str(uuid.UUID(user_or_id))
        except ValueError:
            return self.object_id(user_or_id)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [{**self._public_key, "kid": self.kid, "use": "sig", "alg": ALGORITHM}]}

    def mint(
        self,
        audience: str | Sequence[str] = DEFAULT_AUDIENCE,
        user: str | None = None,
        roles: Sequence[str] = (),
        scopes: Sequence[str] = (),
        minutes: float = DEFAULT_MINUTES,
    ) -> str:
        """A signed access token for ``user`` (default: the login name), shaped like an Entra ID one."""
        name = user or getpass.getuser()
        claims: dict[str, Any] = {"oid": self.object_id(name), "upn": name, "name": name}
        if roles:
            claims["roles"] = list(roles)
        if scopes:
            claims["scp"] = " ".join(scopes)
        return self.sign(audience, claims, minutes)

    def sign(self, audience: str | Sequence[str], claims: dict[str, Any], minutes: float = DEFAULT_MINUTES) -> str:
        """A signed access token of this issuer for ``audience`` with ``claims`` (who it is for) added."""
        now = int(time.time())
        envelope: dict[str, Any] = {
            "iss": self.url,
            "aud": audience if isinstance(audience, str) else list(audience),
            "tid": self.tenant,
            "iat": now,
            "nbf": now,
            "exp": now + int(minutes * 60),
        }
        return jwt.encode(
            {**envelope, **claims}, self.key, algorithm=ALGORITHM, headers={"kid": self.kid, "typ": "JWT"}
        )

    def secret(self, purpose: str) -> str:
        """A secret derived from the signing key for one ``purpose``: whoever can read the key (and so mint tokens
        already) can compute it, every replica gets the same, and it changes when the key does."""
        private = self.key.private_numbers().private_value.to_bytes(32, "big")
        digest = hmac.new(private, purpose.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class IssuerCredential:
    """An azure-core credential (``get_token(*scopes)``) whose tokens the embedded issuer signs, each for the
    audience its scopes name: azure-ai-ml refuses a token for the Azure ML scope that carries another audience
    ("AAD token with aml scope could not be fetched"), so one fixed token cannot serve every SDK call."""

    def __init__(self, issuer: Issuer, user: str | None = None, minutes: float = DEFAULT_MINUTES) -> None:
        self._issuer = issuer
        self._user = user
        self._minutes = minutes

    def get_token(self, *scopes: str, **_options: Any) -> Any:
        from azure.core.credentials import AccessToken  # the SDKs' package, present where they are

        audiences = [audience_of(scope) for scope in scopes] or [DEFAULT_AUDIENCE]
        token = self._issuer.mint(audiences[0] if len(audiences) == 1 else audiences, self._user, minutes=self._minutes)
        return AccessToken(token, int(time.time() + self._minutes * 60))


def ensure_issuer(home: Path) -> Issuer:
    """The data directory's issuer, its key made on first use (by the server or ``batchpoint token``, whichever
    comes first: the key file is created atomically, so both end up with the same key)."""
    path = key_file(home)
    if not path.exists():
        _create_key(path)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path} does not hold an EC private key")
    return Issuer(key)


def _create_key(path: Path) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".key-")  # mode 0600
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(pem)
        os.link(temporary, path)
    except FileExistsError:
        pass  # another process made it first; use theirs
    finally:
        os.unlink(temporary)
