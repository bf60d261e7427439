"""What a sandboxed process may reach (docs/security.md): the server-wide settings (`WorkerSandbox`, from `serve`'s
flags), the policy of each process (paths one by one: never the data directory, /tmp or a home folder as a whole)
and its environment (built from nothing: no server secret, no `BATCHPOINT_*`).

Runs in the server; the policy it makes is plain JSON for `confine.enter` in the sandboxed process.
"""

from __future__ import annotations

import os
import pwd
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from batchpoint.runtime.environments.spec import built_on
from batchpoint.runtime.sandbox import landlock

TEST_ABI_VARIABLE = "BATCHPOINT_TEST_LANDLOCK_ABI"
"""Test-only: the server acts as if the kernel's Landlock ABI were at most this (0: no Landlock), to test the
refusal rule and the banner on a kernel that has it."""
FULL_ABI = 6
"""The ABI whose scopes stop signals to processes outside the sandbox: a worker of the server's own uid needs it."""

SYSTEM_READ_EXEC = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32")
SYSTEM_READ = (
    # What Python, its native libraries and TLS read of /etc: files one by one, never /etc (a worker keeping uid 0
    # would read /etc/shadow, /etc/ssl/private and the ssh host keys).
    "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime", "/etc/timezone", "/etc/passwd",
    "/etc/group", "/etc/nsswitch.conf", "/etc/hosts", "/etc/host.conf", "/etc/resolv.conf", "/etc/gai.conf",
    "/etc/services", "/etc/protocols", "/etc/mime.types", "/etc/os-release", "/etc/ssl/certs", "/etc/ssl/openssl.cnf",
    "/etc/ca-certificates", "/etc/ca-certificates.conf", "/etc/pki/tls/certs", "/etc/pki/ca-trust",
    "/etc/crypto-policies", "/etc/alternatives", "/etc/locale.alias", "/etc/xdg", "/etc/fonts", "/etc/debian_version",
    "/etc/lsb-release", "/etc/redhat-release", "/etc/system-release",
    # What numpy, OpenBLAS, pyarrow and glibc read of the kernel's state (never /proc: other processes' cmdline).
    "/sys/devices/system/cpu", "/sys/devices/system/node", "/sys/kernel/mm/transparent_hugepage", "/sys/fs/cgroup",
    "/proc/sys/vm/overcommit_memory", "/proc/cpuinfo", "/proc/meminfo", "/proc/stat", "/proc/loadavg",
    "/proc/sys/kernel/osrelease", "/proc/sys/kernel/random/boot_id",
)  # fmt: skip
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty")
SHARED_MEMORY = "/dev/shm"
CERTIFICATES = ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
"""The operator's trusted certificates (a TLS-inspecting proxy's CA, say): kept, and readable where they are."""
PASSED_THROUGH = (
    "LANG", "LC_ALL", "LC_CTYPE", "TZ", "OPENBLAS_CORETYPE", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
    "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy",
    "https_proxy", "no_proxy", *CERTIFICATES,
)  # fmt: skip
"""The operator's settings a worker keeps from the server's environment (by name; nothing else of it)."""
BOOT_VARIABLES = ("PATH", "HOME", "TMPDIR", "LANG", "LC_ALL")
"""What a process has before it enters its sandbox (it takes the rest of its environment after): nothing the
dynamic loader or the interpreter acts on (`LD_*`, `PYTHON*`) can run code outside the sandbox."""
STANDARD_PATH = ("/usr/local/bin", "/usr/bin", "/bin")
CLUSTER_TCP_PORTS = (443, 80)
"""What a worker on a Ray node may connect to by default: never the cluster's own ports (its GCS, raylets, object
managers, dashboard, client server), through which a script could run code on any node outside the sandbox."""


@dataclass(frozen=True)
class WorkerUser:
    """The account workers run as when the server runs as root (`serve --worker-user`)."""

    name: str
    uid: int
    gid: int

    @classmethod
    def named(cls, text: str) -> WorkerUser:
        """`NAME`, `UID` or `UID:GID` (a user that does not exist on this machine needs both numbers)."""
        user, _, group = text.partition(":")
        try:
            entry = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
        except KeyError:
            if not (user.isdigit() and group.isdigit()):
                raise ValueError(f"no user '{user}' on this machine; give a user name, or UID:GID") from None
            return cls(user, int(user), int(group))
        return cls(entry.pw_name, entry.pw_uid, int(group) if group.isdigit() else entry.pw_gid)

    @classmethod
    def current(cls) -> WorkerUser:
        uid = os.geteuid()
        try:
            name = pwd.getpwuid(uid).pw_name
        except KeyError:
            name = str(uid)
        return cls(name, uid, os.getegid())

    @property
    def is_current(self) -> bool:
        return self.uid == os.geteuid()


