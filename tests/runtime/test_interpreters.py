"""Environments are built with the Python they ask for: which interpreter a requested version gets."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from batchpoint.runtime.environments.interpreters import PythonFinder, PythonNotFound, parse_request

PYENV = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"


def pyenv_python(major_minor: str) -> Path | None:
    found = sorted(PYENV.glob(f"{major_minor}.*/bin/python3"))
    return found[-1] if found else None


def host_major_minor() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


@pytest.mark.parametrize(
    ("requested", "accepts", "refuses", "preferred"),
    [
        ("3.8", "3.8.18", "3.9.0", None),
        ("3.8.5", "3.8.18", "3.9.0", "3.8.5"),
        ("==3.8.5", "3.8.0", "3.10.1", "3.8.5"),
        ("3.8.5=h7579374_1", "3.8.18", "3.7.1", "3.8.5"),
        ("3.8.*", "3.8.1", "3.9.1", None),
        (">=3.9,<3.11", "3.10.13", "3.11.7", None),
    ],
)
def test_requested_versions_match_any_release_of_their_minor_and_prefer_the_named_one(
    requested: str, accepts: str, refuses: str, preferred: str | None
) -> None:
    request = parse_request(requested)
    assert request.accepted.contains(accepts) and not request.accepted.contains(refuses)
    assert request.preferred == preferred


@pytest.mark.parametrize("requested", ["3.x", "three", ">=banana"])
def test_a_request_that_is_no_version_is_refused(requested: str) -> None:
    with pytest.raises(ValueError, match="is not a Python version"):
        parse_request(requested)


def test_no_request_and_the_servers_own_version_get_the_servers_interpreter() -> None:
    finder = PythonFinder()
    assert finder.choose(None).path == sys.executable
    assert finder.choose(host_major_minor()).path == sys.executable


@pytest.mark.skipif(pyenv_python("3.8") is None, reason="needs pyenv's Python 3.8")
def test_an_older_python_is_found_among_pyenvs() -> None:
    chosen = PythonFinder().choose("3.8.5")
    assert chosen.version.startswith("3.8.") and os.path.realpath(chosen.path) == os.path.realpath(pyenv_python("3.8"))


@pytest.mark.skipif(pyenv_python("3.9") is None, reason="needs pyenv's Python 3.9")
def test_an_interpreter_named_by_the_server_option_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("PYENV_ROOT", "UV_PYTHON_INSTALL_DIR", "PATH"):
        monkeypatch.setenv(variable, str(tmp_path / "nothing-here"))
    link = tmp_path / "my-python"
    link.symlink_to(pyenv_python("3.9"))
    with pytest.raises(PythonNotFound):
        PythonFinder().choose("3.9")
    assert PythonFinder([link]).choose("3.9").path == str(link)


def test_no_match_names_the_version_what_was_found_and_how_to_add_one() -> None:
    with pytest.raises(PythonNotFound) as missing:
        PythonFinder().choose("3.4")
    message = str(missing.value)
    assert "Python 3.4" in message and sys.version.split()[0] in message
    assert "uv python install 3.4" in message and "batchpoint serve --python" in message


@pytest.mark.skipif(pyenv_python("3.8") is None, reason="needs pyenv's Python 3.8")
def test_the_nearest_mode_takes_the_closest_supported_minor() -> None:
    finder = PythonFinder(nearest=True)
    assert finder.choose("3.4").version.startswith("3.8.")
    assert finder.choose("3.7.9").version.startswith("3.8.")
    with pytest.raises(PythonNotFound):
        finder.choose(">=4.0")  # a range names no version to be near to
