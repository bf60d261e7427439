"""What the job page reads of a job's tries: the same from the ledger while the job runs as from its report once
it ended, whatever the job went through; and how the timeline draws a job of more tries than fit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from batchpoint.runtime.job_report import write_job_report
from batchpoint.runtime.layout import PROCESSED_MINI_BATCHES, LogLayout
from batchpoint.runtime.ledger import RUN_DONE, Attempt, Ledger, Success, TryEnd
from batchpoint.runtime.report import Counts, JobOutcome
from batchpoint.runtime.spec import JobSpec
from batchpoint.runtime.status import JobStatus
from batchpoint.store import open_store
from batchpoint.web.charts import BARS, BARS_PER_LANE, span_of, throughput, timeline
from batchpoint.web.job_view import TryState, failed_files, ledger_tries, preview, report_tries
from tests.store.conftest import database_url

START = 1_800_000_000.0


def ended_job(ledger: Ledger) -> None:
    """Four mini-batches on two workers: one succeeds, one is retried after a timeout and succeeds, one fails
    both its tries (its second on a process that replaced the first), one never ends (the server died in it)."""
    ledger.plan("j", [["/in/a.txt", "/in/b.txt"], ["/in/c.txt"], ["/in/d.txt"], ["/in/e.txt"]])
    ledger.record_tries(
        "j",
        [Attempt(i, 1, f"w{i % 2}", "0", f"process00{i % 2}", started=START + i) for i in range(4)],
        [Success(0, 1, 2, 0, TryEnd(RUN_DONE, START, 1.0))],
    )
    ledger.record_failed_try("j", 1, 1, "timed out", TryEnd("RUN_TIMEOUT", START + 1, 30.0))
    ledger.record_failed_try(
        "j", 2, 1, "Traceback (most recent call last):\nValueError: bad d", TryEnd("RUN_EXCEPTION", START + 2, 0.5)
    )
    ledger.record_tries(
        "j",
        [Attempt(1, 2, "w0", "0", "process000", started=START + 31),
         Attempt(2, 2, "w2", "0", "process002", started=START + 3)],
        [Success(1, 2, 1, 0, TryEnd(RUN_DONE, START + 31, 2.0))],
    )  # fmt: skip
    ledger.record_failed_try("j", 2, 2, "ValueError: bad d again", TryEnd("RUN_EXCEPTION", START + 3, 0.25))
    ledger.mark_exhausted("j", 2)


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    """The ledger of the embedded database, and of the PostgreSQL database replicas share."""
    store = open_store(database_url(request.param, tmp_path))
    yield store.ledger()
    store.close()


def test_the_ledger_and_the_report_show_the_same_tries(shared_ledger: Ledger, tmp_path: Path) -> None:
    ledger = shared_ledger
    ended_job(ledger)
    live = ledger_tries(ledger, "j")
    assert live is not None
    layout = LogLayout(tmp_path / "logs")
    outcome = JobOutcome(JobStatus.COMPLETED, "", Counts(), None)
    write_job_report(layout, ledger.mini_batches("j"), ledger.attempts("j"), outcome)

    ended = report_tries(layout.root)

    assert [attempt for attempt in live if attempt.state != TryState.RUNNING] == ended
    assert [(attempt.index, attempt.try_number, attempt.state) for attempt in live] == [
        (0, 1, TryState.SUCCEEDED),
        (1, 1, TryState.TIMED_OUT),
        (1, 2, TryState.SUCCEEDED),
        (2, 1, TryState.RETRIED),
        (2, 2, TryState.FAILED),
        (3, 1, TryState.RUNNING),
    ]
    spec = JobSpec(job_id="j", input_paths=[Path("/in")], output_dir=tmp_path)
    failures, total = failed_files(ended or [], spec, ["user/error/0/process002.txt"])
    assert total == 1 and [(f.file, f.error, f.tries, f.log) for f in failures] == [
        ("d.txt", "ValueError: bad d again", 2, "user/error/0/process002.txt")
    ]
    span = span_of(live, START, None, START + 40)
    drawn = timeline(live, span, START + 40, spec.input_paths)
    assert [lane.name for lane in drawn.lanes] == ["node 0 process000", "node 0 process001", "node 0 process002"]
    assert (drawn.tries, drawn.failed, sum(len(lane.bars) for lane in drawn.lanes)) == (6, 3, 6)
    assert throughput(live, span).items == 2 + 1 + 1  # the running one's file is not done


def test_a_lane_of_more_tries_than_fit_is_drawn_in_slices_that_count_them_all(tmp_path: Path) -> None:
    ledger = open_store(f"sqlite:///{tmp_path / 'ledger.db'}").ledger()
    count = BARS_PER_LANE * 4
    ledger.plan("j", ([f"/in/{index}.txt"] for index in range(count)))
    ledger.record_tries(
        "j",
        [Attempt(index, 1, "w", "0", "process000", started=START + index) for index in range(count)],
        [Success(index, 1, 1, 0, TryEnd(RUN_DONE, START + index, 0.5)) for index in range(count)],
    )
    tries = ledger_tries(ledger, "j") or []
    drawn = timeline(tries, span_of(tries, START, START + count, START + count), START + count)
    (lane,) = drawn.lanes
    assert drawn.aggregated and len(lane.bars) == BARS_PER_LANE
    assert sum(bar.tries for bar in lane.bars) == count
    assert lane.bars[0].label.startswith("4 tries of node 0 process000") and "4 succeeded" in lane.bars[0].label


def test_many_workers_share_the_bars(tmp_path: Path) -> None:
    ledger = open_store(f"sqlite:///{tmp_path / 'ledger.db'}").ledger()
    workers, each = 30, 60
    count = workers * each
    ledger.plan("j", ([f"/in/{index}.txt"] for index in range(count)))
    ledger.record_tries(
        "j",
        [Attempt(i, 1, "w", "0", f"process{i % workers:03d}", started=START + i // workers) for i in range(count)],
        [Success(i, 1, 1, 0, TryEnd(RUN_DONE, START + i // workers, 0.5)) for i in range(count)],
    )
    tries = ledger_tries(ledger, "j") or []
    drawn = timeline(tries, span_of(tries, START, START + each, START + each), START + each)
    assert len(drawn.lanes) == workers and drawn.per_lane == BARS // workers < each
    assert sum(len(lane.bars) for lane in drawn.lanes) <= BARS and drawn.tries == count


def test_the_preview_splits_rows_into_columns_when_they_all_split_alike(tmp_path: Path) -> None:
    spec = JobSpec(job_id="j", input_paths=[Path("/in")], output_dir=tmp_path)
    (tmp_path / "predictions.csv").write_text("".join(f"f{n}.txt 0.{n}\n" for n in range(30)))
    shown = preview(spec, tmp_path, ["predictions.csv"])
    assert (
        shown is not None
        and shown.more
        and shown.columns == 2
        and shown.rows[:2] == [["f0.txt", "0.0"], ["f1.txt", "0.1"]]
    )
    (tmp_path / "predictions.csv").write_text("['a', 1]\nplain\n")
    assert preview(spec, tmp_path, ["predictions.csv"]).rows == [["['a', 1]"], ["plain"]]  # type: ignore[union-attr]


def test_a_report_of_other_columns_or_none_shows_no_tries(tmp_path: Path) -> None:
    report = tmp_path / PROCESSED_MINI_BATCHES
    assert report_tries(tmp_path) is None
    report.parent.mkdir(parents=True)
    report.write_text("")
    assert report_tries(tmp_path) is None
    report.write_text("Mini-batch Id,Status\n0,RUN_DONE\n")
    assert report_tries(tmp_path) is None
