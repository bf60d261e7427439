"""The Python interpreters on this machine, and the one an environment's requested version gets.

Where they are looked for, in this order (the first of several links to one interpreter wins):
the server's own interpreter, the ones named with `serve --python`, uv's managed Pythons (the folder
`uv python dir` prints: `$UV_PYTHON_INSTALL_DIR`, else `$XDG_DATA_HOME/uv/python`, else `~/.local/share/uv/python`;
uv itself need not be installed), pyenv's (`$PYENV_ROOT/versions`, else `~/.pyenv/versions`), and `pythonX.Y` on
PATH (pyenv's shims are skipped: they run whichever version pyenv has selected). Each candidate is asked for its
version once per modification time.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

WORKER_MINIMUM = (3, 8)
"""The oldest Python batchpoint's worker side runs on (`runtime/worker.py` and what it imports)."""
PATH_NAMES = tuple(f"python3.{minor}" for minor in range(6, 20))
PROBE = (
    "import platform, sys, sysconfig; "
    "print(platform.python_implementation().lower(), '.'.join(map(str, sys.version_info[:3])), "
    "sysconfig.get_paths()['stdlib'])"
)
PROBE_TIMEOUT_SECONDS = 15.0
ADD_ONE = (
    "Install one (`uv python install {version}` or `pyenv install {version}`) or name it with "
    "`batchpoint serve --python /path/to/python{version}`; or start the server with --nearest-python to build on "
    "the nearest Python found, moving the pins that do not install there."
)


class PythonNotFound(Exception):
    """No interpreter on this machine matches the version an environment asks for; the message says which
    were found and how to add one."""


@dataclass(frozen=True)
class Interpreter:
    path: str
    version: str
    """Major.minor.micro, as `sys.version_info` says."""
    implementation: str = "cpython"
    stdlib: str = ""

    @property
    def release(self) -> tuple[int, ...]:
        return Version(self.version).release

    @property
    def bundled_pip(self) -> Path | None:
        """The pip wheel the interpreter ships for `ensurepip` (newest first), which runs on it as is."""
        wheels = sorted(Path(self.stdlib, "ensurepip", "_bundled").glob("pip-*.whl"), key=_wheel_version)
        return wheels[-1] if wheels else None

    def describe(self) -> str:
        return f"{self.version} ({self.path})"


@dataclass(frozen=True)
class PythonRequest:
    """A requested version: the versions it accepts, and the release it names (preferred among those)."""

    text: str
    accepted: SpecifierSet
    preferred: str | None
    named: str | None = None
    """The version a plain request names (`3.8.5`); None for a range."""

    def matches(self, interpreter: Interpreter) -> bool:
        return self.accepted.contains(interpreter.version, prereleases=True)


def parse_request(text: str) -> PythonRequest:
    """`3.8`, `3.8.5` (conda's `python=3.8.5`, a build string after a second `=` dropped) and `==3.8.5` accept
    any 3.8 release and prefer the named one; operators (`>=3.8,<3.11`, `~=3.9`) are taken as written."""
    cleaned = text.strip().lstrip("=").strip()
    try:
        if not cleaned[:1].isdigit():
            return PythonRequest(text, SpecifierSet(text.replace(" ", "")), None)
        named = str(Version(cleaned.split("=", 1)[0].rstrip("*").rstrip(".")))
        major_minor = ".".join(named.split(".")[:2])
        return PythonRequest(text, SpecifierSet(f"=={major_minor}.*"), named if named.count(".") >= 2 else None, named)
    except (InvalidSpecifier, InvalidVersion):
        raise ValueError(f"'{text}' is not a Python version or version range.") from None


