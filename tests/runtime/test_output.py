"""The rows logs behind append_row: group commit, recovery after a crash, writers of several generations, the
final file committed once (Decisions 6, 7), and the job's folder lock."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from batchpoint.runtime.output import (
    RECORD,
    AppendRowOutput,
    JobAlreadyRunningError,
    JobLock,
    JobLockLost,
    MissingRowsError,
    remove_private_dir,
)
from batchpoint.runtime.spec import JobSpec


def spec(tmp_path: Path) -> JobSpec:
    return JobSpec(job_id="job", input_paths=[], output_dir=tmp_path)


def log_of(tmp_path: Path, generation: int = 0) -> Path:
    return spec(tmp_path).private_dir / f"rows.{generation}.log"


def nothing() -> None:
    """A commit nobody refuses."""


def test_rows_become_committed_and_are_written_in_mini_batch_order(tmp_path: Path) -> None:
    output = AppendRowOutput(spec(tmp_path))
    for index in (2, 0, 1):
        output.add(index, f"row {index}\n".encode())
    committed = output.committed() + output.flush()

    written = output.write([0, 1, 2], nothing)

    assert sorted(committed) == [0, 1, 2] and output.flush() == []
    assert written.read_text() == "row 0\nrow 1\nrow 2\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == [".batchpoint", "predictions.csv"]
    output.close()


def test_after_a_crash_the_last_complete_record_of_each_mini_batch_counts_and_a_torn_tail_is_cut(
    tmp_path: Path,
) -> None:
    before = AppendRowOutput(spec(tmp_path))
    before.add(0, b"first try of 0\n")
    before.add(1, b"one\n")
    before.add(0, b"second try of 0\n")
    before.flush()
    before.close()
    log = log_of(tmp_path)
    complete = log.stat().st_size
    with open(log, "ab") as torn:
        torn.write(b"BPR1\x00\x00")

    after = AppendRowOutput(spec(tmp_path))
    after.add(2, b"two\n")
    after.flush()

    assert after.write([0, 1, 2], nothing).read_text() == "second try of 0\none\ntwo\n"
    assert log.stat().st_size == complete + RECORD.size + 4
    after.close()


def test_a_corrupt_record_and_everything_after_it_are_dropped(tmp_path: Path) -> None:
    before = AppendRowOutput(spec(tmp_path))
    before.add(0, b"zero\n")
    before.add(1, b"one\n")
    before.close()
    log = log_of(tmp_path)
    data = bytearray(log.read_bytes())
    data[-2] ^= 0xFF
    log.write_bytes(bytes(data))

    after = AppendRowOutput(spec(tmp_path))

    with pytest.raises(MissingRowsError, match="mini-batch 1"):
        after.write([0, 1], nothing)
    assert after.write([0], nothing).read_text() == "zero\n"
    after.close()


@pytest.mark.parametrize("damage", ["rows", "header"])
def test_a_record_damaged_after_it_was_read_fails_the_copy_instead_of_going_into_the_output(
    tmp_path: Path, damage: str
) -> None:
    output = AppendRowOutput(spec(tmp_path))
    output.add(0, b"zero\n")
    output.add(1, b"one\n")
    output.flush()
    record_1 = RECORD.size + len(b"zero\n")
    with open(log_of(tmp_path), "r+b") as log:  # what a writer that lost the job's lock could do
        log.seek(record_1 + (RECORD.size if damage == "rows" else 0))
        log.write(b"XX")

    with pytest.raises(MissingRowsError, match="mini-batch 1"):
        output.write([0, 1], nothing)

    assert sorted(path.name for path in tmp_path.iterdir()) == [".batchpoint"], "no output, no temporary file"
    output.close()


def test_a_newer_writer_reads_the_older_writers_rows_and_its_own_records_win(tmp_path: Path) -> None:
    older = AppendRowOutput(spec(tmp_path), generation=3)
    older.add(0, b"zero\n")
    older.add(1, b"one, not recorded in the ledger\n")
    older.flush()

    newer = AppendRowOutput(spec(tmp_path), generation=4)
    newer.add(1, b"one\n")
    older.add(2, b"two, from the older writer after the newer one started\n")
    older.flush()
    newer.add(2, b"two\n")
    newer.flush()

    assert newer.write([0, 1, 2], nothing).read_text() == "zero\none\ntwo\n"
    older.close()
    newer.close()
    (tmp_path / "predictions.csv").unlink()
    latest = AppendRowOutput(spec(tmp_path), generation=5)  # reads both logs: the newer one's records win
    assert latest.write([0, 1, 2], nothing).read_text() == "zero\none\ntwo\n"
    latest.close()


def test_an_output_file_name_of_255_bytes_is_written(tmp_path: Path) -> None:
    """The longest name a file can have: the output is written beside its private copy, not under a name longer
    than its own (`.NAME.JOB.GENERATION.tmp` could not be created, and the job failed at its very end)."""
    name = "p" * 251 + ".csv"
    output = AppendRowOutput(JobSpec(job_id="job", input_paths=[], output_dir=tmp_path, output_file_name=name))
    output.add(0, b"row\n")
    output.flush()

    written = output.write([0], nothing)

    assert written == tmp_path / name and written.read_text() == "row\n"
    output.close()


def test_an_output_is_committed_once_a_second_committer_keeps_the_first(tmp_path: Path) -> None:
    first, second = AppendRowOutput(spec(tmp_path), generation=1), AppendRowOutput(spec(tmp_path), generation=2)
    first.add(0, b"rows\n")
    first.flush()
    second.add(0, b"rows\n")
    second.flush()
    committed: list[int] = []

    def first_commits_meanwhile() -> None:  # the second committer checked, then the first committed
        first.write([0], nothing)
        committed.append(os.stat(tmp_path / "predictions.csv").st_ino)

    written = second.write([0], first_commits_meanwhile)

    assert written.read_text() == "rows\n"
    assert os.stat(written).st_ino == committed[0], "the first commit stays in place"
    assert not [path for path in tmp_path.iterdir() if path.name.endswith(".tmp")]
    first.close()
    second.close()


def test_a_refused_commit_leaves_no_output(tmp_path: Path) -> None:
    output = AppendRowOutput(spec(tmp_path), generation=1)
    output.add(0, b"rows\n")
    output.flush()

    def refuse() -> None:
        raise JobLockLost("taken over")

    with pytest.raises(JobLockLost):
        output.write([0], refuse)
    assert sorted(path.name for path in tmp_path.iterdir()) == [".batchpoint"]
    output.close()


def test_an_output_written_before_a_crash_is_kept(tmp_path: Path) -> None:
    (tmp_path / "predictions.csv").write_text("final\n")
    output = AppendRowOutput(spec(tmp_path))

    assert output.write([], nothing).read_text() == "final\n"
    output.close()
    remove_private_dir(spec(tmp_path))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["predictions.csv"]


def test_a_newer_generation_takes_the_folder_lock_over_and_the_older_holder_finds_it_lost(tmp_path: Path) -> None:
    with JobLock(spec(tmp_path), generation=1) as older:
        with pytest.raises(JobAlreadyRunningError):
            JobLock(spec(tmp_path), generation=1).__enter__()

        with JobLock(spec(tmp_path), generation=2) as newer:
            assert newer.held() and not older.held()
            with pytest.raises(JobLockLost):
                older.check()
            with pytest.raises(JobLockLost):
                JobLock(spec(tmp_path), generation=1).__enter__()
    assert sorted(path.name for path in spec(tmp_path).private_dir.iterdir()) == ["lock"]


def test_a_removed_folder_lock_is_lost(tmp_path: Path) -> None:
    with JobLock(spec(tmp_path), generation=1) as lock:
        remove_private_dir(spec(tmp_path))
        assert not lock.held()
