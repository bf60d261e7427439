"""Token validation at the one authentication seam: every bad token is a 401 with ARM's code, on an ARM route,
on the invoke route and on a fast-path read; good tokens of the embedded and of configured issuers pass."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import RSAAlgorithm

from batchpoint.access.issuer import Issuer, ensure_issuer
from tests.api.arm import create_endpoint, endpoint_url
from tests.server import API, WORKSPACE_ID, Server, batchpoint_command

V = {"api-version": API}
ENDPOINT = "auth-ep"
RSA_ISSUER = "https://login.example.com/11111111-1111-1111-1111-111111111111/v2.0"
RSA_KID = "rsa-key-1"
OID = "0b1c2d3e-0000-0000-0000-000000000001"
"""The object id of the tokens the cases sign; the server makes it Owner, so a good token is an allowed call."""
INVALID, EXPIRED, MISSING = "InvalidAuthenticationToken", "ExpiredAuthenticationToken", "AuthenticationFailed"
INPUT = {"properties": {"inputData": {"in": {"jobInputType": "UriFolder", "uri": "azureml://datastores/x/paths/y"}}}}


@dataclass(frozen=True)
class Keys:
    """The signers the cases use: the server's embedded issuer, a configured RS256 issuer, and strangers."""

    server: Server
    embedded: Issuer
    rsa_key: rsa.RSAPrivateKey
    stranger: Issuer
    """The embedded issuer of another data directory: another tenant, which the server does not trust."""

    def claims(self, **changes: Any) -> dict[str, Any]:
        """Valid claims of the embedded issuer for this server; a ``None`` change drops the claim."""
        now = int(time.time())
        claims = {
            "iss": self.embedded.url,
            "aud": self.server.base_url,
            "oid": OID,
            "upn": "ada@example.com",
            "iat": now,
            "nbf": now,
            "exp": now + 600,
        }
        claims.update(changes)
        return {name: value for name, value in claims.items() if value is not None}

    def embedded_token(self, **changes: Any) -> str:
        return sign(self.claims(**changes), self.embedded.key, "ES256", self.embedded.kid)

    def rsa_token(self, **changes: Any) -> str:
        return sign(self.claims(iss=RSA_ISSUER, **changes), self.rsa_key, "RS256", RSA_KID)


def sign(claims: dict[str, Any], key: Any, algorithm: str, kid: str | None) -> str:
    return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": kid} if kid else None)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segments(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"


def hs256_with_public_key(keys: Keys) -> str:
    """The classic confusion attack: HMAC keyed with the issuer's published public key."""
    public = keys.embedded.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signed = segments({"alg": "HS256", "typ": "JWT", "kid": keys.embedded.kid}, keys.claims())
    return f"{signed}.{b64(hmac.new(public, signed.encode(), hashlib.sha256).digest())}"


def alg_none(keys: Keys) -> str:
    return segments({"alg": "none", "typ": "JWT", "kid": keys.embedded.kid}, keys.claims()) + "."


def tampered_payload(keys: Keys) -> str:
    header, _, signature = keys.embedded_token().split(".")
    return f"{header}.{b64(json.dumps(keys.claims(upn='admin@example.com')).encode())}.{signature}"


def tampered_signature(keys: Keys) -> str:
    head, _, signature = keys.embedded_token().rpartition(".")
    middle = len(signature) // 2
    flipped = "A" if signature[middle] != "A" else "B"
    return f"{head}.{signature[:middle]}{flipped}{signature[middle + 1 :]}"


def garbage_signature(keys: Keys) -> str:
    return keys.embedded_token().rpartition(".")[0] + ".c2lnbmF0dXJl"


def rsa_kid_with_ec_signature(keys: Keys) -> str:
    """ES256 under the kid of the configured RSA key: the key type must fit the algorithm."""
    return sign(keys.claims(iss=RSA_ISSUER), ec.generate_private_key(ec.SECP256R1()), "ES256", RSA_KID)


