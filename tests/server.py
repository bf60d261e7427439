"""Start the real ``batchpoint serve`` on a free port (forked from a warm process, or cold), and talk to it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, ClassVar, Protocol

import httpx
import psycopg

from batchpoint.access.issuer import ensure_issuer
from batchpoint.app.server import LISTENING
from tests.ports import free_port
from tests.warm import Warm

POSTGRES_ADMIN_URL = os.environ.get("BATCHPOINT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
WORKSPACE_ID = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/local/providers/Microsoft.MachineLearningServices/workspaces/default"
)
API = "2025-12-01"
TEST_USER = "tester@example.com"
TOKEN_MINUTES = 24 * 60


class Token(Enum):
    OWN = "own"
    """A valid token of the server's embedded issuer (``Server.token()``)."""


class Process(Protocol):
    """A ``subprocess.Popen`` or a ``tests.warm.Forked``."""

    pid: int

    def poll(self) -> int | None: ...
    def wait(self, timeout: float | None = None) -> int: ...
    def send_signal(self, sig: int) -> None: ...
    def kill(self) -> None: ...


def wait_for_port(process: Process, port: int, name: str, log: str, timeout: float = 60.0) -> None:
    """Returns once ``port`` on 127.0.0.1 accepts connections; fails if ``process`` exits first or takes too long."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited early; see {log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{name} did not listen on port {port} in time; see {log}")


def stop_process(process: Process, sig: int = signal.SIGINT, timeout: float = 15) -> int:
    """Sends ``sig`` and returns the exit code; kills the process if it has not exited after ``timeout`` s."""
    process.send_signal(sig)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def postgres_available() -> bool:
    try:
        with psycopg.connect(POSTGRES_ADMIN_URL, connect_timeout=2):
            return True
    except psycopg.Error:
        return False


_CREATED: list[str] = []
"""The databases this process created and has not dropped yet."""


def create_postgres_database(name: str | None = None, options: str = "") -> str:
    """A fresh, empty database for one server, so test runs never see each other's rows.

    Its commits do not wait for the WAL to reach the disk (``synchronous_commit = off``; 10 ms a commit on this
    machine, 0.3 ms without the wait): what is committed is seen by every session at once as before, and only a
    crash of PostgreSQL itself, which no test causes, could lose the last ones. The tests kill and cut off
    batchpoint's processes and connections, never PostgreSQL."""
    name = name or f"batchpoint_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}" {options}'.rstrip())
        _CREATED.append(name)  # dropped when the test session ends (tests/databases.py)
        connection.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"


def drop_created_databases() -> None:
    """Drop every database this process created; `WITH (FORCE)` ends sessions a killed server left open."""
    if not _CREATED:
        return
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as connection:
        for name in _CREATED:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _CREATED.clear()


WORKER_USER = str(os.geteuid())
"""The tests' servers run their workers as the tests' own user (a root server's default is nobody, who can reach
neither pytest's temporary folders, 0700, nor interpreters under a home folder); tests/runtime/test_sandbox.py runs
workers as nobody."""
COLD_BATCHPOINT = [sys.executable, "-m", "batchpoint"]
"""A ``batchpoint`` command that imports everything itself."""


def batchpoint_command() -> list[str]:
    """The argv prefix of a ``batchpoint`` command that needs no azure-ai-ml (``token``, ``role``, ``jobs``, ``serve``
    refusing an option): forked from the servers' warm process when there is one, else ``python -m batchpoint``."""
    return Server.warm.command() if Server.warm is not None else COLD_BATCHPOINT


@dataclass
class Server:
    home: Path
    database_url: str | None = None
    tls: bool = False
    env: dict[str, str] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)
    """More ``batchpoint serve`` options, e.g. ``--allow-local-path``."""
    port: int = field(default_factory=free_port)
    cold: bool = False
    """Start as ``python -m batchpoint serve``, imports and all, rather than forked from ``Server.warm``."""
    process: Process | None = None
    warm: ClassVar[Warm | None] = None
    """The warm process servers are forked from (set for the session by tests/conftest.py; None: all start cold)."""

    @property
    def base_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def ca_cert(self) -> Path:
        return self.home / "tls" / "ca.pem"

    def start(self) -> Server:
        args = ["serve", "--port", str(self.port), "--home", str(self.home)]
        args += ["--owner", TEST_USER]  # Server.token()'s user may do anything, as before role assignments
        if "--worker-user" not in self.args:
            args += ["--worker-user", WORKER_USER]
        if not self.tls:
            args.append("--http")
        if self.database_url:
            args += ["--database-url", self.database_url]
        args += self.args
        self.home.mkdir(parents=True, exist_ok=True)
        self.log = open(self.home / f"server-{self.port}.log", "ab")  # closed in stop()
        self._log_start = self.log.tell()  # the log is appended to: an earlier start's banner is before this
        env = {**os.environ, **self.env}
        if self.cold or Server.warm is None:
            command = [*COLD_BATCHPOINT, *args]
            self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        else:
            with open(os.devnull, "rb") as stdin:
                self.process = Server.warm.fork(
                    args, env, os.getcwd(), (stdin.fileno(), self.log.fileno(), self.log.fileno())
                )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        assert self.process is not None
        wait_for_port(self.process, self.port, "server", self.log.name)
        self._wait_for_banner()

    def _wait_for_banner(self, timeout: float = 10.0) -> None:
        """The port accepts connections a moment before the banner is printed: a test that reads the banner waits
        for it."""
        log = Path(self.log.name)
        deadline = time.monotonic() + timeout
        while LISTENING.encode() not in log.read_bytes()[self._log_start :]:
            assert time.monotonic() < deadline, f"no banner after the port opened; see {log}"
            time.sleep(0.01)

    def stop(self, sig: int = signal.SIGINT) -> int:
        assert self.process is not None
        code = stop_process(self.process, sig)
        self.log.close()
        return code

    def token(self, **options: Any) -> str:
        """A token of the server's embedded issuer, as ``batchpoint token --home`` prints, for its own URL.

        ``options`` are ``Issuer.mint``'s (``user``, ``roles``, ...)."""
        defaults: dict[str, Any] = {"audience": self.base_url, "user": TEST_USER, "minutes": TOKEN_MINUTES}
        return ensure_issuer(self.home).mint(**defaults | options)

    def cli_token(self) -> str:
        """A token exactly as a user gets one: printed by ``batchpoint token --home``."""
        command = [*batchpoint_command(), "token", "--home", str(self.home), "--user", TEST_USER]
        return subprocess.run(command, capture_output=True, text=True, check=True, timeout=60).stdout.strip()

    def cli_options(self) -> list[str]:
        """The options that point a ``batchpoint`` command at this server and trust its certificate."""
        return ["--url", self.base_url, "--home", str(self.home)]

    def client(self, token: str | Token | None = Token.OWN) -> httpx.Client:
        """An HTTP client with ``token`` (``None``: no Authorization header)."""
        token = self.token() if token is Token.OWN else token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        verify = str(self.ca_cert) if self.tls else False
        return httpx.Client(base_url=self.base_url, headers=headers, verify=verify, timeout=30)


@contextlib.contextmanager
def running(home: Path, *args: str) -> Iterator[Server]:
    """A server on SQLite over HTTP with extra `serve` arguments, stopped at the end of the block."""
    server = Server(home=home, args=list(args)).start()
    try:
        yield server
    finally:
        server.stop()
