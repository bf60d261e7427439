"""A local certificate authority and a server certificate for 127.0.0.1 and localhost, made once.

Clients trust the CA file (``REQUESTS_CA_BUNDLE``); the server certificate is signed by it, which satisfies
strict X.509 checks that refuse a self-signed leaf used as its own anchor.

``REQUESTS_CA_BUNDLE`` and ``SSL_CERT_FILE`` replace the roots a client trusts, so what ``batchpoint env`` exports
(and what job workers get) is a bundle: the server's CA and the roots in force (docs/azure-sdk.md), so that the
user's other HTTPS calls keep working.
"""

from __future__ import annotations

import ipaddress
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from batchpoint.store.entities import utcnow

VALIDITY = timedelta(days=3650)


@dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path
    cert: Path
    key: Path
    bundle: Path
    """The CA and the roots in force (``write_bundle``)."""


def tls_files(home: Path) -> TlsFiles:
    folder = home / "tls"
    return TlsFiles(
        ca_cert=folder / "ca.pem",
        cert=folder / "server.pem",
        key=folder / "server-key.pem",
        bundle=folder / "bundle.pem",
    )


ROOTS_VARIABLES = ("BATCHPOINT_CA_ROOTS", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")
"""Where the roots in force are, first set first: batchpoint's own override, then what requests and OpenSSL read."""
PEM_END = "-----END CERTIFICATE-----"


def roots_in_force(environ: Mapping[str, str]) -> Path:
    """The certificate file the environment's HTTPS clients trust: the first of ``ROOTS_VARIABLES`` naming a file,
    else certifi's public roots (what requests uses when none is set)."""
    for name in ROOTS_VARIABLES:
        if environ.get(name) and Path(environ[name]).is_file():
            return Path(environ[name])
    import certifi  # only the bundle needs it

    return Path(certifi.where())


def write_bundle(files: TlsFiles, roots: Path) -> Path:
    """Write the server's CA and every certificate of ``roots`` (each once, so that a bundle made from an earlier
    bundle does not grow) to ``files.bundle``, atomically and readable by all (it holds no secret)."""
    certificates = [files.ca_cert.read_text(), *_certificates(roots.read_text(errors="replace"))]
    unique = list(dict.fromkeys(certificate.strip() + "\n" for certificate in certificates))
    descriptor, temporary = tempfile.mkstemp(dir=files.bundle.parent, prefix=".bundle-")
    with os.fdopen(descriptor, "w") as file:
        file.write("".join(unique))
    os.chmod(temporary, 0o644)
    os.replace(temporary, files.bundle)
    return files.bundle


def _certificates(pem: str) -> list[str]:
    """The PEM certificates of a file, without what stands between them (comments, labels)."""
    blocks = []
    for chunk in pem.split(PEM_END)[:-1]:
        start = chunk.find("-----BEGIN CERTIFICATE-----")
        if start >= 0:
            blocks.append(chunk[start:] + PEM_END)
    return blocks


def ensure_certificates(home: Path) -> TlsFiles:
    files = tls_files(home)
    if files.ca_cert.exists() and files.cert.exists() and files.key.exists():
        return files
    files.cert.parent.mkdir(mode=0o711, parents=True, exist_ok=True)  # the key 0600; the CA bundle for workers
    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "batchpoint local CA")])
    ca_cert = _certificate(ca_name, ca_name, ca_key.public_key(), ca_key, is_ca=True)
    server_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    server_cert = _certificate(server_name, ca_name, server_key.public_key(), ca_key, is_ca=False)
    files.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    files.key.touch(mode=0o600)
    files.key.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return files


def _certificate(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    signing_key: ec.EllipticCurvePrivateKey,
    is_ca: bool,
) -> x509.Certificate:
    now = utcnow()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()), critical=False)
    )
    if is_ca:
        usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
        builder = builder.add_extension(usage, critical=True)
    else:
        usage = x509.KeyUsage(True, False, False, False, False, False, False, False, False)
        names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        builder = (
            builder.add_extension(usage, critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
        )
    return builder.sign(signing_key, hashes.SHA256())
