"""The job's logs laid out as Azure's (docs/runtime.md, "The job's logs"): every file a user following Azure's
troubleshooting page looks for, with the documented content, for a job whose run() fails and one whose init()
fails."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from batchpoint.runtime.layout import README_TEXT, LogLayout
from batchpoint.runtime.perf import NODE_COLUMNS
from batchpoint.runtime.report import Counts, ProgressOverview, read_failed_items
from tests.runtime.conftest import Kit, lines, report

RAISES_ON_BAD = """
import os

def run(mini_batch):
    names = [os.path.basename(path) for path in mini_batch]
    if "bad.txt" in names:
        raise ValueError(f"cannot score {names}")
    return names
"""
INIT_RAISES = """
def init():
    raise RuntimeError("no model here")

def run(mini_batch):
    return mini_batch
"""
STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}"
CLOCK = r"\d+:\d\d:\d\d"
OVERVIEW_LINE = re.compile(
    rf"{STAMP} (Scheduling finished\. Scheduled \d+ mini batches in \d+ seconds\. There are \d+ tasks with \d+ "
    rf"items\.|No task has been processed yet\.|Processed \d+ of \d+ mini batches in {CLOCK}\."
    rf"( Estimated remaining time {CLOCK}\.)? Mini-batches: .*|The job ended: \w+\. See job_result\.txt\.)"
)


def listed_in_readme(kit: Kit) -> None:
    """Every file the job wrote is one that readme.txt describes."""
    readme = kit.log("readme.txt")
    assert readme == README_TEXT
    logs = kit.output_dir / "logs"
    for path in logs.rglob("*"):
        if path.is_file():
            described = re.sub(r"/\d+/", "/<node>/", path.relative_to(logs).as_posix())
            described = re.sub(r"process\d{3}", "<process>", described)
            described = re.sub(r"\.\d{10}\.", ".<YYYYMMDDHH>.", described)
            assert described in readme, described


def test_a_job_whose_run_fails_writes_each_file_of_azures_layout(kit: Kit) -> None:
    kit.inputs("a.txt", "b.txt", "bad.txt", "c.txt", "d.txt", "e.txt")
    kit.script(RAISES_ON_BAD)

    outcome = kit.run(max_retries=1, error_threshold=0)

    kit.check(outcome, "Failed", 2, [1, 2, 1], None)
    assert outcome.message.splitlines()[0].endswith("See logs/job_error.txt.")
    listed_in_readme(kit)
    rows = report(kit.output_dir / "logs")
    assert [(row["Mini-batch Id"], row["Picked Count"], row["Status"]) for row in rows] == [
        ("0", "1", "RUN_DONE"),
        ("1", "1", "RUN_EXCEPTION"),
        ("1", "2", "RUN_EXCEPTION"),
        ("2", "1", "RUN_DONE"),
    ]
    for row in rows:
        assert (row["Node Id"], row["Process"], row["Total"]) == ("0", "process000", "2")
        assert int(row["Succeeded"]) + int(row["Failed"]) == 2
        datetime.strptime(row["Start Time"], "%Y-%m-%dT%H:%M:%S.%f")
        assert 0 <= float(row["Run Method Seconds"]) <= float(row["Elapsed Seconds"]) < 10
        assert float(row["Process Seconds"]) >= 0
    failed = rows[1]
    assert (failed["Succeeded"], failed["Failed"], failed["Error Category"]) == ("0", "2", "ValueError")
    assert failed["Error Message"] == "ValueError: cannot score ['bad.txt', 'c.txt']"
    assert failed["Mini-batch Detail"] == f'{{"files": ["{kit.input_dir / "bad.txt"}", "{kit.input_dir / "c.txt"}"]}}'
    job_error = kit.log("job_error.txt")
    assert job_error.startswith(f"The job ended Failed: {outcome.message.splitlines()[0]}")
    assert (
        "1. RUN_EXCEPTION: ValueError: cannot score ['bad.txt', 'c.txt']\n   2 times; first mini-batch 1, try 1"
        in job_error
    )
    assert str(kit.input_dir / "bad.txt") in job_error
    assert "Details: logs/user/error/0/process000.txt" in job_error
    assert "Traceback (most recent call last):" in job_error and "score.py" in job_error
    assert kit.log("user/error.txt") in job_error
    tracebacks = kit.log("user/error/0/process000.txt")
    assert tracebacks.count("Traceback (most recent call last):") == 2 and str(kit.input_dir / "bad.txt") in tracebacks
    assert kit.log("job_result.txt").endswith(
        "See logs/job_error.txt for a summary of the errors and logs/readme.txt for the layout of the logs.\n"
    )
    assert kit.log("failed_items.txt") == lines(str(kit.input_dir / "bad.txt"), str(kit.input_dir / "c.txt"))
    overview = kit.overview().splitlines()
    assert all(OVERVIEW_LINE.fullmatch(line) for line in overview), overview
    assert "Scheduled 3 mini batches" in overview[0] and "Processed 3 of 3" in overview[-2]
    assert re.fullmatch(
        r"job_progress_overview\.\d{10}\.txt", *[p.name for p in kit.output_dir.glob("logs/job_progress_*")]
    )
    main = kit.log("sys/node/0/_main.txt")
    assert re.search(
        rf"{STAMP} process000 started \(pid \d+\)\.\n{STAMP} process000 exits with returncode 0\.\n$", main
    )
    role = kit.log("sys/master_role.txt")
    assert "The job started: 3 mini-batches of up to 2 files (6 items), on 1 node(s) of 1 process(es)." in role
    assert "Job Failed: The number of failed items is 2" in role
    streamed = kit.log("user_logs/std_log.txt")
    assert "failed on try 1 of 2 (exception in process000 on node 0" in streamed
    machine = kit.log("perf/0/node_resource_usage.csv").splitlines()
    assert machine[0] == ",".join(NODE_COLUMNS) and len(machine) == 2  # sampled as the worker started
    assert re.fullmatch(
        rf"{STAMP},0,process000,\d+,[\d.]+,[\d.]+,[\d.]+,\d+",
        kit.log("perf/0/processes_resource_usage.csv").splitlines()[1],
    )
    assert "Details: logs/user/error/0/process000.txt" in streamed


def test_an_exception_whose_message_spans_lines_is_named_by_its_class_and_first_line(kit: Kit) -> None:
    """Before, the one-line forms (the CSV's `Error Message` and `Error Category`, `job_error.txt`'s titles,
    `std_log.txt`) took the message's last line: `line3` for `ValueError('bad thing\\nline2 ü\\nline3')`."""
    kit.inputs("a.txt")
    kit.script(
        "def run(mini_batch):\n    try:\n        {}['model']\n    except KeyError:\n"
        "        raise ValueError('bad thing\\nline2 ü\\n\\tline3')\n"
    )

    kit.run(max_retries=0)

    [row] = report(kit.output_dir / "logs")
    assert (row["Error Category"], row["Error Message"]) == ("ValueError", "ValueError: bad thing")
    assert "1. RUN_EXCEPTION: ValueError: bad thing\n" in kit.log("job_error.txt")
    assert "(exception in process000 on node 0" in kit.log("user_logs/std_log.txt")
    assert "): ValueError: bad thing Details: logs/user/error/0/process000.txt" in kit.log("user_logs/std_log.txt")
    assert "KeyError: 'model'" in kit.log("job_error.txt")  # the chained traceback is kept whole


