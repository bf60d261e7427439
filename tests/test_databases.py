"""A test run leaves no database behind in the shared PostgreSQL instance."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg

from tests.server import POSTGRES_ADMIN_URL

CREATES_ONE = """
from pathlib import Path

from tests.server import create_postgres_database


def test_creates_a_database():
    url = create_postgres_database()
    Path({record!r}).write_text(url.rsplit("/", 1)[1])
"""


def exists(name: str) -> bool:
    with psycopg.connect(POSTGRES_ADMIN_URL) as connection:
        return connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def test_the_databases_a_test_process_created_are_dropped_when_its_session_ends(tmp_path: Path) -> None:
    record = tmp_path / "name.txt"
    (tmp_path / "test_one.py").write_text(CREATES_ONE.format(record=str(record)))
    repository = Path(__file__).parent.parent
    command = [sys.executable, "-m", "pytest", "-q", "-p", "tests.databases", "-p", "no:cacheprovider", str(tmp_path)]
    done = subprocess.run(command, cwd=repository, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    name = record.read_text()
    assert name.startswith("batchpoint_") and not exists(name)
