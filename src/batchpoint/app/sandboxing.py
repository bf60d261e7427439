"""The sandbox this server's scoring code runs in (docs/security.md): what `serve`'s flags and the kernel give, the
banner's line about it, and the rule when it is not enough: only the owners may be served.

Scoring code is contained when it can read nothing of the server and cannot signal it: Landlock (any ABI) keeps
files out of reach; signals need Landlock ABI 6 (its signal scope) or a worker user other than the server's.
Without that, the server does not start while a role assignment names a principal other than its owners (or a token
issuer besides its own is trusted), and it refuses to make such an assignment; `--unsandboxed-workers` waives the
rule (and the sandbox).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from batchpoint.access.issuer import ensure_issuer
from batchpoint.app.tls import tls_files
from batchpoint.config import Settings
from batchpoint.runtime.sandbox.policy import (
    CLUSTER_TCP_PORTS,
    FULL_ABI,
    WorkerSandbox,
    WorkerUser,
    interpreter_roots,
    kernel_abi,
)
from batchpoint.runtime.sandbox.policy import package_folder as runtime_package
from batchpoint.store import open_store

ROOT_WORKER_USER = "nobody"
TEST_READ_WRITE_VARIABLE = "BATCHPOINT_TEST_WORKER_READ_WRITE"
"""Test-only: folders (separated by os.pathsep) every sandboxed process may also write, for tests whose scripts
leave marks outside their job."""
EXPOSED = "scoring code can read the signing key and the database"
ONLY = "only the owners may be given roles (--unsandboxed-workers serves others anyway; docs/security.md)"
REACHABLE = 'for path; do [ -x "$path" ] || printf "%s\\n" "$path"; done'
"""A shell loop printing the paths its user cannot cross (run as the worker user)."""


@dataclass(frozen=True)
class Sandboxing:
    sandbox: WorkerSandbox
    contained: bool
    """Scoring code reaches nothing of the server and cannot signal it (or the operator said to serve everyone)."""
    description: str
    """The banner's line."""


def sandboxing(settings: Settings) -> Sandboxing:
    user = worker_user(settings)
    abi = 0 if settings.unsandboxed_workers else kernel_abi()
    ports = settings.worker_tcp_ports
    sandbox = WorkerSandbox(
        abi=abi,
        user=user,
        tcp_ports=None if ports is None else (*ports, settings.port),  # the managed identity endpoint
        read=(*map(str, settings.worker_read), *([str(tls_files(settings.home).bundle)] if settings.tls else [])),
        read_write=tuple(filter(None, os.environ.get(TEST_READ_WRITE_VARIABLE, "").split(os.pathsep))),
        server_links=(str(settings.jobs_dir),),
        cluster_tcp_ports=(*(ports or CLUSTER_TCP_PORTS), settings.port),
    )
    if settings.unsandboxed_workers:
        return Sandboxing(sandbox, True, "WORKERS ARE NOT SANDBOXED (--unsandboxed-workers): " + EXPOSED)
    if abi < 1:
        return Sandboxing(sandbox, False, f"WORKERS ARE NOT SANDBOXED: this kernel has no Landlock; {EXPOSED}; {ONLY}")
    described = f"workers are sandboxed (Landlock ABI {abi}, as {user.name}{_missing(sandbox)})"
    if abi < FULL_ABI and user.is_current:
        return Sandboxing(sandbox, False, f"{described}, but could signal the server (Landlock ABI 6 stops it); {ONLY}")
    return Sandboxing(sandbox, True, described)


def worker_user(settings: Settings) -> WorkerUser:
    if settings.worker_user:
        return WorkerUser.named(settings.worker_user)
    return WorkerUser.named(ROOT_WORKER_USER) if os.geteuid() == 0 else WorkerUser.current()


def _missing(sandbox: WorkerSandbox) -> str:
    notes = []
    if sandbox.user.is_current:
        notes.append("unix sockets of its user stay reachable" + (" (use --worker-user)" if os.geteuid() == 0 else ""))
    if sandbox.tcp_ports is not None and sandbox.abi < 4:
        notes.append("TCP not restricted: Landlock ABI 4 does that")
    if sandbox.abi < FULL_ABI:
        notes.append("abstract unix sockets not scoped: Landlock ABI 6 does that")
    return "".join("; " + note for note in notes)


def owners(settings: Settings) -> frozenset[str]:
    """The principals the server serves whatever its sandbox: the local user and `serve --owner`'s."""
    issuer = ensure_issuer(settings.home)
    return frozenset(
        principal.lower() for principal in (issuer.object_id(), *map(issuer.principal_id, settings.owners))
    )


def refusal(sandboxing: Sandboxing, settings: Settings) -> str | None:
    """Why the server must not start (None: it may): scoring code is not contained, and principals other than the
    owners hold roles (or tokens of other issuers are trusted)."""
    if sandboxing.contained:
        return None
    if settings.trusted_issuers:
        return f"{sandboxing.description}: refusing to trust other token issuers (--trusted-issuer)."
    store = open_store(settings.resolved_database_url)
    try:
        principals = {grant.principal_id.lower() for grant in store.role_assignments()}
    finally:
        store.close()
    others = sorted(principals - owners(settings))
    if others:
        return (
            f"{sandboxing.description}: refusing to start while principals other than the owners hold roles "
            f"({', '.join(others[:5])}{', ...' if len(others) > 5 else ''}); remove their role assignments, or "
            "start with --unsandboxed-workers."
        )
    return None


def unreachable(settings: Settings, sandbox: WorkerSandbox) -> str | None:
    """Why the worker user cannot work here (None: it can): a folder it reads (the storage, the job folders, the
    environments, the server's interpreter and batchpoint) that it cannot cross."""
    if sandbox.user.is_current or not sandbox.enabled:
        return None
    folders = [settings.storage_dir, settings.jobs_dir, settings.environments_dir]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    paths = [*map(str, folders), str(runtime_package()), *interpreter_roots(Path(sys.executable))]
    user = sandbox.user
    checked = subprocess.run(
        ["/bin/sh", "-c", REACHABLE, "reachable", *paths],
        user=user.uid,
        group=user.gid,
        extra_groups=[],
        capture_output=True,
        text=True,
        check=False,
    )
    blocked = checked.stdout.splitlines() or ([] if checked.returncode == 0 else [checked.stderr.strip()])
    if not blocked:
        return None
    return (
        f"The worker user {user.name} cannot reach {', '.join(blocked)}: let it cross each folder above "
        "(chmod o+x), keep the data there elsewhere (--home, --storage-root), or run workers as another user "
        "(--worker-user; docs/security.md)."
    )