@dataclass(frozen=True)
class WorkerSandbox:
    """Server-wide settings of the sandbox every worker, pipeline step and environment build enters."""

    abi: int = field(default_factory=lambda: kernel_abi())
    """The Landlock ABI used; 0: processes are not sandboxed (they still get a minimal environment)."""
    user: WorkerUser = field(default_factory=WorkerUser.current)
    tcp_ports: tuple[int, ...] | None = None
    """None: outgoing TCP is not restricted; else the only ports workers may connect to (Landlock ABI 4+)."""
    read: tuple[str, ...] = ()
    """What every sandboxed process may read and execute (`serve --worker-read`: CUDA, /opt/...; the server's CA
    bundle, which workers trust to reach its managed identity endpoint)."""
    read_write: tuple[str, ...] = ()
    """Folders every sandboxed process may write. Test-only: a test's scripts leave marks outside their job."""
    hide: tuple[str, ...] = ()
    """Paths covered in every process's own mount namespace (unix sockets of its own uid)."""
    server_links: tuple[str, ...] = ()
    """Folders where every symbolic link was made by the server (the job folders): a job's model folder or input
    there may point elsewhere, and what its links point to is readable by that job too."""
    private_ipc: bool = True
    """Own System V IPC namespace and /dev/shm (needs root, or user namespaces for unprivileged users)."""
    cluster_tcp_ports: tuple[int, ...] = CLUSTER_TCP_PORTS
    """The only TCP ports workers on a Ray node may connect to (the server's own for the managed identity, say)."""

    def for_nodes(self) -> dict[str, Any]:
        """What a Ray node needs to give its workers this sandbox (`on_node` makes it there)."""
        ports = self.cluster_tcp_ports if self.tcp_ports is None else self.tcp_ports
        return {
            "enabled": self.enabled,
            "user": self.user.name,
            "read": list(self.read),
            "read_write": list(self.read_write),
            "server_links": list(self.server_links),
            "tcp_ports": list(ports),
        }

    @classmethod
    def on_node(cls, settings: dict[str, Any], hide: tuple[str, ...]) -> WorkerSandbox:
        """The sandbox of the workers of this Ray node: the server's settings, this node's Landlock; the worker user
        when the node runs as root (else its own); TCP always restricted; `hide` (the node's Ray sockets)."""
        return cls(
            abi=kernel_abi() if settings["enabled"] else 0,
            user=WorkerUser.named(settings["user"]) if os.geteuid() == 0 else WorkerUser.current(),
            tcp_ports=tuple(settings["tcp_ports"]),
            read=tuple(settings["read"]),
            read_write=tuple(settings["read_write"]),
            server_links=tuple(settings["server_links"]),
            hide=hide,
        )

    @property
    def enabled(self) -> bool:
        return self.abi >= 1

    def policy(
        self,
        *,
        python: Path,
        read: Iterable[Path | str] = (),
        read_write: Iterable[Path | str] = (),
        scratch: Path,
        hide: Iterable[str] = (),
        tcp_ports: Iterable[int] = (),
        programs: Iterable[Path] = (),
        install: Iterable[Path | str] = (),
        devices: Iterable[str] = (),
    ) -> dict[str, Any] | None:
        """The policy of one process running `python` (or a command of its environment); None when unsandboxed.
        `tcp_ports` are allowed on top of the server's list, when it has one; `programs` (interpreters) may run
        too; `install` are what an environment build fills (links and programs included); `devices` are opened
        besides the standard ones (a worker's GPU)."""
        if not self.enabled:
            return None
        ports = None if self.tcp_ports is None else sorted({*self.tcp_ports, *tcp_ports})
        executed = [root for program in (python, *programs) for root in interpreter_roots(program)]
        return {
            "abi": self.abi,
            "read_exec": [*SYSTEM_READ_EXEC, *dict.fromkeys(executed), *self.read],
            "read": [*SYSTEM_READ, *_certificates(), str(package_folder()), *_unique(read)],
            "read_write": [*_unique(read_write), *self.read_write],
            "scratch": [str(scratch), SHARED_MEMORY],
            "install": _unique(install),
            "devices": [*DEVICES, *devices],
            "tcp_connect": ports,
            "user": None if self.user.is_current else [self.user.uid, self.user.gid],
            "private_ipc": self.private_ipc,
            "hide": [*self.hide, *hide],
        }

    def links_of(self, folders: Iterable[Path]) -> list[str]:
        """Where the symbolic links the server made in `folders` lead (Landlock checks the path a link resolves
        to). Only folders inside `server_links` count: a link a user placed (in an uploaded archive, an allowed
        local folder) must never widen a policy to what it points at."""
        targets: list[str] = []
        roots = [os.path.realpath(root) + os.sep for root in self.server_links]
        for folder in folders:
            if not any(os.path.realpath(folder).startswith(root) for root in roots):
                continue
            for parent, subfolders, files in os.walk(folder):
                for name in subfolders + files:
                    path = os.path.join(parent, name)
                    if os.path.islink(path) and os.path.exists(path):
                        targets.append(os.path.realpath(path))
        return targets

    def environment(
        self, *, python: Path, home: Path, variables: Mapping[str, str], defined: Mapping[str, str] = {}
    ) -> dict[str, str]:
        """A sandboxed process's whole environment: the operator's PASSED_THROUGH settings, PATH, HOME and TMPDIR
        in its private folder, the environment's activation; then `variables` (the deployment's); then `defined`
        (the runtime's, which a deployment cannot override)."""
        venv = virtual_environment(python)
        environment = {name: os.environ[name] for name in PASSED_THROUGH if name in os.environ}
        environment.setdefault("LANG", "C.UTF-8")
        environment.update(
            PATH=os.pathsep.join([*([str(venv / "bin")] if venv else []), *STANDARD_PATH]),
            HOME=str(home / "home"),
            TMPDIR=str(home / "tmp"),
            USER=self.user.name,
            LOGNAME=self.user.name,
        )
        if venv is not None:
            environment["VIRTUAL_ENV"] = str(venv)
        environment.update(variables)
        environment.update(defined)
        return environment

    def prepare_home(self, home: Path) -> None:
        """A process's private folder: `cwd/`, `home/` (HOME) and `tmp/` (TMPDIR), the worker user's own."""
        for path in (home, home / "cwd", home / "home", home / "tmp"):
            path.mkdir(mode=0o700, exist_ok=True)
            if not self.user.is_current:
                os.chown(path, self.user.uid, self.user.gid)

    def share(self, folder: Path) -> None:
        """A folder the worker user writes into besides the server: its group, group-writable, setgid and sticky
        (the worker cannot rename or remove what the server keeps there: the job's logs and ledger)."""
        if not self.user.is_current:
            os.chown(folder, -1, self.user.gid)
            os.chmod(folder, 0o3775)

    def give(self, folder: Path) -> None:
        """A folder (and what it holds) the worker user owns: a pipeline step's code copy and partial outputs."""
        if not self.user.is_current:
            _chown_tree(folder, self.user.uid, self.user.gid)

    def take_back(self, folder: Path) -> None:
        """A folder the worker user wrote (an environment it built) becomes the server's, so that no process of
        that user outside the sandbox can change it."""
        if not self.user.is_current:
            _chown_tree(folder, os.geteuid(), os.getegid())

    def unsandboxed(self) -> WorkerSandbox:
        return replace(self, abi=0)


