"""The tools that build an environment: uv when it is installed (the `uv` package, a dependency of batchpoint, ships
its binary), else pip. Each creates the virtual environment with the chosen interpreter, installs the requirements
into it from outside (neither tool becomes part of the environment), and reads its own output: the error lines of a
failure and the versions it installed.

uv is run with the interpreter's path and `UV_PYTHON_DOWNLOADS=never`, so it never fetches a Python of its own; it
reads its own configuration (`uv.toml`, `UV_INDEX_URL`, ...), not pip's, and caches under `~/.cache/uv`
(`UV_CACHE_DIR`). Neither compiles bytecode: the build's last step (`compile_command`) does, for every installed
module outside the packages' own test suites; sandboxed workers cannot write it into their read-only environment, and
would compile what they import at every start (docs/runtime.md).
"""

from __future__ import annotations

import configparser
import os
import re
import shutil
import sys
import tomllib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Literal, get_args

from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from batchpoint.runtime.environments.interpreters import Interpreter

InstallerName = Literal["uv", "pip"]
INSTALLER_NAMES: tuple[str, ...] = get_args(InstallerName)
UV_ENVIRONMENT = {"UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1", "NO_COLOR": "1", "UV_LINK_MODE": "copy"}
"""`UV_LINK_MODE=copy`: files hard-linked from uv's cache would be one file in every environment built from it, and
the code of one package's build could change them all (docs/security.md)."""
UV_INSTALLED = re.compile(r"^ \+ (?P<name>[^=\s]+)==(?P<version>\S+)")
UV_ERROR = re.compile(r"^\s*(error:|×)")
PIP_INSTALLED = "Successfully installed "


class InstallerUnavailable(Exception):
    """The installer asked for cannot run here (uv not installed, or no pip for an interpreter)."""


class Installer(ABC):
    """One way to build an environment; `name` is what the build log and errors call it."""

    name: InstallerName
    create_step: str
    """What the step that makes the virtual environment is called in errors."""
    install_step: str

    @abstractmethod
    def describe(self) -> str:
        """The tool and its version, for the build log."""

    @abstractmethod
    def create_command(self, interpreter: Interpreter, folder: Path) -> list[str]:
        """The command that makes an empty virtual environment in `folder` with `interpreter`."""

    @abstractmethod
    def install_command(
        self, interpreter: Interpreter, folder: Path, requirements: Path, index: str | None
    ) -> list[str]:
        """The command that installs `requirements` into the environment in `folder` (from `index` if given)."""

    def environment(self) -> dict[str, str]:
        """Variables its commands run with, on top of the server's."""
        return {}

    @abstractmethod
    def error_lines(self, output: list[str]) -> list[str]:
        """The lines of a failed step's output that say why."""

    @abstractmethod
    def installed_versions(self, output: list[str]) -> dict[str, str]:
        """Canonical name to version of what an install step installed."""


class UvInstaller(Installer):
    name = "uv"
    create_step = "uv venv"
    install_step = "uv pip install"

    def __init__(self, binary: str) -> None:
        self.binary = binary

    def describe(self) -> str:
        return " ".join(["uv", *_version_of("uv"), f"({self.binary})"])

    def create_command(self, interpreter: Interpreter, folder: Path) -> list[str]:
        return [self.binary, "venv", "--python", interpreter.path, str(folder)]

    def install_command(
        self, interpreter: Interpreter, folder: Path, requirements: Path, index: str | None
    ) -> list[str]:
        index_options = ["--default-index", index] if index else []
        return [
            self.binary,
            "pip",
            "install",
            "--python",
            str(folder / "bin" / "python"),
            *index_options,
            "-r",
            str(requirements),
        ]

    def environment(self) -> dict[str, str]:
        return dict(UV_ENVIRONMENT)

    def error_lines(self, output: list[str]) -> list[str]:
        start = next((number for number, line in enumerate(output) if UV_ERROR.match(line)), None)
        return output[start:] if start is not None else output

    def installed_versions(self, output: list[str]) -> dict[str, str]:
        found = (UV_INSTALLED.match(line) for line in output)
        return {canonicalize_name(match["name"]): match["version"] for match in found if match}


class PipInstaller(Installer):
    """The server's pip installs into the environment when it runs on the environment's Python; otherwise the pip
    wheel that Python ships (`ensurepip`) does, run from the wheel."""

    name = "pip"
    create_step = "python -m venv"
    install_step = "pip install"

    def describe(self) -> str:
        return " ".join(["pip", *_version_of("pip"), "(the server's, or the ensurepip wheel of an older Python)"])

    def create_command(self, interpreter: Interpreter, folder: Path) -> list[str]:
        return [interpreter.path, "-m", "venv", "--without-pip", str(folder)]

    def install_command(
        self, interpreter: Interpreter, folder: Path, requirements: Path, index: str | None
    ) -> list[str]:
        python = str(folder / "bin" / "python")
        if _host_pip_runs_on(interpreter):
            pip = [sys.executable, "-m", "pip", "--python", python]
        elif interpreter.bundled_pip is not None:
            pip = [python, str(interpreter.bundled_pip / "pip")]
        else:
            raise InstallerUnavailable(
                f"No pip can install packages for Python {interpreter.version} ({interpreter.path}): the server's "
                f"pip needs Python {_host_pip_python()}, and that interpreter ships no ensurepip wheel."
            )
        index_options = ["--index-url", index] if index else []
        return [
            *pip, "install", "--no-input", "--disable-pip-version-check", "--progress-bar", "off", "--no-compile",
            *index_options, "-r", str(requirements),
        ]  # fmt: skip

    def error_lines(self, output: list[str]) -> list[str]:
        return [line for line in output if line.startswith("ERROR:")] or output

    def installed_versions(self, output: list[str]) -> dict[str, str]:
        versions: dict[str, str] = {}
        for line in output:
            if line.startswith(PIP_INSTALLED):
                for item in line[len(PIP_INSTALLED) :].split():
                    name, _, version = item.rpartition("-")
                    versions[canonicalize_name(name)] = version
        return versions


