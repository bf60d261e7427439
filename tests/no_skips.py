"""A pytest plugin of the suite (tests/conftest.py): a test that skips fails instead."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

ALLOW_SKIPS = os.environ.get("BATCHPOINT_ALLOW_SKIPS") == "1"
"""A test that skips fails instead: what tests skip without (PostgreSQL, Node.js for Azurite, Chromium, Ray, pyenv's
Python 3.8, root) is on every machine that runs ``make test`` in CI, so a skip there is something missing, not a
pass. A developer without some of it sets ``BATCHPOINT_ALLOW_SKIPS=1``."""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    _fail_if_skipped(outcome.get_result())  # type: ignore[attr-defined]


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    outcome = yield
    _fail_if_skipped(outcome.get_result())  # type: ignore[attr-defined]


def _fail_if_skipped(report: pytest.TestReport | pytest.CollectReport) -> None:
    if ALLOW_SKIPS or not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = f"Skipped, which make test does not allow (BATCHPOINT_ALLOW_SKIPS=1 allows it): {reason}"
