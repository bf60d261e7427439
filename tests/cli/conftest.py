"""Shared by the CLI tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cli import warm


@pytest.fixture(scope="module")
def warm_batchpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """The argv prefix of a ``batchpoint`` command run in a process forked from a warm one (tests/cli/warm.py)."""
    with warm.warm_cli(tmp_path_factory.mktemp("cli")) as path:
        yield warm.command(path)
