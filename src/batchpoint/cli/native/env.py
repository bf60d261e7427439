"""``batchpoint env``: the environment after which unmodified Azure ML code talks to this server.

``eval "$(batchpoint env)"`` exports (docs/azure-sdk.md says why each is there):

- ``ARM_CLOUD_METADATA_URL``: azure-ai-ml reads the server's cloud metadata document and so sends every call here;
- ``IDENTITY_ENDPOINT`` and ``IDENTITY_HEADER``: ``DefaultAzureCredential`` gets its tokens from the server's
  managed-identity endpoint (App Service protocol), and ``AZURE_TOKEN_CREDENTIALS`` keeps it to that credential;
- ``REQUESTS_CA_BUNDLE`` and ``SSL_CERT_FILE``: a bundle of the server's CA and the roots in force;
- ``BATCHPOINT_URL`` and ``BATCHPOINT_HOME``: for ``base_url=`` of the management client and batchpoint's commands;

and unsets ``AZUREML_CURRENT_CLOUD`` (a stale value beats the metadata URL) and ``IDENTITY_SERVER_THUMBPRINT``
(which would make azure-identity speak Service Fabric's protocol instead).
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from batchpoint.access.issuer import ensure_issuer
from batchpoint.cli.common import Url
from batchpoint.config import DEFAULT_RESOURCE_GROUP, DEFAULT_SUBSCRIPTION, DEFAULT_URL, DEFAULT_WORKSPACE, default_home

CONFIG_FILE = Path(".azureml") / "config.json"
"""Where ``MLClient.from_config`` looks first, from the current folder up."""
EXPORTED = (
    "ARM_CLOUD_METADATA_URL",
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "AZURE_TOKEN_CREDENTIALS",
    "REQUESTS_CA_BUNDLE",
    "SSL_CERT_FILE",
    "BATCHPOINT_URL",
    "BATCHPOINT_HOME",
)
UNSET = ("AZUREML_CURRENT_CLOUD", "IDENTITY_SERVER_THUMBPRINT")


def env(
    url: Url = None,
    home: Annotated[Path | None, typer.Option(help="The server's data directory (default $BATCHPOINT_HOME).")] = None,
    write_config: Annotated[
        bool,
        typer.Option("--write-config", help=f"Also write ./{CONFIG_FILE} (the default workspace) for from_config."),
    ] = False,
    force: Annotated[bool, typer.Option("--force", help=f"Replace a different ./{CONFIG_FILE}.")] = False,
) -> None:
    """Print the shell exports after which unmodified Azure ML code uses this server: eval "$(batchpoint env)"."""
    # the server's modules, imported here: every other command starts without them
    from batchpoint.access.managed_identity import IDENTITY_PATH, identity_header
    from batchpoint.app.tls import roots_in_force, tls_files, write_bundle
    from batchpoint.arm.cloud import metadata_url

    server = (url or os.environ.get("BATCHPOINT_URL") or DEFAULT_URL).rstrip("/")
    if not server.startswith("https://"):
        _fail(
            f"{server} is not an https:// URL: azure-core sends tokens over HTTPS only "
            "(start the server without --http)."
        )
    data = (home or default_home()).expanduser().absolute()
    files = tls_files(data)
    if not files.ca_cert.is_file():
        _fail(f"{files.ca_cert} does not exist: start the server once (batchpoint serve --home {data}) or pass --home.")
    bundle = write_bundle(files, roots_in_force(os.environ))
    values = (
        metadata_url(server),
        server + IDENTITY_PATH,
        identity_header(ensure_issuer(data)),
        "ManagedIdentityCredential",
        str(bundle),
        str(bundle),
        server,
        str(data),
    )
    exports = dict(zip(EXPORTED, values, strict=True))
    for name, value in exports.items():
        print(f"export {name}={shlex.quote(value)}")
    print(f"unset {' '.join(UNSET)}")
    if write_config:
        _write_config(force)


def _write_config(force: bool) -> None:
    """``./.azureml/config.json`` naming the default workspace; a different one stays unless ``--force``."""
    text = json.dumps(
        {
            "subscription_id": DEFAULT_SUBSCRIPTION,
            "resource_group": DEFAULT_RESOURCE_GROUP,
            "workspace_name": DEFAULT_WORKSPACE,
        },
        indent=2,
    )
    if CONFIG_FILE.exists() and CONFIG_FILE.read_text().strip() != text and not force:
        _fail(f"{CONFIG_FILE.absolute()} exists and names another workspace; pass --force to replace it.")
    CONFIG_FILE.parent.mkdir(exist_ok=True)
    CONFIG_FILE.write_text(text + "\n")
    print(f"# wrote {CONFIG_FILE.absolute()}", file=sys.stderr)


def _fail(message: str) -> None:
    print(f"batchpoint env: {message}", file=sys.stderr)
    raise typer.Exit(2)