def forged_rsa(keys: Keys) -> str:
    """The configured issuer's iss and kid, signed by some other RSA key."""
    return sign(
        keys.claims(iss=RSA_ISSUER), rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256", RSA_KID
    )


Case = Callable[[Keys], str | None]
"""The Authorization header a case sends (None: none at all)."""


def bearer(make: Callable[[Keys], str]) -> Case:
    return lambda keys: f"Bearer {make(keys)}"


BAD: list[Any] = [
    pytest.param(lambda keys: None, MISSING, id="no-header"),
    pytest.param(lambda keys: "Bearer", MISSING, id="bearer-without-token"),
    pytest.param(lambda keys: f"Basic {b64(b'user:password')}", MISSING, id="basic-scheme"),
    pytest.param(lambda keys: "Bearer not-a-jwt", INVALID, id="malformed"),
    pytest.param(lambda keys: "Bearer a.b.c", INVALID, id="malformed-segments"),
    pytest.param(bearer(lambda keys: keys.embedded_token(exp=int(time.time()) - 3600)), EXPIRED, id="expired"),
    pytest.param(
        bearer(lambda keys: keys.embedded_token(exp=int(time.time()) - 120)), EXPIRED, id="expired-beyond-skew"
    ),
    pytest.param(bearer(lambda keys: keys.embedded_token(nbf=int(time.time()) + 3600)), INVALID, id="not-yet-valid"),
    pytest.param(
        bearer(lambda keys: keys.embedded_token(aud="https://graph.microsoft.com")), INVALID, id="wrong-audience"
    ),
    pytest.param(bearer(lambda keys: keys.embedded_token(aud="http://127.0.0.1:1")), INVALID, id="another-server"),
    pytest.param(bearer(lambda keys: keys.embedded_token(aud=None)), INVALID, id="missing-audience"),
    pytest.param(bearer(lambda keys: keys.embedded_token(iss="https://evil.example/")), INVALID, id="wrong-issuer"),
    pytest.param(bearer(lambda keys: keys.embedded_token(iss=None)), INVALID, id="missing-issuer"),
    pytest.param(bearer(lambda keys: keys.embedded_token(exp=None)), INVALID, id="missing-exp"),
    pytest.param(
        bearer(lambda keys: sign(keys.claims(), keys.embedded.key, "ES256", "no-such-kid")), INVALID, id="unknown-kid"
    ),
    pytest.param(bearer(lambda keys: sign(keys.claims(), keys.embedded.key, "ES256", None)), INVALID, id="no-kid"),
    pytest.param(bearer(alg_none), INVALID, id="alg-none"),
    pytest.param(bearer(hs256_with_public_key), INVALID, id="hs256-with-public-key"),
    pytest.param(bearer(tampered_payload), INVALID, id="tampered-payload"),
    pytest.param(bearer(tampered_signature), INVALID, id="tampered-signature"),
    pytest.param(bearer(garbage_signature), INVALID, id="garbage-signature"),
    pytest.param(
        bearer(lambda keys: keys.stranger.mint(audience=keys.server.base_url)), INVALID, id="untrusted-tenant"
    ),
    pytest.param(
        bearer(lambda keys: sign(keys.claims(), keys.stranger.key, "ES256", keys.embedded.kid)),
        INVALID,
        id="trusted-kid-foreign-key",
    ),
    pytest.param(bearer(rsa_kid_with_ec_signature), INVALID, id="wrong-key-type"),
    pytest.param(bearer(forged_rsa), INVALID, id="forged-rsa"),
    pytest.param(
        bearer(lambda keys: sign(keys.claims(iss=RSA_ISSUER), keys.rsa_key, "RS512", RSA_KID)), INVALID, id="rs512"
    ),
]


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keys]:
    """A server trusting, besides its own issuer, an RS256 issuer configured by a JWKS file; one endpoint."""
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwks = tmp_path_factory.mktemp("jwks") / "keys.json"
    jwk = {**RSAAlgorithm.to_jwk(rsa_key.public_key(), as_dict=True), "kid": RSA_KID, "use": "sig"}
    jwks.write_text(json.dumps({"keys": [jwk]}))
    home = tmp_path_factory.mktemp("home")
    owners = ["--owner", OID, "--owner", "lin@example.com"]
    server = Server(home=home, args=["--trusted-issuer", f"{RSA_ISSUER}={jwks}", *owners]).start()
    with server.client() as client:
        create_endpoint(client, ENDPOINT)
    stranger = ensure_issuer(tmp_path_factory.mktemp("stranger"))
    yield Keys(server, ensure_issuer(home), rsa_key, stranger)
    server.stop()