def kernel_abi() -> int:
    """The kernel's Landlock ABI (or less, when the test-only TEST_ABI_VARIABLE says so)."""
    abi = landlock.abi_version()
    pretended = os.environ.get(TEST_ABI_VARIABLE)
    return min(abi, int(pretended)) if pretended else abi


def package_folder() -> Path:
    """The batchpoint package the sandboxed processes load (by location: the server's site-packages stay out)."""
    return Path(__file__).resolve().parents[2]


def virtual_environment(python: Path) -> Path | None:
    """The virtual environment `python` belongs to, if any."""
    folder = Path(python).absolute().parent.parent
    return folder if (folder / "pyvenv.cfg").is_file() else None


def base_interpreter(python: Path) -> Path:
    """The interpreter a process of `python`'s environment is started with. Never a file inside a virtual
    environment, whose packages may have replaced it (or `pyvenv.cfg`): batchpoint's record of the environment
    says what it was built on; the server's own environment is the server's; any other is taken as given."""
    venv = virtual_environment(python)
    if venv is None:
        return Path(python).absolute()
    recorded = built_on(venv)
    if recorded is not None:
        return base_interpreter(recorded)  # it may be the server's own environment's
    if venv == Path(sys.prefix):
        return Path(getattr(sys, "_base_executable", sys.executable))
    return Path(os.path.realpath(python))


def interpreter_roots(python: Path) -> list[str]:
    """What a process of `python` executes: its environment, and the installation its base interpreter is part of
    (two levels above the real file: `<prefix>/bin/pythonX.Y`), unless that is the system's."""
    roots = []
    venv = virtual_environment(python)
    if venv is not None:
        roots.append(str(venv))
    prefix = Path(os.path.realpath(base_interpreter(python))).parent.parent
    if not any(str(prefix) == root or str(prefix).startswith(root + "/") for root in ("/usr", *SYSTEM_READ_EXEC)):
        roots.append(str(prefix))
    return roots


def _certificates() -> list[str]:
    return [os.environ[name] for name in CERTIFICATES if os.environ.get(name)]


def _chown_tree(folder: Path, uid: int, gid: int) -> None:
    for parent, subfolders, files in os.walk(folder):
        for name in [parent, *(os.path.join(parent, entry) for entry in subfolders + files)]:
            os.lchown(name, uid, gid)


def _unique(paths: Iterable[Path | str]) -> list[str]:
    return list(dict.fromkeys(str(Path(path).absolute()) for path in paths))
