"""Virtual environments built from specs, once per spec hash, shared by every deployment that asks for it.

Layout under the cache root:
    <key>/                  the virtual environment; complete only when <key>/batchpoint-environment.json exists
    logs/<key>.log          the build log (kept after a failure)
    locks/<key>.lock        held while a build of <key> runs, by any process on this machine
    cache/                  the installers' caches, when builds run as a worker user of their own

Installing a package runs its code (a build backend, `setup.py`): each installer step runs in the sandbox
(docs/security.md), which reads the system, the interpreter, the server's installer and the installer's
configuration, and writes the environment's folder and the installer's cache.

A build runs in its final folder (virtual environments are not relocatable) and is removed when it fails; an
unfinished folder left by a crash is removed by the next build of its key or by `sweep()`. The installer (uv, else
pip: `installers.py`) is not part of the key: both install the same requirements on the same interpreter.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from batchpoint.runtime import counters
from batchpoint.runtime.environments.installers import (
    COMPILE_STEP,
    Installer,
    InstallerUnavailable,
    choose_installer,
    compile_command,
    local_sources,
)
from batchpoint.runtime.environments.relax import named_in, pinned_name, unpinned
from batchpoint.runtime.environments.spec import READY_FILE, EnvironmentSpec
from batchpoint.runtime.sandbox.policy import WorkerSandbox
from batchpoint.runtime.spawn import command_line, private_temp_root

MOVED_PINS = "movedPins"
REQUIREMENTS_FILE = "batchpoint-requirements.txt"
CACHES = "cache"
OWN_FOLDERS = ("logs", "locks", CACHES)
"""The cache root's folders that are not environments."""
INSTALLER_CONFIGURATION = ("/etc/pip.conf", "/etc/xdg/pip", "/etc/uv")
"""The installers' system-wide configuration files a build reads (the user's are under XDG_CONFIG_HOME)."""
ERROR_LINES = 20
STOP_POLL_SECONDS = 0.2

Progress = Callable[[str], None]


class EnvironmentBuildError(Exception):
    """The installer failed; the message carries its error lines."""


class BuildStopped(Exception):
    """The server began to stop during the build: the build was stopped and its folder removed; it runs again
    later (here or on another replica)."""


@dataclass(frozen=True)
class BuiltEnvironment:
    key: str
    folder: Path
    built: bool
    """True when this call built it, False when it came from the cache."""

    @property
    def python(self) -> Path:
        return self.folder / "bin" / "python"

    @property
    def moved_pins(self) -> list[str]:
        """The pins moved to build it on the nearest Python (`x==1.0 -> 1.2`); empty when none were."""
        moved: list[str] = json.loads((self.folder / READY_FILE).read_text()).get(MOVED_PINS, [])
        return moved


