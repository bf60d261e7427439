"""docs/coverage.md is what ``make coverage`` writes today: the spec's operations against the served ones."""

from __future__ import annotations

from tests.spec_coverage import COVERAGE, render


def test_the_coverage_page_is_current() -> None:
    assert COVERAGE.read_text() == render(), "docs/coverage.md is stale: run make coverage"