def arm_get(client: httpx.Client) -> httpx.Response:
    return client.get(WORKSPACE_ID, params=V)


def invoke(client: httpx.Client) -> httpx.Response:
    return client.post(f"/inference{endpoint_url(ENDPOINT)}/jobs", json=INPUT)


def fast_path_get(client: httpx.Client) -> httpx.Response:
    return client.get(endpoint_url(ENDPOINT), params=V)


ROUTES = [
    pytest.param(arm_get, id="arm"),
    pytest.param(invoke, id="invoke"),
    pytest.param(fast_path_get, id="fast-path"),
]


def call(keys: Keys, route: Callable[[httpx.Client], httpx.Response], authorization: str | None) -> httpx.Response:
    with keys.server.client(token=None) as client:
        if authorization is not None:
            client.headers["Authorization"] = authorization
        return route(client)


def accepted(response: httpx.Response) -> bool:
    """Past authentication: the invoke of an endpoint without deployments stops at the next check."""
    if response.request.method == "POST":
        return response.status_code == 400 and "No valid deployments" in response.json()["error"]["message"]
    return response.status_code == 200


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(("case", "code"), BAD)
def test_bad_tokens_are_refused(
    keys: Keys, route: Callable[[httpx.Client], httpx.Response], case: Case, code: str
) -> None:
    response = call(keys, route, case(keys))
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == code
    challenge = response.headers["WWW-Authenticate"]
    assert (
        challenge.startswith('Bearer authorization_uri="https://login.windows.net/')
        and 'error="invalid_token"' in challenge
    )


GOOD: list[Any] = [
    pytest.param(lambda keys: keys.embedded_token(), id="embedded-base-url"),
    pytest.param(lambda keys: keys.embedded_token(aud=keys.server.base_url + "/"), id="base-url-with-slash"),
    pytest.param(
        lambda keys: keys.embedded_token(aud=keys.server.base_url.replace("127.0.0.1", "localhost")), id="localhost"
    ),
    pytest.param(lambda keys: keys.embedded_token(aud="https://management.azure.com/"), id="management"),
    pytest.param(lambda keys: keys.embedded_token(aud="https://management.azure.com"), id="management-no-slash"),
    pytest.param(
        lambda keys: keys.embedded_token(aud=["https://graph.microsoft.com", keys.server.base_url]), id="audience-list"
    ),
    pytest.param(lambda keys: keys.embedded_token(exp=int(time.time()) - 30), id="expired-within-skew"),
    pytest.param(lambda keys: keys.embedded_token(nbf=int(time.time()) + 30), id="not-yet-valid-within-skew"),
    pytest.param(lambda keys: keys.embedded_token(nbf=None, iat=None), id="only-required-claims"),
    pytest.param(lambda keys: keys.rsa_token(aud="https://management.azure.com/"), id="configured-rs256-issuer"),
]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("make", GOOD)
def test_good_tokens_are_accepted(
    keys: Keys, route: Callable[[httpx.Client], httpx.Response], make: Callable[[Keys], str]
) -> None:
    response = call(keys, route, f"Bearer {make(keys)}")
    assert accepted(response), response.text


