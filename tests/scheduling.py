"""The longest test modules start first, so that no long module is left running alone at the end of a parallel run;
modules that share an expensive session fixture run in one test process, which then starts it once.

pytest-xdist's ``--dist loadfile`` hands out modules in collection order (we turn off its reordering by test
count, which sends a module of two long tests last). Modules are collected longest first by the seconds recorded
in ``tests/module_seconds.json``; a module not recorded yet counts as an average one. ``make test-durations``
records them again (``BATCHPOINT_RECORD_DURATIONS=1``: the sum of each module's setup, call and teardown times).
"""

from __future__ import annotations

import json
import os
import statistics
from collections import defaultdict
from pathlib import Path

import pytest
from xdist.scheduler import LoadFileScheduling

RECORD = Path(__file__).with_name("module_seconds.json")
ONE_PROCESS = {
    "tests/runtime/test_ray_executor.py": "the Ray cluster",
    "tests/sdk/test_ray_compute.py": "the Ray cluster",
    "tests/web/test_pages.py": "Chromium",
    "tests/web/test_job_page.py": "Chromium",
    "tests/web/test_job_list.py": "Chromium",
    "tests/web/test_pipeline_graph.py": "Chromium",
}
"""Modules scheduled as one unit, by what they share (the session fixtures ``ray_cluster`` and ``browser``)."""


def module_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def recorded_seconds() -> dict[str, float]:
    return json.loads(RECORD.read_text()) if RECORD.exists() else {}


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    seconds = recorded_seconds()
    unknown = statistics.median(seconds.values()) if seconds else 0.0
    items.sort(key=lambda item: -seconds.get(module_of(item.nodeid), unknown))  # stable: a module stays in order


class SharedFixtureScheduling(LoadFileScheduling):
    """``--dist loadfile``, with the modules of ``ONE_PROCESS`` handed out together."""

    def _split_scope(self, nodeid: str) -> str:
        module = super()._split_scope(nodeid)
        return ONE_PROCESS.get(module, module)


@pytest.hookimpl(optionalhook=True)  # xdist's hook: `pytest -p no:xdist` runs without it
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> LoadFileScheduling | None:
    return SharedFixtureScheduling(config, log) if config.getvalue("dist") == "loadfile" else None


class DurationRecorder:
    """Sums each module's phase durations as the reports arrive (in the controller, from every worker)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.seconds[module_of(report.nodeid)] += report.duration

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if hasattr(session.config, "workerinput"):
            return  # a worker: the controller sees every report and writes the file once
        rounded = {module: round(total, 1) for module, total in sorted(self.seconds.items())}
        RECORD.write_text(json.dumps(rounded, indent=1) + "\n")


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("BATCHPOINT_RECORD_DURATIONS"):
        config.pluginmanager.register(DurationRecorder(), "batchpoint-duration-recorder")
