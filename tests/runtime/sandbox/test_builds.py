"""Installing a package runs its code: an environment build enters the sandbox too. A package whose build backend
probes the server (a source distribution with an in-tree PEP 517 backend, served by a local index) reaches none of
it, and its environment still builds."""

from __future__ import annotations

import ast
import base64
import hashlib
import io
import json
import os
import tarfile
import zipfile
from pathlib import Path

import pytest

from batchpoint.runtime.environments.cache import EnvironmentCache
from batchpoint.runtime.environments.installers import choose_installer, local_sources
from batchpoint.runtime.environments.interpreters import PythonFinder
from batchpoint.runtime.environments.spec import from_conda_file
from tests.sandboxing import lay_out

BACKEND = """
import base64, hashlib, json, os, zipfile

TARGETS = json.loads(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "targets.json")).read())


def probe(action):
    try:
        return "LEAKED: " + repr(action())[:60]
    except Exception as error:
        return "refused: " + type(error).__name__


def write(path):
    with open(path, "w") as handle:
        handle.write("pwned")


PROBES = {
    "read the issuer's signing key": lambda: open(TARGETS["signing_key"]).read(),
    "read the SQLite database": lambda: open(TARGETS["database"], "rb").read(16),
    "write into the data directory": lambda: write(os.path.join(TARGETS["data_dir"], "pwned.txt")),
    "write into another environment": lambda: write(os.path.join(TARGETS["other_environment"], "pwned.py")),
    "read /proc/<server>/environ": lambda: open(f"/proc/{TARGETS['server_pid']}/environ", "rb").read(16),
    "signal the server": lambda: os.kill(TARGETS["server_pid"], 0),
}


def get_requires_for_build_wheel(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    report = json.dumps({name: probe(action) for name, action in PROBES.items()})
    files = {
        "hostile_build_report.py": f"REPORT = {report!r}\\n",
        "hostile_build-1.0.dist-info/METADATA": "Metadata-Version: 2.1\\nName: hostile-build\\nVersion: 1.0\\n",
        "hostile_build-1.0.dist-info/WHEEL": (
            "Wheel-Version: 1.0\\nGenerator: t\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"
        ),
    }
    record = "".join(
        f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b'=').decode()},"
        f"{len(text.encode())}\\n"
        for path, text in files.items()
    )
    files["hostile_build-1.0.dist-info/RECORD"] = record + "hostile_build-1.0.dist-info/RECORD,,\\n"
    name = "hostile_build-1.0-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as wheel:
        for path, text in files.items():
            wheel.writestr(path, text)
    return name
"""
PYPROJECT = '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n'
PKG_INFO = "Metadata-Version: 2.1\nName: hostile-build\nVersion: 1.0\n"


def hostile_index(root: Path, targets: dict[str, object]) -> str:
    """A PEP 503 index holding one source distribution, `hostile-build` 1.0, whose build probes `targets`."""
    project = root / "hostile-build"
    project.mkdir(parents=True)
    archive = project / "hostile_build-1.0.tar.gz"
    members = {
        "pyproject.toml": PYPROJECT,
        "PKG-INFO": PKG_INFO,
        "backend.py": BACKEND,
        "targets.json": json.dumps(targets),
    }
    with tarfile.open(archive, "w:gz") as sdist:
        for name, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(f"hostile_build-1.0/{name}")
            info.size = len(data)
            sdist.addfile(info, io.BytesIO(data))
    (project / "index.html").write_text(f'<a href="{archive.name}">{archive.name}</a>\n')
    return root.as_uri()


def test_a_package_whose_build_probes_the_server_reaches_nothing_and_installs(tmp_path: Path) -> None:
    targets = lay_out(tmp_path / "server")
    other = tmp_path / "environments" / "another-environment"
    other.mkdir(parents=True)
    probed = {**targets, "other_environment": str(other), "server_pid": os.getpid()}
    index = hostile_index(tmp_path / "index", probed)
    spec = from_conda_file("dependencies:\n- pip:\n  - hostile-build==1.0\n", "a test").built_with(
        PythonFinder().choose(None)
    )

    built = EnvironmentCache(tmp_path / "environments", index, choose_installer("uv")).ensure(spec)

    [report_file] = built.folder.glob("lib/python*/site-packages/hostile_build_report.py")
    report = json.loads(ast.literal_eval(report_file.read_text().split("=", 1)[1].strip()))
    assert len(report) == 6
    assert all(verdict.startswith("refused") for verdict in report.values()), report
    assert not (Path(targets["data_dir"]) / "pwned.txt").exists() and not (other / "pwned.py").exists()


def mirror_index(root: Path) -> str:
    """A local mirror as pip2pi lays one out: `simple/tiny-mirrored/index.html` links to a wheel in `files/`."""
    files, project = root / "files", root / "simple" / "tiny-mirrored"
    files.mkdir(parents=True)
    project.mkdir(parents=True)
    wheel = files / "tiny_mirrored-1.0-py3-none-any.whl"
    members = {
        "tiny_mirrored.py": "MIRRORED = True\n",
        "tiny_mirrored-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: tiny-mirrored\nVersion: 1.0\n",
        "tiny_mirrored-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = [f"{name},sha256={_digest(text)},{len(text)}" for name, text in members.items()]
    members["tiny_mirrored-1.0.dist-info/RECORD"] = "\n".join([*record, "tiny_mirrored-1.0.dist-info/RECORD,,"]) + "\n"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    (project / "index.html").write_text(f'<a href="../../files/{wheel.name}">{wheel.name}</a>\n')
    return (root / "simple").as_uri()


def _digest(text: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()


@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_a_build_installs_from_a_local_mirror_whose_index_links_to_files_beside_it(
    tmp_path: Path, installer: str
) -> None:
    index = mirror_index(tmp_path / "mirror")
    spec = from_conda_file("dependencies:\n- pip:\n  - tiny-mirrored==1.0\n", "a test").built_with(
        PythonFinder().choose(None)
    )

    built = EnvironmentCache(tmp_path / "environments", index, choose_installer(installer)).ensure(spec)

    assert list(built.folder.glob("lib/python*/site-packages/tiny_mirrored.py"))


def test_the_folder_around_a_mirror_is_not_read_when_it_holds_the_servers_own(tmp_path: Path) -> None:
    """A mirror's index named `simple` lends its folder to builds, unless the server keeps its own files there."""
    index = mirror_index(tmp_path / "mirror")
    around = str((tmp_path / "mirror").resolve())
    environments = tmp_path / "mirror" / "environments"
    environments.mkdir()

    assert around in local_sources(index, [tmp_path / "server" / "environments"])
    assert around not in local_sources(index, [environments])
