"""The suite fails a test that skips (tests/no_skips.py), unless BATCHPOINT_ALLOW_SKIPS=1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SKIPPING = """
import pytest

pytest.importorskip("a_module_nobody_installed")


def test_never_runs():
    pass
"""
SKIPPING_INSIDE = """
import pytest


def test_needs_something():
    pytest.skip("PostgreSQL is not reachable")
"""


def run_pytest(folder: Path, allow: bool) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "BATCHPOINT_ALLOW_SKIPS": "1" if allow else "0"}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "tests.no_skips", "-p", "no:cacheprovider", str(folder)]
    root = Path(__file__).resolve().parent.parent
    return subprocess.run(command, cwd=root, env=environment, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("code", [SKIPPING, SKIPPING_INSIDE], ids=["at collection", "in a test"])
def test_a_skip_fails_the_run_unless_skips_are_allowed(tmp_path: Path, code: str) -> None:
    (tmp_path / "test_skipping.py").write_text(code)

    refused = run_pytest(tmp_path, allow=False)
    allowed = run_pytest(tmp_path, allow=True)

    assert refused.returncode != 0, refused.stdout
    assert "which make test does not allow" in refused.stdout
    assert "1 skipped" in allowed.stdout and "failed" not in allowed.stdout, allowed.stdout
