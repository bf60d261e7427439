"""DEVIATIONS.md names code and tests that exist: each file it cites, each name it says a file holds, each test."""

from __future__ import annotations

import re

from tests.spec import REPOSITORY

DEVIATIONS = (REPOSITORY / "DEVIATIONS.md").read_text()


def test_every_cited_test_exists() -> None:
    cited = re.findall(r"`(tests/[\w/]+\.py)(?:::(\w+))?`", DEVIATIONS)
    assert cited
    for path, test in cited:
        assert (REPOSITORY / path).is_file(), path
        assert not test or f"def {test}(" in (REPOSITORY / path).read_text(), f"{path}::{test}"


def test_every_cited_name_is_in_its_file() -> None:
    for cell in re.findall(r"\| ([^|]*`src/[^|]*) \|", DEVIATIONS):
        for names, path in re.findall(r"((?:`[\w.]+`(?:, )?)+) in `(src/[\w/]+\.py)`", cell):
            source = (REPOSITORY / path).read_text()
            for name in re.findall(r"`([\w.]+)`", names):
                assert name.rsplit(".", 1)[-1] in source, f"{name} in {path}"