class EnvironmentCache:
    def __init__(
        self,
        root: Path,
        package_index: str | None = None,
        installer: Installer | None = None,
        build_timeout_seconds: float = 1800.0,
        stopping: threading.Event | None = None,
        sandbox: WorkerSandbox | None = None,
    ) -> None:
        """`package_index` replaces the installer's default index (an offline mirror, say); `installer` defaults to
        uv when it is installed, else pip. When `stopping` is set, running builds stop (BuildStopped). Builds run
        in `sandbox` (installing a package runs its code)."""
        self.root = root.absolute()
        self._sandbox = sandbox or WorkerSandbox()
        self.installer = installer or choose_installer()
        self._index = package_index
        self._timeout = build_timeout_seconds
        self._stopping = stopping or threading.Event()

    def log_path(self, spec: EnvironmentSpec) -> Path:
        return self.root / "logs" / f"{spec.key}.log"

    def find(self, spec: EnvironmentSpec) -> BuiltEnvironment | None:
        cached = BuiltEnvironment(spec.key, self.root / spec.key, built=False)
        return cached if (cached.folder / READY_FILE).is_file() else None

    def python_of(self, spec: EnvironmentSpec) -> Path:
        """Where the interpreter of `spec`'s environment is, built or not."""
        return BuiltEnvironment(spec.key, self.root / spec.key, built=False).python

    def ensure(self, spec: EnvironmentSpec, progress: Progress = lambda line: None) -> BuiltEnvironment:
        """The environment of `spec`, built now unless it is cached; raises EnvironmentBuildError."""
        cached = self.find(spec)
        if cached is not None:
            return cached
        with self._lock(spec.key, blocking=True):
            cached = self.find(spec)
            if cached is not None:
                return cached
            folder = self.root / spec.key
            shutil.rmtree(folder, ignore_errors=True)
            try:
                self._build(spec, folder, progress)
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                counters.ENVIRONMENT_BUILDS.labels("failed").inc()
                raise
            counters.ENVIRONMENT_BUILDS.labels("succeeded").inc()
            return BuiltEnvironment(spec.key, folder, built=True)

    def sweep(self) -> list[str]:
        """Remove unfinished builds nobody is running (left by a crash); returns their keys."""
        removed = []
        for folder in self.root.glob("*"):
            if folder.name in OWN_FOLDERS or not folder.is_dir() or (folder / READY_FILE).exists():
                continue
            with self._lock(folder.name, blocking=False) as held:
                if held and not (folder / READY_FILE).exists():
                    shutil.rmtree(folder, ignore_errors=True)
                    removed.append(folder.name)
        return removed

    @contextlib.contextmanager
    def _lock(self, key: str, blocking: bool) -> Iterator[bool]:
        path = self.root / "locks" / f"{key}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _build(self, spec: EnvironmentSpec, folder: Path, progress: Progress) -> None:
        log = self.log_path(spec)
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a", encoding="utf-8") as out:

            def report(line: str) -> None:
                out.write(line + "\n")
                out.flush()
                progress(line)

            report(f"# building environment {spec.key} from {spec.source or 'an environment'}")
            for note in _notes(spec, self.installer):
                report(f"# {note}")
            folder.mkdir(parents=True)
            self._sandbox.give(folder)
            private = Path(tempfile.mkdtemp(prefix=f"build-{spec.key}-", dir=private_temp_root()))
            try:
                sandboxed = self._build_sandbox(spec, folder, private)
                create = self.installer.create_command(spec.built_on, folder)
                self._run(self.installer.create_step, create, report, sandboxed)
                moved = self._install(spec, folder, report, sandboxed) if spec.requirements else []
            finally:
                shutil.rmtree(private, ignore_errors=True)
            self._sandbox.take_back(folder)
            ready = {
                **asdict(spec),
                "key": spec.key,
                "builtAt": time.time(),
                "installer": self.installer.name,
                MOVED_PINS: moved,
            }
            _write(folder / READY_FILE, json.dumps(ready))
            report(f"# environment {spec.key} is ready")

    def _install(
        self, spec: EnvironmentSpec, folder: Path, report: Progress, sandboxed: Callable[[list[str]], _Sandboxed]
    ) -> list[str]:
        """Install the requirements. On the nearest Python (`--nearest-python`), pins the installer names in
        its error lose their version and the install is tried again; returns those moves (`x==1.0 -> 1.2`)."""
        requirements = list(spec.requirements)
        moved: dict[str, str] = {}
        path = folder / REQUIREMENTS_FILE
        while True:
            _write(path, "\n".join(requirements) + "\n")
            report(f"# installing {' '.join(requirements)}")
            try:
                command = self.installer.install_command(spec.built_on, folder, path, self._index)
            except InstallerUnavailable as error:
                raise EnvironmentBuildError(str(error)) from None
            try:
                output = self._run(self.installer.install_step, command, report, sandboxed)
                break
            except EnvironmentBuildError as error:
                culprits = named_in(str(error), requirements) if spec.on_nearest_python else []
                if not culprits:
                    raise
            for line in culprits:
                report(f"# moving the pin '{line}': it does not install on Python {spec.built_on.version}")
                moved[str(pinned_name(line))] = line
                requirements[requirements.index(line)] = unpinned(line)
        report("# compiling bytecode")
        self._run(COMPILE_STEP, compile_command(folder), report, sandboxed)
        versions = self.installer.installed_versions(output)
        return [f"{line} -> {versions.get(name, 'not installed')}" for name, line in moved.items()]

    def _build_sandbox(self, spec: EnvironmentSpec, folder: Path, private: Path) -> Callable[[list[str]], _Sandboxed]:
        """How the build of `spec` into `folder` runs a command: in its sandbox, its HOME and TMPDIR in `private`."""
        os.chmod(private, 0o711)
        home = private / "sandbox"
        self._sandbox.prepare_home(home)
        caches = self._installer_caches()
        config_home = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
        variables = {
            **{name: value for name, value in os.environ.items() if name.startswith(("UV_", "PIP_"))},
            **self.installer.environment(),
            **caches,
            "XDG_CONFIG_HOME": str(config_home),
        }
        policy = self._sandbox.policy(
            python=Path(spec.built_on.path),
            programs=[Path(sys.executable)],  # the server's uv or pip
            read=[
                *INSTALLER_CONFIGURATION,
                config_home / "pip",
                config_home / "uv",
                *local_sources(self._index, [self.root]),
            ],
            install=[folder, *caches.values()],
            scratch=home,
        )
        environment = self._sandbox.environment(python=folder / "bin" / "python", home=home, variables=variables)
        policy_file = private / "policy.json"

        def sandboxed(command: list[str]) -> _Sandboxed:
            boxed, boot = command_line(command, policy_file, policy, environment)
            return _Sandboxed(boxed, boot, home / "cwd")

        return sandboxed

    def _installer_caches(self) -> dict[str, str]:
        """The installers' caches: the server's user's own (`~/.cache/uv`, as configured), unless builds run as a
        worker user of their own, which gets caches of its own here."""
        if self._sandbox.user.is_current:
            cache_home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
            caches = {
                "UV_CACHE_DIR": Path(os.environ.get("UV_CACHE_DIR") or cache_home / "uv"),
                "PIP_CACHE_DIR": Path(os.environ.get("PIP_CACHE_DIR") or cache_home / "pip"),
            }
        else:
            caches = {"UV_CACHE_DIR": self.root / CACHES / "uv", "PIP_CACHE_DIR": self.root / CACHES / "pip"}
        for cache in caches.values():
            if not cache.is_dir():
                cache.mkdir(parents=True)
                self._sandbox.give(cache)
        return {name: str(path) for name, path in caches.items()}

    def _run(
        self, step: str, command: list[str], report: Progress, sandboxed: Callable[[list[str]], _Sandboxed]
    ) -> list[str]:
        """Run an installer step in its sandbox, reporting each line; returns its output, raises
        EnvironmentBuildError."""
        boxed = sandboxed(command)
        process = subprocess.Popen(
            boxed.command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            cwd=boxed.cwd,
            env=boxed.environment,
            start_new_session=True,  # whatever a package's build leaves running is stopped with the step
        )
        watchdog = threading.Timer(self._timeout, process.kill)
        watchdog.start()
        threading.Thread(target=_kill_when_set, args=(self._stopping, process), daemon=True).start()
        lines: list[str] = []
        try:
            assert process.stdout is not None
            for raw in process.stdout:
                line = raw.rstrip("\n")
                lines.append(line)
                report(line)
            code = process.wait()
        finally:
            watchdog.cancel()
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)  # not reaped yet (or just now): the group is the step's
            process.wait()
        if code != 0 and self._stopping.is_set():
            raise BuildStopped("The environment build was stopped: the server is stopping.")
        if code < 0:
            raise EnvironmentBuildError(f"{step} was stopped after {self._timeout:.0f} s without finishing.")
        if code != 0:
            errors = self.installer.error_lines(lines)[-ERROR_LINES:]
            raise EnvironmentBuildError(
                f"{step} failed (exit code {code}): " + " ".join(line.strip() for line in errors)
            )
        return lines


def _write(path: Path, text: str) -> None:
    """Write a file of the server's into an environment's folder, which the build may have filled with anything:
    a link at `path` is replaced, never followed."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".batchpoint-")
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(temporary, path)


@dataclass(frozen=True)
class _Sandboxed:
    command: list[str]
    environment: dict[str, str]
    cwd: Path


def _kill_when_set(stopping: threading.Event, process: subprocess.Popen[str]) -> None:
    while process.poll() is None:
        if stopping.wait(STOP_POLL_SECONDS):
            process.kill()
            return


def _notes(spec: EnvironmentSpec, installer: Installer) -> list[str]:
    interpreter = spec.built_on
    asked = f"Python {spec.python}" if spec.python else "no particular Python"
    notes = [
        f"the environment asks for {asked}: built with Python {interpreter.describe()}",
        f"installer: {installer.describe()}",
    ]
    if spec.on_nearest_python:
        notes.append("no Python on this machine matches; --nearest-python: built on the nearest, moving pins that fail")
    if spec.image:
        notes.append(f"image '{spec.image}' is recorded, not pulled: batchpoint builds the environment locally")
    if spec.skipped:
        notes.append(f"conda system packages left out (PyPI has none): {', '.join(spec.skipped)}")
    return notes
