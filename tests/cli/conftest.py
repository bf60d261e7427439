"""Shared by the CLI tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.warm import CLI_MODULES, Warm


@pytest.fixture(scope="session")
def warm_batchpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """The argv prefix of a ``batchpoint`` command run in a process forked from a warm one (tests/warm.py)."""
    warm = Warm(tmp_path_factory.mktemp("cli"), CLI_MODULES)
    yield warm.command()
    warm.stop()
