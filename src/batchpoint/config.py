"""Server settings: where data lives, which database, how to listen."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
DEFAULT_RESOURCE_GROUP = "local"
DEFAULT_WORKSPACE = "default"
DEFAULT_LOCATION = "local"
DEFAULT_URL = "https://127.0.0.1:8443"
"""Where the server listens by default, and where its commands look for it without ``--url``/``$BATCHPOINT_URL``."""
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
DEFAULT_LEASE_SECONDS = 30.0


def default_home() -> Path:
    return Path(os.environ.get("BATCHPOINT_HOME", Path.home() / ".batchpoint")).expanduser()


@dataclass
class Settings:
    home: Path = field(default_factory=default_home)
    database_url: str | None = None
    allowed_local_paths: list[Path] = field(default_factory=list)
    """Folders whose files jobs and assets may read and write by plain local path."""
    trusted_issuers: dict[str, str] = field(default_factory=dict)
    """Token issuers trusted besides the embedded one: ``iss`` to a JWKS file, or a JWKS or OpenID configuration URL."""
    owners: list[str] = field(default_factory=list)
    """Users (names as ``batchpoint token --user`` takes, or object ids) made Owner over the root scope at start."""
    host: str = "127.0.0.1"
    port: int = 8443
    tls: bool = True
    provisioning_delay_seconds: float = field(
        default_factory=lambda: float(os.environ.get("BATCHPOINT_PROVISIONING_DELAY", "0"))
    )
    """Extra time a provisioning operation stays in progress (lets tests watch polling and conflicts)."""
    package_index: str | None = None
    """The package index environments are built from (uv's ``--default-index``, pip's ``--index-url``); None uses
    the installer's own configuration (``uv.toml``/``UV_INDEX_URL``, ``pip.conf``/``PIP_INDEX_URL``)."""
    installer: str | None = None
    """What builds environments: ``uv`` or ``pip``; None uses uv when it is installed, else pip."""
    pythons: list[Path] = field(default_factory=list)
    """Interpreters environments may be built with, besides those found (uv's, pyenv's, ``pythonX.Y`` on PATH)."""
    nearest_python: bool = False
    """An environment whose Python is not on this machine is built on the nearest one, with the pins that do not
    install there moved (listed in the deployment's operation status), instead of failing."""
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    """The largest request body taken outside the blob API (which streams uploads of any size to disk)."""
    ray_address: str | None = None
    """The Ray cluster (``HOST:PORT`` of its head) the jobs of user-created computes run on; None runs every job on
    the server's local worker processes."""
    ray_shared_paths: list[Path] = field(default_factory=list)
    """Folders every node of the Ray cluster mounts at the same path as the server: inputs, code and models under
    them are read there by the nodes, instead of passing through the server (docs/scale-out.md)."""
    storage_root: Path | None = None
    """Where workspace storage and job folders live (``storage/``, ``jobs/``); replicas share one. None: the data
    directory."""
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    """How long a job or operation stays owned by a process that stopped renewing it (it died) before another
    process takes it over (docs/deployment.md)."""
    strict_api_versions: bool = False
    """Refuse api-versions of Microsoft.MachineLearningServices newer than the newest known, as Azure refuses
    versions it does not have; by default they are served as the newest known (docs/management-plane.md)."""
    worker_user: str | None = None
    """The account sandboxed processes run as (``NAME``, ``UID`` or ``UID:GID``); None: ``nobody`` when the server
    runs as root, else the server's own (docs/security.md)."""
    worker_tcp_ports: list[int] | None = None
    """The only TCP ports sandboxed processes may connect to; None: any."""
    worker_read: list[Path] = field(default_factory=list)
    """Folders every sandboxed process may read and execute besides the system's (CUDA, /opt/...)."""
    unsandboxed_workers: bool = False
    gpus: list[str] | None = None
    """The GPUs local workers use, one each (`serve --gpus 0,1`); None: those of this machine, found at start
    (docs/runtime.md, "GPUs")."""
    """Run scoring code unsandboxed, and serve every principal anyway (docs/security.md says what that gives up)."""

    def __post_init__(self) -> None:
        self.home = Path(self.home).expanduser()
        if self.storage_root is not None:
            self.storage_root = Path(self.storage_root).expanduser().absolute()

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'batchpoint.db'}"

    @property
    def storage_dir(self) -> Path:
        """Workspace storage accounts (the blob API's files and local datastores)."""
        return (self.storage_root or self.home) / "storage"

    @property
    def jobs_dir(self) -> Path:
        """Job folders: fetched remote inputs, model links, pipeline steps' work."""
        return (self.storage_root or self.home) / "jobs"

    @property
    def environments_dir(self) -> Path:
        return self.home / "environments"

    def make_home(self) -> None:
        """The data directory: others may cross it (to the storage a worker user reads) but not list it."""
        self.home.mkdir(mode=0o711, parents=True, exist_ok=True)
        info = self.home.stat()
        if info.st_uid == os.geteuid() and info.st_mode & 0o066:
            os.chmod(self.home, stat.S_IMODE(info.st_mode) & ~0o066)

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def local_url(self) -> str:
        """The URL processes on this machine reach the server at: a wildcard address is not one."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"{self.scheme}://{host}:{self.port}"
