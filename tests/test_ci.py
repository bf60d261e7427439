"""``.ci/run``, the CI entry point: it fails when ``make check`` fails, when a test fails or when no test ran
(``make`` is a stand-in here: for ``make check`` it exits as told; for ``make test`` it prints what pytest would and
exits as make would)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

CI_RUN = Path(__file__).parent.parent / ".ci" / "run"


def run_ci_with_make(
    folder: Path, printed: str, exit_code: int, check_exit: int = 0
) -> subprocess.CompletedProcess[str]:
    make = folder / "make"
    make.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = check ]; then echo "make check ran"; exit {check_exit}; fi\n'
        f"printf '%s\\n' '{printed}'\nexit {exit_code}\n"
    )
    make.chmod(0o755)
    env = {**os.environ, "PATH": f"{folder}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(["bash", str(CI_RUN)], env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("printed", "make_exit", "ci_exit"),
    [
        ("634 passed, 86 subtests passed in 149.14s", 0, 0),
        ("1 failed, 633 passed in 150.02s", 2, 2),
        ("ERROR: file or directory not found", 4, 4),
        ("no tests ran in 0.01s", 0, 1),
    ],
    ids=["all-passed", "a-test-failed", "pytest-error", "nothing-ran"],
)
def test_ci_run_fails_when_a_test_fails_or_none_ran(tmp_path: Path, printed: str, make_exit: int, ci_exit: int) -> None:
    result = run_ci_with_make(tmp_path, printed, make_exit)
    assert result.returncode == ci_exit, result.stdout + result.stderr
    assert printed in result.stdout


@pytest.mark.parametrize(("make_exit", "ci_exit"), [(0, 2), (2, 2)], ids=["tests-passed", "a-test-failed-too"])
def test_ci_run_fails_when_make_check_fails_and_still_runs_the_tests(
    tmp_path: Path, make_exit: int, ci_exit: int
) -> None:
    printed = "634 passed in 149.14s" if make_exit == 0 else "1 failed, 633 passed in 150.02s"
    result = run_ci_with_make(tmp_path, printed, make_exit, check_exit=2)
    assert result.returncode == ci_exit, result.stdout + result.stderr
    assert result.stdout.index("make check ran") < result.stdout.index(printed)
    assert "make check failed" in result.stderr


def test_ci_run_runs_make_check_before_the_tests(tmp_path: Path) -> None:
    result = run_ci_with_make(tmp_path, "634 passed in 149.14s", 0)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.index("make check ran") < result.stdout.index("634 passed")
