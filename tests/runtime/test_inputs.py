"""Decision 5: input listing (recursive, sorted, hidden skipped; a file is one item) and mini-batch planning."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from batchpoint.runtime.inputs import (
    InputNotFoundError,
    iter_input_files,
    plan_mini_batches,
)
from tests.runtime.conftest import ECHO, Kit, lines


def test_a_folder_is_walked_recursively_sorted_by_relative_path_without_hidden_files(kit: Kit) -> None:
    kit.inputs("b.txt", "a/z.txt", "a-c.txt", "a/b/y.txt", "10.txt", "9.txt", ".hidden", ".git/config", "a/.secret")
    os.symlink(kit.input_dir / "a", kit.input_dir / "link-to-a")

    listed = list(iter_input_files([kit.input_dir]))

    relative = [os.path.relpath(path, kit.input_dir) for path in listed]
    assert relative == ["10.txt", "9.txt", "a/b/y.txt", "a/z.txt", "a-c.txt", "b.txt"]
    assert all(os.path.isabs(path) for path in listed)


def test_a_link_that_loops_is_skipped_as_a_broken_one_is(kit: Kit) -> None:
    """Before, `ln -s self self` in the input failed the job "outside its scoring script", with no job logs; so did
    a link through a file, or to a name too long."""
    kit.inputs("a.csv")
    os.symlink("self", kit.input_dir / "self")
    os.symlink("missing", kit.input_dir / "broken")
    os.symlink("a.csv/old", kit.input_dir / "through-a-file")  # ENOTDIR
    os.symlink("x" * 300, kit.input_dir / "too-long")  # ENAMETOOLONG
    kit.script(ECHO)

    outcome = kit.run()

    kit.check(outcome, "Completed", 0, [1], lines("a.csv"))


def test_a_folder_that_cannot_be_listed_fails_the_job_naming_it(kit: Kit) -> None:
    """Here a folder whose path is longer than the system's limit (PATH_MAX): the job fails as one whose input is
    missing does, its logs saying which folder and why, instead of "outside its scoring script" without logs."""
    kit.inputs("a.csv")
    deep = os.open(kit.input_dir, os.O_RDONLY)
    for _ in range(20):  # 20 x 251 characters: past the 4,096 of a path
        os.mkdir("d" * 250, dir_fd=deep)
        deeper = os.open("d" * 250, os.O_RDONLY, dir_fd=deep)
        os.close(deep)
        deep = deeper
    os.close(deep)
    kit.script(ECHO)

    outcome = kit.run()

    assert outcome.status == "Failed"
    assert "cannot be listed: File name too long" in outcome.message
    assert "cannot be listed" in kit.log("job_result.txt")
    assert kit.ledger.mini_batches("job") is None


def test_a_file_is_one_item_and_inputs_keep_their_order(kit: Kit) -> None:
    first, second = kit.inputs("x/2.txt", "1.txt")

    assert list(iter_input_files([first, second])) == [str(first), str(second)]


def test_a_missing_input_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError, match="nowhere"):
        list(iter_input_files([tmp_path / "nowhere"]))


def test_mini_batches_are_consecutive_runs_of_the_size() -> None:
    files = (f"/f{index}" for index in range(7))

    assert list(plan_mini_batches(files, 3)) == [("/f0", "/f1", "/f2"), ("/f3", "/f4", "/f5"), ("/f6",)]
    assert list(plan_mini_batches([], 3)) == []


def test_a_uri_file_input_is_one_mini_batch_of_one_path(kit: Kit) -> None:
    (single,) = kit.inputs("only.csv")
    kit.script(ECHO)

    outcome = kit.run(input_paths=[single])

    kit.check(outcome, "Completed", 0, [1], lines("only.csv"))
    assert [batch.files for batch in kit.batches()] == [(str(single),)]


def test_an_empty_input_completes_with_an_empty_output_and_says_so(kit: Kit) -> None:
    kit.input_dir.mkdir()
    kit.inputs(".only-hidden")
    kit.script(ECHO)

    outcome = kit.run()

    kit.check(outcome, "Completed", 0, [], "")
    assert "no files" in outcome.message
    assert (outcome.counts.mini_batches_total, outcome.counts.items_total) == (0, 0)


def test_a_missing_input_fails_the_job_with_its_path(kit: Kit) -> None:
    kit.script(ECHO)

    outcome = kit.run(input_paths=[kit.root / "missing"])

    assert outcome.status == "Failed"
    assert str(kit.root / "missing") in outcome.message
    assert "missing" in kit.log("job_result.txt")
    assert kit.ledger.mini_batches("job") is None
    assert kit.predictions() is None
