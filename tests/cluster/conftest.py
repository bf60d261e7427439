from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.replicas import Replicas, replica
from tests.conftest import database_url_for


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[Replicas]:
    """Two replicas on a fresh PostgreSQL database (skipped without one), started one after the other."""
    database_url = database_url_for("postgresql")
    assert database_url is not None
    shared = tmp_path / "shared"
    shared.mkdir()
    pair = Replicas(
        replica(tmp_path / "a", database_url, shared).start(),
        replica(tmp_path / "b", database_url, shared).start(),
        shared,
    )
    yield pair
    pair.stop()
