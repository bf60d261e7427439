"""``batchpoint serve``: start the server."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from batchpoint.config import DEFAULT_LEASE_SECONDS, DEFAULT_MAX_BODY_BYTES, Settings, default_home
from batchpoint.runtime.environments.installers import InstallerName
from batchpoint.runtime.gpus import parse_gpus
from batchpoint.runtime.sandbox.policy import WorkerUser


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8443,
    http: Annotated[bool, typer.Option("--http", help="Plain HTTP instead of HTTPS.")] = False,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="sqlite:///path or postgresql+psycopg://user@host/db (default: SQLite in the data directory)."
        ),
    ] = None,
    home: Annotated[
        Path | None, typer.Option(help="Data directory (default $BATCHPOINT_HOME or ~/.batchpoint).")
    ] = None,
    allow_local_path: Annotated[
        list[Path] | None,
        typer.Option(
            help="A folder that jobs and assets may use by local path (repeatable).", exists=True, file_okay=False
        ),
    ] = None,
    trusted_issuer: Annotated[
        list[str] | None,
        typer.Option(
            metavar="ISSUER=JWKS_FILE_OR_URL",
            help="Also accept the tokens of ISSUER (their 'iss'), checked with the keys of a JWKS file, "
            "a JWKS URL or an OpenID configuration URL (repeatable).",
        ),
    ] = None,
    max_body_bytes: Annotated[
        int, typer.Option(min=1, help="Largest request body outside the blob API; a larger one gets 413.")
    ] = DEFAULT_MAX_BODY_BYTES,
    owner: Annotated[
        list[str] | None,
        typer.Option(
            help="Make this user (a name as 'batchpoint token --user' takes, or an object id) Owner over "
            "every scope, at each start (repeatable)."
        ),
    ] = None,
    package_index: Annotated[
        str | None,
        typer.Option(
            envvar="BATCHPOINT_PACKAGE_INDEX",
            help="Package index deployment environments are built from "
            "(e.g. an offline mirror); default: the installer's own configuration.",
        ),
    ] = None,
    installer: Annotated[
        InstallerName | None,
        typer.Option(
            envvar="BATCHPOINT_INSTALLER",
            help="What builds deployment environments; default: uv when it is installed, else pip.",
        ),
    ] = None,
    python: Annotated[
        list[Path] | None,
        typer.Option(
            help="An interpreter environments may be built with when they ask for its Python version, "
            "besides uv's, pyenv's and pythonX.Y on PATH (repeatable).",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    nearest_python: Annotated[
        bool,
        typer.Option(
            "--nearest-python",
            envvar="BATCHPOINT_NEAREST_PYTHON",
            help="Build an environment whose Python is not on this machine on the nearest one, moving the "
            "pins that do not install there (listed in the deployment's status), instead of failing it.",
        ),
    ] = False,
    ray_address: Annotated[
        str | None,
        typer.Option(
            envvar="BATCHPOINT_RAY_ADDRESS",
            help="HOST:PORT of a Ray cluster: the jobs of every compute "
            "you create run there (needs batchpoint[ray]); the built-in compute keeps the local workers.",
        ),
    ] = None,
    ray_shared_path: Annotated[
        list[Path] | None,
        typer.Option(
            help="A folder every node of the Ray cluster mounts at the same path: the nodes read the inputs, "
            "code and models under it there rather than through the server (repeatable).",
            file_okay=False,
        ),
    ] = None,
    storage_root: Annotated[
        Path | None,
        typer.Option(
            envvar="BATCHPOINT_STORAGE_ROOT",
            file_okay=False,
            help="Folder for workspace storage and job folders; replicas share one (default: the data directory).",
        ),
    ] = None,
    lease_seconds: Annotated[
        float,
        typer.Option(
            envvar="BATCHPOINT_LEASE_SECONDS",
            min=1.0,
            help="How long the jobs and operations of a server that died stay with it "
            "before another replica takes them over.",
        ),
    ] = DEFAULT_LEASE_SECONDS,
    strict_api_versions: Annotated[
        bool,
        typer.Option(
            "--strict-api-versions",
            help="Refuse api-versions newer than the newest known (Azure's NoRegisteredProviderFound) "
            "instead of serving them as the newest known.",
        ),
    ] = False,
    worker_user: Annotated[
        str | None,
        typer.Option(
            metavar="NAME|UID[:GID]",
            help="The account scoring code, pipeline steps and environment builds run as "
            "(default: nobody when the server runs as root, else the server's own).",
        ),
    ] = None,
    worker_tcp_port: Annotated[
        list[int] | None,
        typer.Option(
            min=1, max=65535, help="Sandboxed processes may connect to this TCP port only, on any host (repeatable)."
        ),
    ] = None,
    worker_read: Annotated[
        list[Path] | None,
        typer.Option(
            help="A folder every sandboxed process may read and execute, e.g. a CUDA toolkit (repeatable).",
            exists=True,
            file_okay=False,
        ),
    ] = None,
    gpus: Annotated[
        str | None,
        typer.Option(
            metavar="0,1,...",
            help="The GPUs local workers use, one each (CUDA_VISIBLE_DEVICES indices; an empty string: none). "
            "Default: those nvidia-smi -L lists, else the server's CUDA_VISIBLE_DEVICES.",
        ),
    ] = None,
    unsandboxed_workers: Annotated[
        bool,
        typer.Option(
            "--unsandboxed-workers",
            help="Do not sandbox scoring code, and serve principals besides the owners anyway: scoring code can "
            "then read the server's signing key and database (docs/security.md).",
        ),
    ] = False,
) -> None:
    """Start the server (HTTPS on 127.0.0.1:8443 by default)."""
    from batchpoint.app.server import serve as run_server

    settings = Settings(
        home=home or default_home(),
        database_url=database_url,
        host=host,
        port=port,
        tls=not http,
        allowed_local_paths=list(allow_local_path or []),
        trusted_issuers=dict(_issuer_and_keys(value) for value in trusted_issuer or []),
        owners=list(owner or []),
        max_body_bytes=max_body_bytes,
        package_index=package_index,
        installer=installer,
        pythons=list(python or []),
        nearest_python=nearest_python,
        ray_address=ray_address,
        ray_shared_paths=list(ray_shared_path or []),
        storage_root=storage_root,
        lease_seconds=lease_seconds,
        strict_api_versions=strict_api_versions,
        worker_user=_checked_user(worker_user),
        worker_tcp_ports=worker_tcp_port or None,
        worker_read=[path.absolute() for path in worker_read or []],
        unsandboxed_workers=unsandboxed_workers,
        gpus=None if gpus is None else list(parse_gpus(gpus)),
    )
    run_server(settings)


def _checked_user(name: str | None) -> str | None:
    """`name`, once it is known to name a user (or give both numbers)."""
    if name is not None:
        try:
            WorkerUser.named(name)
        except ValueError as error:
            raise typer.BadParameter(str(error), param_hint="--worker-user") from None
    return name


def _issuer_and_keys(value: str) -> tuple[str, str]:
    issuer, separator, keys = value.partition("=")
    if not separator or not issuer or not keys:
        raise typer.BadParameter(f"'{value}' is not ISSUER=JWKS_FILE_OR_URL", param_hint="--trusted-issuer")
    return issuer, keys
