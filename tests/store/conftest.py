"""Stores on each backend: SQLite in a temporary folder, and fresh PostgreSQL databases."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchpoint.store import Store, open_store
from tests.server import create_postgres_database, postgres_available

ICU_ENGLISH = "postgresql-icu-en"
"""PostgreSQL with an ICU English collation, which sorts '$' and '+' between '/' and '0' (unlike bytes do)."""
BACKENDS = ["sqlite", "postgresql", ICU_ENGLISH]


def create_icu_database() -> str:
    return create_postgres_database(
        f"batchpoint_icu_{uuid.uuid4().hex[:12]}",
        "TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'",
    )


def database_url(backend: str, folder: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{folder / 'store.db'}"
    if not postgres_available():
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    return create_icu_database() if backend == ICU_ENGLISH else create_postgres_database()


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    opened = open_store(database_url(request.param, tmp_path))
    yield opened
    opened.close()