COMPILE_STEP = "compile bytecode"
COMPILE = """\
import compileall, re, sys, sysconfig
for root in sorted({sysconfig.get_paths()[name] for name in ("purelib", "platlib")}):
    tests = re.compile(re.escape(root) + r"/(?:.+/)?tests?/")
    compileall.compile_dir(root, maxlevels=100, rx=tests, quiet=2, workers=0)
"""
"""Compiles the environment's site-packages with its own Python (any version from 3.6), on every core, except the
folders named `tests` or `test`: the packages' own test suites, which no scoring script imports, are more than half
of pandas and numpy (a pandas 3 environment's build took 6.9 s of CPU with uv's `--compile-bytecode`, 4.0 s now).
A file that does not compile (Python 2 code in a package) is left as it is, as uv and pip do."""


def compile_command(folder: Path) -> list[str]:
    """The build's last step: compile the bytecode of what was installed into the environment in `folder`."""
    return [str(folder / "bin" / "python"), "-I", "-c", COMPILE]


SOURCE_SETTINGS = ("index-url", "extra-index-url", "find-links", "default-index", "index")
"""The installers' settings that name where packages come from (pip.conf keys, uv.toml keys, and as variables)."""


def local_sources(index: str | None, protected: Sequence[Path] = ()) -> list[str]:
    """The folders on this machine the installers take packages from (`file://` URLs and paths in `index` and in
    their configuration: `PIP_*`/`UV_*` variables, pip.conf, uv.toml): an environment build must read them.
    `protected`: the server's own folders, which the folder around a mirror's index must not hold."""
    values = [index or ""]
    for setting in SOURCE_SETTINGS:
        variable = setting.upper().replace("-", "_")
        values += [os.environ.get(f"PIP_{variable}", ""), os.environ.get(f"UV_{variable}", "")]
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    for file in ("/etc/pip.conf", "/etc/xdg/pip/pip.conf", config / "pip/pip.conf", Path.home() / ".pip/pip.conf"):
        values += _pip_sources(Path(file))
    for file in (Path("/etc/uv/uv.toml"), config / "uv/uv.toml"):
        values += _uv_sources(file)
    words = (word for value in values for word in value.split())
    paths = (word.removeprefix("file://") for word in words if word.startswith(("file://", "/")))
    found = {path for path in paths if os.path.exists(path)}
    guarded = [os.path.realpath(folder) for folder in (Path.home(), *protected)]
    return sorted(found | {mirror for path in found if (mirror := _mirror_root(path, guarded)) is not None})


MIRROR_INDEX = "simple"
"""The name of a local PEP 503 index whose pages may link to files beside it (`../../files/x.whl`), as pip2pi's
mirrors and this project's CI machines lay them out: a sandboxed build reads the folder around it too."""


def _mirror_root(path: str, guarded: Sequence[str]) -> str | None:
    """The folder around a local index named `simple`, whose files its pages may link to. Never one that holds what a
    build must not read: the filesystem's root, or a `guarded` folder (the server user's home, the server's own)."""
    real = os.path.realpath(path)
    parent = os.path.dirname(real)
    if os.path.basename(real) != MIRROR_INDEX or parent == os.sep:
        return None
    if any(folder == parent or folder.startswith(parent + os.sep) for folder in guarded):
        return None
    return parent


def _pip_sources(file: Path) -> list[str]:
    parser = configparser.ConfigParser()
    try:
        parser.read(file)
    except configparser.Error:
        return []
    return [section.get(key, "") for section in parser.values() for key in SOURCE_SETTINGS]


def _uv_sources(file: Path) -> list[str]:
    try:
        settings = tomllib.loads(file.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return []
    found = []
    for key in SOURCE_SETTINGS:  # a string, a list of strings, or (`index`) a list of tables with a `url`
        value = settings.get(key)
        for item in value if isinstance(value, list) else [value]:
            url = item.get("url") if isinstance(item, dict) else item
            if isinstance(url, str):
                found.append(url)
    return found


def choose_installer(name: str | None = None) -> Installer:
    """The installer `name` ("uv" or "pip"); None: uv when it is installed, else pip."""
    if name not in (None, *INSTALLER_NAMES):
        raise ValueError(f"Unknown installer '{name}': use one of {', '.join(INSTALLER_NAMES)}.")
    binary = _uv_binary() if name in (None, "uv") else None
    if binary is not None:
        return UvInstaller(binary)
    if name == "uv":
        raise InstallerUnavailable("uv is not installed: `pip install uv`, or build environments with pip.")
    return PipInstaller()


def _uv_binary() -> str | None:
    """The binary of the `uv` package installed beside batchpoint, else `uv` on PATH."""
    try:
        import uv
    except ImportError:
        return shutil.which("uv")
    try:
        return str(uv.find_uv_bin())
    except FileNotFoundError:
        return shutil.which("uv")


def _version_of(distribution: str) -> list[str]:
    """The installed version of `distribution`, if it is installed as a package (uv may only be on PATH)."""
    try:
        return [metadata.version(distribution)]
    except metadata.PackageNotFoundError:
        return []


def _host_pip_python() -> str:
    return metadata.metadata("pip")["Requires-Python"] or ""


def _host_pip_runs_on(interpreter: Interpreter) -> bool:
    return SpecifierSet(_host_pip_python()).contains(interpreter.version, prereleases=True)
