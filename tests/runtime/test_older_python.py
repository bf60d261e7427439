"""The worker side of batchpoint runs in a deployment's own interpreter, which may be as old as Python 3.8:
real jobs on a Python 3.8 virtual environment (pyenv's, or `python3.8` on PATH) go through every worker path."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from batchpoint.runtime.environments.interpreters import PythonNotFound
from tests.pythons import PYTHONS
from tests.runtime.conftest import USES_ENTRY_SCRIPT, Kit, check_entry_script_logs, lines

REPORTS_ITS_PYTHON = """
    import os, sys

    def init():
        print("init on", sys.version_info[:2])

    def run(mini_batch):
        name = os.path.basename(mini_batch[0])
        if name == "raises.txt":
            raise ValueError("no good")
        if name == "not-a-list.txt":
            return {"a": 1}
        return ["%d.%d %s" % (sys.version_info[0], sys.version_info[1], name)]
"""


@pytest.fixture(scope="module")
def python38(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bare Python 3.8 virtual environment, as the environment cache makes one."""
    try:
        interpreter = PYTHONS.choose("3.8")
    except PythonNotFound:
        pytest.skip("no Python 3.8 on this machine")
    folder = tmp_path_factory.mktemp("py38")
    subprocess.run([interpreter.path, "-m", "venv", "--without-pip", str(folder)], check=True)
    return folder / "bin" / "python"


def test_the_worker_side_imports_on_python_3_8(python38: Path) -> None:
    """The modules a worker imports load on 3.8 (the sandbox's too; its boot compiles); the MLflow scorer (which
    needs pandas) at least compiles there and runs there in tests/sdk/test_older_python_models.py."""
    package = Path(__file__).resolve().parents[2] / "src" / "batchpoint"
    importable = python38.parent.parent / "importable"
    importable.mkdir(exist_ok=True)
    if not (importable / "batchpoint").exists():
        (importable / "batchpoint").symlink_to(package)
    check = (
        "import importlib, sys\n"
        "for name in ('batchpoint.runtime.worker', 'batchpoint.runtime.scorers.mlmodel',"
        " 'batchpoint.runtime.sandbox.confine'):\n"
        "    importlib.import_module(name)\n"
        "for path in sys.argv[1:]:\n"
        "    compile(open(path).read(), path, 'exec')\n"
    )
    scorers = sorted(str(path) for path in (package / "runtime" / "scorers").glob("*.py"))
    scorers.append(str(package / "runtime" / "sandbox" / "boot.py"))
    subprocess.run([str(python38), "-B", "-c", check, *scorers], check=True, cwd=importable)


def test_a_job_runs_init_and_run_in_python_3_8_and_reports_its_failures(kit: Kit, python38: Path) -> None:
    kit.inputs("a.txt", "raises.txt", "not-a-list.txt")
    kit.script(REPORTS_ITS_PYTHON)

    outcome = kit.run(python=python38, mini_batch_size=1, max_retries=0)

    kit.check(outcome, "Completed", 2, [1, 1, 1], lines("3.8 a.txt"))
    errors = "".join(path.read_text() for path in (kit.output_dir / "logs" / "user" / "error").rglob("*.txt"))
    assert "ValueError: no good" in errors
    assert "run() returned dict" in errors
    assert "init on (3, 8)" in kit.log("user/stdout/0/process000.stdout.txt")


def test_a_script_using_entry_script_logs_through_it_on_python_3_8(kit: Kit, python38: Path) -> None:
    kit.inputs("a.txt", "b.txt")
    kit.script(USES_ENTRY_SCRIPT)

    outcome = kit.run(python=python38, mini_batch_size=1)

    kit.check(outcome, "Completed", 0, [1, 1], lines("True True 1", "True True 1"))
    check_entry_script_logs(kit.output_dir / "logs", 2, python=(3, 8))