class PythonFinder:
    def __init__(self, extra: Sequence[Path] = (), nearest: bool = False) -> None:
        """`extra` are interpreters the server was told about (`serve --python`); `nearest` lets an environment
        whose Python is missing be built on the nearest one (`serve --nearest-python`)."""
        self._extra = [Path(path) for path in extra]
        self._nearest = nearest
        self._known: dict[str, tuple[float, Interpreter | None]] = {}
        self._lock = threading.Lock()

    @property
    def host(self) -> Interpreter:
        found = self._probe(sys.executable)
        assert found is not None, "the server's own interpreter always answers"
        return found

    def all(self) -> list[Interpreter]:
        """Every interpreter found, each once (the first link to it wins)."""
        seen: dict[str, Interpreter] = {}
        for candidate in self._candidates():
            real = os.path.realpath(candidate)
            if real in seen:
                continue
            interpreter = self._probe(candidate)
            if interpreter is not None:
                seen[real] = interpreter
        return list(seen.values())

    def choose(self, requested: str | None) -> Interpreter:
        """The interpreter an environment asking for `requested` (None: any) is built with; raises PythonNotFound.

        Among the matching ones: the release it names, then the server's own, then the newest."""
        if requested is None:
            return self.host
        request = parse_request(requested)
        found = self.all()
        supported = [item for item in found if item.release[:2] >= WORKER_MINIMUM]
        usable = [item for item in supported if request.matches(item)]
        if not usable and self._nearest and request.named and supported:
            return _nearest(Version(request.named).release, supported)
        if not usable:
            raise PythonNotFound(_not_found(requested, request, found))
        host = os.path.realpath(sys.executable)
        return max(
            usable,
            key=lambda item: (item.version == request.preferred, os.path.realpath(item.path) == host, item.release),
        )

    def _candidates(self) -> Iterator[str]:
        yield sys.executable
        yield from (str(path) for path in self._extra)
        for root in (_uv_pythons(), _pyenv_versions()):
            yield from sorted(glob.glob(str(root / "*" / "bin" / "python3")))
        shims = str(_pyenv_root() / "shims")
        for name in PATH_NAMES:
            found = shutil.which(name)
            if found and not found.startswith(shims + os.sep):
                yield found

    def _probe(self, path: str) -> Interpreter | None:
        try:
            modified = os.stat(path).st_mtime
        except OSError:
            return None
        with self._lock:
            known = self._known.get(path)
        if known is not None and known[0] == modified:
            return known[1]
        interpreter = _ask_version(path)
        with self._lock:
            self._known[path] = (modified, interpreter)
        return interpreter


def _ask_version(path: str) -> Interpreter | None:
    try:
        answer = subprocess.run(
            [path, "-I", "-c", PROBE], capture_output=True, text=True, timeout=PROBE_TIMEOUT_SECONDS, check=True
        ).stdout.split(maxsplit=2)
    except (OSError, subprocess.SubprocessError):
        return None
    if len(answer) != 3:
        return None
    implementation, version, stdlib = answer
    return Interpreter(path, version, implementation, stdlib.strip())


def _nearest(release: tuple[int, ...], interpreters: list[Interpreter]) -> Interpreter:
    """The interpreter closest to `release` by minor version; of two as close, the newer."""
    wanted = _minors(release)
    return min(interpreters, key=lambda item: (abs(_minors(item.release) - wanted), [-part for part in item.release]))


def _minors(release: tuple[int, ...]) -> int:
    return release[0] * 100 + (release[1] if len(release) > 1 else 0)


def _not_found(requested: str, request: PythonRequest, found: list[Interpreter]) -> str:
    too_old = [item for item in found if request.matches(item) and item.release[:2] < WORKER_MINIMUM]
    listed = ", ".join(item.describe() for item in found) or "none"
    minimum = ".".join(map(str, WORKER_MINIMUM))
    reason = (
        f"Python {too_old[0].version} is older than batchpoint's workers support ({minimum} or later). "
        if too_old
        else ""
    )
    version = request.preferred or requested.strip().lstrip("=<>~! ").split(",")[0]
    return (
        f"The environment asks for Python {requested.strip()}, and no Python on this machine matches. {reason}"
        f"Found: {listed}. " + ADD_ONE.format(version=version)
    )


def _uv_pythons() -> Path:
    configured = os.environ.get("UV_PYTHON_INSTALL_DIR")
    if configured:
        return Path(configured).expanduser()
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "uv" / "python"


def _pyenv_root() -> Path:
    return Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv").expanduser()


def _pyenv_versions() -> Path:
    return _pyenv_root() / "versions"


def _wheel_version(path: Path) -> Version:
    return Version(path.name.split("-")[1])
