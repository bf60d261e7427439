"""Access token validation: JWTs signed (RS256 or ES256) by a trusted issuer, for one of the accepted audiences.

Each trusted issuer is known by its ``iss`` and a key source: a local JWKS file, or a URL (a JWKS, or an OpenID
configuration naming one) fetched on first use and cached. A token must name its key (``kid``), and that key
must be of the type its algorithm needs, so no token can pick the key or the algorithm it is checked with.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import jwt
from jwt import PyJWK, PyJWKClient, PyJWKSet

ALGORITHMS = ("RS256", "ES256")
CLOCK_SKEW_SECONDS = 60
REQUIRED_CLAIMS = ["exp", "iss", "aud"]
OPENID_CONFIGURATION = "/.well-known/openid-configuration"
FETCH_TIMEOUT_SECONDS = 10
REMOTE_KEYS_LIFESPAN_SECONDS = 3600
VERIFIED_CACHE_SIZE = 4096

Claims = dict[str, Any]


class TokenRejected(Exception):
    def __init__(self, reason: str, expired: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.expired = expired


class KeySource(Protocol):
    def key(self, kid: str) -> PyJWK | None: ...


class LocalKeys:
    """A JWKS held in memory: the embedded issuer's, or one read from a file at startup."""

    def __init__(self, jwks: Mapping[str, Any]) -> None:
        self.keys = {key.key_id: key for key in PyJWKSet.from_dict(dict(jwks)).keys if key.key_id}

    @classmethod
    def from_file(cls, path: Path) -> LocalKeys:
        return cls(json.loads(path.read_text()))

    def key(self, kid: str) -> PyJWK | None:
        return self.keys.get(kid)


class RemoteKeys:
    """A JWKS URL, or an OpenID configuration URL; fetched when a token first needs it, then cached.

    An unknown ``kid`` fetches the set again (PyJWKClient does), so rotated keys are picked up."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._client: PyJWKClient | None = None

    def key(self, kid: str) -> PyJWK | None:
        try:
            return self._jwks_client().get_signing_key(kid)
        except (jwt.PyJWKClientError, OSError, ValueError, KeyError):
            return None

    def _jwks_client(self) -> PyJWKClient:
        if self._client is None:
            self._client = PyJWKClient(
                self._jwks_uri(), lifespan=REMOTE_KEYS_LIFESPAN_SECONDS, timeout=FETCH_TIMEOUT_SECONDS
            )
        return self._client

    def _jwks_uri(self) -> str:
        if not self.url.rstrip("/").endswith(OPENID_CONFIGURATION):
            return self.url
        with urllib.request.urlopen(self.url, timeout=FETCH_TIMEOUT_SECONDS) as response:  # configured URL
            return str(json.load(response)["jwks_uri"])


def key_source(location: str) -> KeySource:
    """``https://...`` (or ``http://``) is fetched when needed; anything else is a JWKS file, read now."""
    if location.startswith(("https://", "http://")):
        return RemoteKeys(location)
    return LocalKeys.from_file(Path(location).expanduser())


def audience_forms(audiences: Iterable[str]) -> frozenset[str]:
    """Each audience with and without a trailing slash: clients derive it from a URL either way."""
    return frozenset(form for audience in audiences for form in (audience.rstrip("/"), audience.rstrip("/") + "/"))


def utc_text(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def expired(expires: float) -> TokenRejected:
    return TokenRejected(
        f"The access token expiry UTC time '{utc_text(expires)}' is earlier than current UTC time "
        f"'{utc_text(time.time())}'.",
        expired=True,
    )


class TokenValidator:
    """Checks tokens against the trusted issuers and two audience sets: management, and data plane."""

    def __init__(
        self, issuers: Mapping[str, KeySource], management: frozenset[str], data_plane: frozenset[str]
    ) -> None:
        self.issuers = dict(issuers)
        self.audiences = {False: management, True: data_plane}
        # Verifying a signature costs more than a whole cached read; a token seen before is only re-checked for expiry.
        self._verified = lru_cache(maxsize=VERIFIED_CACHE_SIZE)(self._verify)

    @property
    def fetches_keys(self) -> bool:
        """Whether checking a token may fetch its issuer's keys over the network (an issuer given by URL)."""
        return any(isinstance(source, RemoteKeys) for source in self.issuers.values())

    def claims(self, token: str, data_plane: bool = False) -> Claims:
        claims, expires = self._verified(token, data_plane)
        if expires + CLOCK_SKEW_SECONDS < time.time():
            raise expired(expires)
        return claims

    def _verify(self, token: str, data_plane: bool) -> tuple[Claims, int]:
        header, unverified = _unverified(token)
        algorithm, issuer = header.get("alg"), unverified.get("iss")
        if algorithm not in ALGORITHMS:
            raise TokenRejected(
                f"The signing algorithm '{algorithm}' is not accepted, only {' and '.join(ALGORITHMS)}."
            )
        key = self._key(issuer, header.get("kid"))
        if key.algorithm_name != algorithm:
            raise TokenRejected(f"The signing key '{key.key_id}' is not a key for '{algorithm}'.")
        audiences = self.audiences[data_plane]
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                audience=sorted(audiences),
                issuer=issuer,
                leeway=CLOCK_SKEW_SECONDS,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError:
            raise expired(float(unverified["exp"])) from None
        except jwt.InvalidAudienceError:
            raise TokenRejected(f"The audience '{unverified.get('aud')}' is not accepted here.") from None
        except jwt.PyJWTError as error:
            raise TokenRejected(str(error)) from None
        return claims, int(claims["exp"])

    def _key(self, issuer: object, kid: object) -> PyJWK:
        source = self.issuers.get(issuer) if isinstance(issuer, str) else None
        if source is None:
            raise TokenRejected(f"The issuer '{issuer}' is not trusted.")
        key = source.key(kid) if isinstance(kid, str) else None
        if key is None:
            raise TokenRejected(f"The signing key '{kid}' is not one of the issuer's keys.")
        return key


def _unverified(token: str) -> tuple[dict[str, Any], Claims]:
    """Header and claims as the token states them: only to find the key its signature must verify with."""
    try:
        return jwt.get_unverified_header(token), jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise TokenRejected("The access token is not a well-formed JWT.") from None
