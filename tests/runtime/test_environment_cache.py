"""Environments are built by uv when it is installed, by pip otherwise: either builds a working, isolated
environment, names itself in the build log and in a failure, and shares the cache with the other."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from batchpoint.runtime.environments.cache import EnvironmentBuildError, EnvironmentCache
from batchpoint.runtime.environments.installers import choose_installer
from batchpoint.runtime.environments.interpreters import Interpreter, PythonNotFound
from batchpoint.runtime.environments.spec import EnvironmentSpec, from_conda_file
from tests.pythons import PYTHONS

SIX = "dependencies:\n- pip:\n  - six==1.16.0\n"
UNINSTALLABLE = "dependencies:\n- pip:\n  - batchpoint-test-no-such-package==0.0.1\n"
FINDER = PYTHONS


def interpreter(version: str | None) -> Interpreter:
    try:
        return FINDER.choose(version)
    except PythonNotFound:
        pytest.skip(f"no Python {version} on this machine")


def spec_on(conda_file: str, python: str | None) -> EnvironmentSpec:
    return from_conda_file(conda_file, "a test").built_with(interpreter(python))


def compiled(python: Path, *modules: str) -> list[bool]:
    """Whether each module's bytecode is in the environment (its workers cannot write it there)."""
    check = (
        "import importlib.util, os, sys; "
        "print(*[os.path.exists(importlib.util.cache_from_source(importlib.util.find_spec(m).origin)) "
        "for m in sys.argv[1:]])"
    )
    command = [str(python), "-I", "-B", "-c", check, *modules]
    answer = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return [word == "True" for word in answer.split()]


def imports(python: Path, *modules: str) -> list[bool]:
    check = "import importlib.util, sys; print(*[importlib.util.find_spec(m) is not None for m in sys.argv[1:]])"
    answer = subprocess.run([str(python), "-c", check, *modules], capture_output=True, text=True, check=True).stdout
    return [word == "True" for word in answer.split()]


@pytest.mark.parametrize(
    ("installer", "python"),
    [("uv", None), ("uv", "3.8"), ("pip", None), ("pip", "3.8")],
    ids=["uv", "uv-python3.8", "pip", "pip-python3.8-ensurepip"],
)
def test_each_installer_builds_an_isolated_environment_on_the_python_asked_for(
    tmp_path: Path, installer: str, python: str | None
) -> None:
    spec = spec_on(SIX, python)
    cache = EnvironmentCache(tmp_path, installer=choose_installer(installer))
    lines: list[str] = []

    built = cache.ensure(spec, lines.append)

    assert built.built and imports(built.python, "six", "fastapi") == [True, False]
    assert compiled(built.python, "six") == [True]
    version = subprocess.run([str(built.python), "-c", "import platform; print(platform.python_version())"],
                             capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    assert version == spec.built_on.version
    assert f"# installer: {installer} " in cache.log_path(spec).read_text()
    assert lines[-1] == f"# environment {spec.key} is ready"
    assert not cache.ensure(spec).built, "the second call finds it in the cache"


@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_a_failed_install_names_the_installer_and_its_error_and_leaves_no_folder(
    tmp_path: Path, installer: str
) -> None:
    spec = spec_on(UNINSTALLABLE, None)
    cache = EnvironmentCache(tmp_path, installer=choose_installer(installer))

    with pytest.raises(EnvironmentBuildError) as failed:
        cache.ensure(spec)

    step = "uv pip install" if installer == "uv" else "pip install"
    assert str(failed.value).startswith(f"{step} failed (exit code 1): ")
    assert "batchpoint-test-no-such-package" in str(failed.value)
    assert not (tmp_path / spec.key).exists() and cache.log_path(spec).is_file()


def mirror_with_one_package(root: Path) -> str:
    """A package index (PEP 503 folders, as an offline mirror serves them) holding only `batchpoint-mirror-only`
    1.0, which PyPI does not have (a package with a test suite of its own); its URL."""
    name = "batchpoint_mirror_only-1.0"
    files = {
        "batchpoint_mirror_only/__init__.py": "VALUE = 'from the mirror'\n",
        "batchpoint_mirror_only/tests/__init__.py": "",
        "batchpoint_mirror_only/tests/test_value.py": "def test_value():\n    pass\n",
        f"{name}.dist-info/METADATA": "Metadata-Version: 2.1\nName: batchpoint-mirror-only\nVersion: 1.0\n",
        f"{name}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    hashes = {
        path: base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        for path, text in files.items()
    }
    files[f"{name}.dist-info/RECORD"] = (
        "".join(f"{path},sha256={hashes[path]},{len(text.encode())}\n" for path, text in files.items())
        + f"{name}.dist-info/RECORD,,\n"
    )
    project = root / "batchpoint-mirror-only"
    project.mkdir(parents=True)
    wheel = project / f"{name}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    (project / "index.html").write_text(f'<a href="{wheel.name}">{wheel.name}</a>\n')
    return root.as_uri()


@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_a_build_installs_from_the_package_index_it_is_given(tmp_path: Path, installer: str) -> None:
    spec = spec_on("dependencies:\n- pip:\n  - batchpoint-mirror-only==1.0\n", None)
    index = mirror_with_one_package(tmp_path / "mirror")

    built = EnvironmentCache(tmp_path / "cache", index, choose_installer(installer)).ensure(spec)

    package, tests = "batchpoint_mirror_only", "batchpoint_mirror_only.tests.test_value"
    assert compiled(built.python, package, tests) == [True, False], "the package's own tests are not compiled"
    value = subprocess.run([str(built.python), "-c", "import batchpoint_mirror_only as m; print(m.VALUE)"],
                           capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert value == "from the mirror\n"


def test_the_installer_is_not_part_of_the_cache_key(tmp_path: Path) -> None:
    spec = spec_on(SIX, None)
    EnvironmentCache(tmp_path, installer=choose_installer("uv")).ensure(spec)

    assert EnvironmentCache(tmp_path, installer=choose_installer("pip")).find(spec) is not None


def test_without_uv_environments_are_built_with_pip() -> None:
    """A server where the `uv` package is missing and no `uv` is on PATH falls back to pip; asking for uv fails."""
    check = (
        "import sys; sys.modules['uv'] = None\n"
        "from batchpoint.runtime.environments.installers import InstallerUnavailable, choose_installer\n"
        "print(choose_installer().name)\n"
        "try:\n    choose_installer('uv')\nexcept InstallerUnavailable as error:\n    print(error)\n"
    )
    environment = {**os.environ, "PATH": os.pathsep.join(["/usr/bin", "/bin"])}
    answer = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True, env=environment)

    assert answer.stdout.splitlines() == [
        "pip",
        "uv is not installed: `pip install uv`, or build environments with pip.",
    ]
