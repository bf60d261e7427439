"""``make check`` fails on a lint error, a type error and an import that goes up the layers.

Each test runs the project's own ``make check`` (its Makefile and pyproject.toml, copied) over a tiny ``batchpoint``
package in a temporary folder: one package per layer of the project's layers contract, modules that pass every
check, and one planted defect. The tools are those of the environment running the tests."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).parent.parent
CLEAN = '''"""A module that passes every check, its longest line as long as lines may be."""


def double(value: int) -> int:
{longest}
    return 2 * value
'''
DOWNWARD = '''"""The top layer uses the bottom one, as layers may."""

from batchpoint.{bottom}.clean import double

QUADRUPLE = double(double(1))
'''


def tool_config(name: str) -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"][name]


def layers_contract() -> dict[str, Any]:
    [contract] = [c for c in tool_config("importlinter")["contracts"] if c["type"] == "layers"]
    return contract


def layers() -> list[str]:
    """The subpackages of batchpoint in the project's layers contract, top first (``cli``, ..., ``config``)."""
    contract = layers_contract()
    modules = [module.strip() for layer in contract["layers"] for module in re.split(r"[|:]", layer)]
    return [module.removeprefix("batchpoint.") for module in modules]


TOP, BOTTOM = layers()[0], layers()[-1]
LINE_LENGTH = tool_config("ruff")["line-length"]


def comment_line(length: int, indent: str = "") -> str:
    return f"{indent}# " + "x" * (length - len(indent) - 2)


@pytest.fixture(scope="module")
def mypy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the module's runs: mypy reads the standard library's stubs once."""
    return tmp_path_factory.mktemp("mypy-cache")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """The project's check configuration over a package that passes it."""
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / ".venv").symlink_to(sys.prefix)
    for folder in ("tests", "benchmarks"):
        (tmp_path / folder).mkdir()
    for package in ("", *layers()):
        folder = tmp_path / "src" / "batchpoint" / package
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "__init__.py").write_text("")
    write(tmp_path, BOTTOM, "clean", CLEAN.format(longest=comment_line(LINE_LENGTH, "    ")))
    write(tmp_path, TOP, "downward", DOWNWARD.format(bottom=BOTTOM))
    (tmp_path / "benchmarks" / "clean_bench.py").write_text(CLEAN.format(longest=comment_line(LINE_LENGTH, "    ")))
    return tmp_path


def write(tree: Path, package: str, module: str, text: str) -> None:
    (tree / "src" / "batchpoint" / package / f"{module}.py").write_text(text)


def make_check(tree: Path, mypy_cache: Path) -> subprocess.CompletedProcess[str]:
    """``make check`` with the running environment's tools (its install step is taken as done)."""
    env = {**os.environ, "PYTHONPATH": str(tree / "src"), "MYPY_CACHE_DIR": str(mypy_cache)}
    return subprocess.run(
        ["make", "--no-print-directory", "-o", ".venv/.installed", "check"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_tree_without_defects_passes(tree: Path, mypy_cache: Path) -> None:
    result = make_check(tree, mypy_cache)

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{layers_contract()['name']} KEPT" in result.stdout


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ('"""Imports what it never uses."""\n\nimport os\n', "F401"),
        ('"""One line too long."""\n\n' + comment_line(LINE_LENGTH + 1) + "\n", "E501"),
    ],
    ids=["unused-import", "long-line"],
)
def test_a_lint_error_fails_the_check(tree: Path, mypy_cache: Path, text: str, rule: str) -> None:
    write(tree, BOTTOM, "faulty", text)

    result = make_check(tree, mypy_cache)

    assert result.returncode != 0
    assert re.search(rf"{rule} .*\n.*faulty\.py", result.stdout), result.stdout


WRONG = '"""Returns a string as an int."""\n\n\ndef count() -> int:\n    return "one"\n'


def test_a_type_error_fails_the_check(tree: Path, mypy_cache: Path) -> None:
    write(tree, BOTTOM, "wrong", WRONG)

    result = make_check(tree, mypy_cache)

    assert result.returncode != 0
    assert 'wrong.py:5: error: Incompatible return value type (got "str", expected "int")' in result.stdout


def test_a_type_error_in_a_benchmark_fails_the_check(tree: Path, mypy_cache: Path) -> None:
    """Benchmarks run only by hand (make bench): the check is what sees one calling what a change removed."""
    (tree / "benchmarks" / "wrong_bench.py").write_text(WRONG)

    result = make_check(tree, mypy_cache)

    assert result.returncode != 0
    assert 'wrong_bench.py:5: error: Incompatible return value type (got "str", expected "int")' in result.stdout


def test_an_import_up_the_layers_fails_the_check(tree: Path, mypy_cache: Path) -> None:
    write(tree, BOTTOM, "upward", f'"""Reaches up to the top layer."""\n\nimport batchpoint.{TOP}.downward\n')

    result = make_check(tree, mypy_cache)

    assert result.returncode != 0
    assert f"batchpoint.{BOTTOM} is not allowed to import batchpoint.{TOP}" in result.stdout
