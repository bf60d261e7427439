"""``.ci/run``, the CI entry point: it fails when a test fails or when no test ran (``make`` is a stand-in here
that prints what pytest would and exits as make would)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

CI_RUN = Path(__file__).parent.parent / ".ci" / "run"


def run_ci_with_make(folder: Path, printed: str, exit_code: int) -> subprocess.CompletedProcess[str]:
    make = folder / "make"
    make.write_text(f"#!/bin/sh\nprintf '%s\\n' '{printed}'\nexit {exit_code}\n")
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