def test_failed_items_lists_a_name_a_line_and_quotes_those_holding_a_line_break(kit: Kit) -> None:
    """A name holding a line break (any that str.splitlines() splits on) is a JSON string on its line, and the
    list reads back exactly. Before, `x\\ny.txt` spanned two lines and read back as two names (its job's rerun
    failed), and `win\\rfile.txt` as `win` and `file.txt` (the rerun lost it)."""
    odd = ["x\ny.txt", "win\rfile.txt", "a\u2028b.txt", "v\x0bf\x0cg\x1ch\x1di\x1ej\x85k\u2029.txt"]
    plain = ["plain.txt", "ü.txt", '"q.txt', os.fsdecode(b"caf\xe9.txt")]
    kit.inputs(*plain[:3], *odd)
    (kit.input_dir / plain[3]).write_text("bytes not UTF-8 in its name")
    kit.script("def run(mini_batch):\n    raise ValueError('no')\n")

    kit.run(max_retries=0, mini_batch_size=1)

    listed = (kit.output_dir / "logs" / "failed_items.txt").read_text(errors="surrogateescape")
    paths = sorted(str(kit.input_dir / name) for name in [*plain, *odd])
    assert read_failed_items(kit.spec()) == paths
    assert listed.splitlines() == listed.split("\n")[:-1]  # each line ends with "\\n", whatever reads them
    assert {str(kit.input_dir / name) for name in plain} < set(listed.splitlines())  # as they are
    assert f'"{kit.input_dir}/x\\ny.txt"' in listed.splitlines()
    assert f'"{kit.input_dir}/v\\u000bf\\fg\\u001ch\\u001di\\u001ej\\u0085k\\u2029.txt"' in listed.splitlines()


