"""The rows log behind append_row: group commit, recovery after a crash, and the final file (Decisions 6, 7)."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchpoint.runtime.output import (
    AppendRowOutput,
    MissingRowsError,
    remove_private_dir,
)
from batchpoint.runtime.spec import JobSpec


def spec(tmp_path: Path) -> JobSpec:
    return JobSpec(job_id="job", input_paths=[], output_dir=tmp_path)


def test_rows_become_committed_and_are_written_in_mini_batch_order(tmp_path: Path) -> None:
    output = AppendRowOutput(spec(tmp_path))
    for index in (2, 0, 1):
        output.add(index, f"row {index}\n".encode())
    committed = output.committed() + output.flush()

    written = output.write([0, 1, 2])

    assert sorted(committed) == [0, 1, 2] and output.flush() == []
    assert written.read_text() == "row 0\nrow 1\nrow 2\n"
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
    log = spec(tmp_path).private_dir / "rows.log"
    complete = log.stat().st_size
    with open(log, "ab") as torn:
        torn.write(b"BPR1\x00\x00")

    after = AppendRowOutput(spec(tmp_path))
    after.add(2, b"two\n")
    after.flush()

    assert after.write([0, 1, 2]).read_text() == "second try of 0\none\ntwo\n"
    assert log.stat().st_size == complete + 24 + 4
    after.close()


def test_a_corrupt_record_and_everything_after_it_are_dropped(tmp_path: Path) -> None:
    before = AppendRowOutput(spec(tmp_path))
    before.add(0, b"zero\n")
    before.add(1, b"one\n")
    before.close()
    log = spec(tmp_path).private_dir / "rows.log"
    data = bytearray(log.read_bytes())
    data[-2] ^= 0xFF
    log.write_bytes(bytes(data))

    after = AppendRowOutput(spec(tmp_path))

    with pytest.raises(MissingRowsError, match="mini-batch 1"):
        after.write([0, 1])
    assert after.write([0]).read_text() == "zero\n"
    after.close()


def test_an_output_written_before_a_crash_is_kept(tmp_path: Path) -> None:
    (tmp_path / "predictions.csv").write_text("final\n")
    output = AppendRowOutput(spec(tmp_path))

    assert output.write([]).read_text() == "final\n"
    output.close()
    remove_private_dir(spec(tmp_path))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["predictions.csv"]