def test_ml_audience_is_for_the_data_plane_only(keys: Keys) -> None:
    authorization = f"Bearer {keys.embedded_token(aud='https://ml.azure.com')}"
    assert accepted(call(keys, invoke, authorization))
    refused = call(keys, arm_get, authorization)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == INVALID


def test_a_token_stops_working_when_it_expires(keys: Keys) -> None:
    """A token accepted once (and so cached) is still checked for expiry on every call."""
    authorization = f"Bearer {keys.embedded_token(exp=int(time.time()) - 59)}"
    assert accepted(call(keys, arm_get, authorization))
    time.sleep(2)
    assert call(keys, arm_get, authorization).json()["error"]["code"] == EXPIRED


def test_created_by_comes_from_the_upn(keys: Keys) -> None:
    with keys.server.client(token=keys.rsa_token(aud=keys.server.base_url, upn="grace@example.com")) as client:
        endpoint = create_endpoint(client, "grace-ep")
    assert endpoint["systemData"]["createdBy"] == "grace@example.com"
    assert endpoint["systemData"]["createdByType"] == "User"


def test_the_issuer_publishes_its_keys_without_a_token(keys: Keys) -> None:
    with keys.server.client(token=None) as client:
        configuration = client.get("/.well-known/openid-configuration").json()
        published = client.get(configuration["jwks_uri"].removeprefix(keys.server.base_url)).json()
    assert configuration["issuer"] == keys.embedded.url
    key = jwt.PyJWKSet.from_dict(published)[keys.embedded.kid]
    claims = jwt.decode(keys.embedded_token(), key.key, algorithms=["ES256"], audience=keys.server.base_url)
    assert claims["iss"] == keys.embedded.url


def test_token_command_prints_a_token_the_server_accepts(keys: Keys) -> None:
    command = [*batchpoint_command(), "token", "--home", str(keys.server.home)]
    options = ["--user", "lin@example.com", "--role", "Reader", "--role", "Writer", "--scope", "user_impersonation"]
    token = subprocess.run(
        [*command, *options, "--minutes", "5"], capture_output=True, text=True, check=True
    ).stdout.strip()
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["upn"] == claims["name"] == "lin@example.com" and claims["roles"] == ["Reader", "Writer"]
    assert claims["scp"] == "user_impersonation" and claims["tid"] == keys.embedded.tenant
    assert claims["aud"] == "https://management.azure.com/" and claims["exp"] - claims["iat"] == 300
    assert {"iss", "oid", "nbf"} <= claims.keys()
    with keys.server.client(token=token) as client:
        endpoint = create_endpoint(client, "lin-ep")
    assert endpoint["systemData"]["createdBy"] == "lin@example.com"


def test_an_issuer_trusted_by_its_openid_configuration_url(keys: Keys, tmp_path: Path) -> None:
    """Another server trusts this one's issuer through its discovery URL, fetched when a token first needs it."""
    discovery = f"{keys.server.base_url}/.well-known/openid-configuration"
    other = Server(
        home=tmp_path / "home",
        args=[
            "--trusted-issuer",
            f"{keys.embedded.url}={discovery}",
            "--owner",
            keys.embedded.object_id("remote@example.com"),
        ],
    ).start()
    try:
        with other.client(token=keys.embedded.mint(audience=other.base_url, user="remote@example.com")) as client:
            assert client.get(WORKSPACE_ID, params=V).status_code == 200
        with other.client(token=keys.stranger.mint(audience=other.base_url)) as client:
            assert client.get(WORKSPACE_ID, params=V).status_code == 401
    finally:
        other.stop()


def test_a_bad_trusted_issuer_option_is_refused(tmp_path: Path) -> None:
    command = [*batchpoint_command(), "serve", "--home", str(tmp_path), "--trusted-issuer", "no-equals-sign"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "ISSUER=JWKS_FILE_OR_URL" in result.stderr