def test_a_job_whose_init_fails_names_it_and_runs_no_mini_batch(kit: Kit) -> None:
    kit.inputs("a.txt", "b.txt", "c.txt")
    kit.script(INIT_RAISES)

    outcome = kit.run(max_retries=1, max_concurrency_per_instance=2)

    kit.check(outcome, "Failed", 0, [0, 0], None)
    listed_in_readme(kit)
    rows = report(kit.output_dir / "logs")
    assert [(row["Mini-batch Id"], row["Picked Count"], row["Status"]) for row in rows] == [
        ("0", "N/A", "NOT_PROCESSED"),
        ("1", "N/A", "NOT_PROCESSED"),
    ]
    assert [(row["Total"], row["Succeeded"], row["Failed"]) for row in rows] == [("2", "0", "2"), ("1", "0", "1")]
    errors = sorted(path.name for path in (kit.output_dir / "logs" / "user" / "error" / "0").iterdir())
    assert errors == ["process000.txt", "process001.txt", "process002.txt", "process003.txt"]  # a new number each
    for name in errors:
        assert kit.log(f"user/error/0/{name}").count("RuntimeError: no model here") == 1
    job_error = kit.log("job_error.txt")
    assert "1. init() failed: RuntimeError: no model here\n   4 times; first in process000 on node 0" in job_error
    assert "Details: logs/user/error/0/process000.txt" in job_error and "in init" in job_error
    assert "The last error (logs/user/error/0/process00" in outcome.message
    assert kit.log("sys/master_role.txt").count("init() failed in process") == 4
    assert kit.log("failed_items.txt") == lines(*(str(kit.input_dir / name) for name in ("a.txt", "b.txt", "c.txt")))


def test_a_completed_job_has_no_error_summary_and_no_resource_samples_when_turned_off(kit: Kit) -> None:
    kit.inputs("a.txt", "b.txt", "c.txt")
    kit.script("def run(mini_batch):\n    return mini_batch\n")

    outcome = kit.run(resource_monitor_seconds=0)

    assert outcome.status == "Completed"
    assert [row["Status"] for row in report(kit.output_dir / "logs")] == ["RUN_DONE", "RUN_DONE"]
    assert not (kit.output_dir / "logs" / "perf").exists()
    assert not (kit.output_dir / "logs" / "job_error.txt").exists()
    assert not (kit.output_dir / "logs" / "user" / "error.txt").exists()
    assert kit.log("job_result.txt").endswith("See logs/readme.txt for the layout of the logs.\n")


def test_the_progress_overview_starts_a_new_file_each_utc_day_and_a_resumed_job_goes_on_with_todays(
    tmp_path: Path,
) -> None:
    now = [datetime(2024, 5, 1, 23, 59, tzinfo=UTC)]
    layout = LogLayout(tmp_path)
    overview = ProgressOverview(layout, clock=lambda: now[0])
    overview.started(Counts(mini_batches_total=4))
    now[0] += timedelta(minutes=2)
    overview.progress(Counts(mini_batches_total=4, mini_batches_succeeded=1))
    now[0] += timedelta(hours=1)
    ProgressOverview(layout, clock=lambda: now[0]).write("after a restart")

    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "job_progress_overview.2024050123.txt",
        "job_progress_overview.2024050200.txt",
    ]
    assert (tmp_path / "job_progress_overview.2024050123.txt").read_text().endswith("No task has been processed yet.\n")
    second_day = (tmp_path / "job_progress_overview.2024050200.txt").read_text().splitlines()
    assert second_day[0].startswith("2024-05-02T00:01:00.000000 Processed 1 of 4 mini batches in 0:00:00.")
    assert second_day[1] == "2024-05-02T01:01:00.000000 after a restart"
