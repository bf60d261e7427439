"""The suite fails a test that skips (tests/no_skips.py), unless BATCHPOINT_ALLOW_SKIPS=1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SKIPPING_AT_COLLECTION = """
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


def run_pytest(folder: Path, allow: bool) -> str:
    """pytest's summary for the tests in `folder`, with the suite's plugin and nothing else of the suite."""
    environment = {**os.environ, "BATCHPOINT_ALLOW_SKIPS": "1" if allow else "0"}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "tests.no_skips", "-p", "no:cacheprovider"]
    command += ["--continue-on-collection-errors", str(folder)]
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(command, cwd=root, env=environment, capture_output=True, text=True, timeout=120, check=False)
    return done.stdout.strip().splitlines()[-1]


def test_a_skip_at_collection_or_in_a_test_fails_the_run_unless_skips_are_allowed(tmp_path: Path) -> None:
    (tmp_path / "test_at_collection.py").write_text(SKIPPING_AT_COLLECTION)
    (tmp_path / "test_inside.py").write_text(SKIPPING_INSIDE)

    assert run_pytest(tmp_path, allow=False).startswith("1 failed, 1 error")
    assert run_pytest(tmp_path, allow=True).startswith("2 skipped")
