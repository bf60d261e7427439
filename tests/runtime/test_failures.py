"""Failing tries: exceptions, timeouts, dead workers, failing init(); retries and the error threshold (Decisions
1, 3, 4, 7, 14)."""

from __future__ import annotations

import time

import psutil
import pytest

from batchpoint.runtime.coordinator import run_job
from batchpoint.runtime.ledger import InMemoryLedger
from batchpoint.runtime.local import LocalProcessExecutor
from tests.runtime.conftest import Kit, lines

FIRST_TRY_ONLY = """
import os
from pathlib import Path

def first_time(name):
    marker = Path(os.environ["MARKERS"], name)
    if marker.exists():
        return False
    marker.touch()
    return True
"""
"""Helpers for scripts that misbehave on a mini-batch's first try only, so that its retry succeeds."""

ECHO_RUN = """
def run(mini_batch):
    names = [os.path.basename(path) for path in mini_batch]
    if "bad.txt" in names and {condition}:
        {misbehave}
    return names
"""


def script_failing(kit: Kit, misbehave: str, condition: str = "first_time('run')", header: str = "") -> None:
    kit.script(FIRST_TRY_ONLY, header, ECHO_RUN.format(condition=condition, misbehave=misbehave))


def test_an_exception_fails_its_mini_batch_after_all_tries_and_names_file_exception_and_traceback(kit: Kit) -> None:
    kit.inputs("a.txt", "b.txt", "bad.txt", "c.txt", "d.txt")
    script_failing(kit, "raise ValueError(f'cannot score {names}')", condition="True")

    outcome = kit.run(max_retries=2)

    kit.check(outcome, "Completed", 2, [1, 3, 1], lines("a.txt", "b.txt", "d.txt"))
    assert (outcome.counts.mini_batches_succeeded, outcome.counts.mini_batches_failed) == (2, 1)
    assert [batch.status for batch in kit.batches()] == ["succeeded", "failed", "succeeded"]
    for report in (outcome.message, kit.log("job_result.txt")):
        assert str(kit.input_dir / "bad.txt") in report
        assert "ValueError: cannot score ['bad.txt', 'c.txt']" in report
        assert 'Traceback (most recent call last):\n  File "' in report
        assert "score.py" in report
    error_file = kit.log("user/error/0/process000.txt")
    assert [f"mini-batch 1, try {number} of 3" in error_file for number in (1, 2, 3)] == [True] * 3
    assert error_file.count("ValueError: cannot score") == 3


def test_a_run_that_hangs_past_the_timeout_is_killed_retried_and_its_stack_reported(kit: Kit) -> None:
    kit.inputs("a.txt", "bad.txt", "c.txt")
    script_failing(kit, "time.sleep(60)", header="import time\n")
    started = time.monotonic()

    outcome = kit.run(timeout_seconds=1.5, mini_batch_size=1, max_concurrency_per_instance=2)

    assert time.monotonic() - started < 15
    kit.check(outcome, "Completed", 0, [1, 2, 1], lines("a.txt", "bad.txt", "c.txt"))
    error_file = kit.errors()
    assert "mini-batch 1, try 1 of 4: timeout" in error_file
    assert "did not finish mini-batch 1 within 1.5 seconds" in error_file
    assert "score.py" in error_file and "in run" in error_file  # where it hung, from faulthandler


@pytest.mark.parametrize(
    ("misbehave", "described"),
    [
        ("os._exit(3)", "exited with code 3"),
        ("import ctypes; ctypes.string_at(0)", "was killed by signal SIGSEGV"),
        ("os.kill(os.getpid(), 9)", "was killed by signal SIGKILL (as the out-of-memory killer does)"),
    ],
)
def test_a_worker_that_dies_costs_its_mini_batch_one_try_and_is_replaced(
    kit: Kit, misbehave: str, described: str
) -> None:
    kit.inputs("a.txt", "b.txt", "bad.txt", "c.txt", "d.txt")
    script_failing(kit, misbehave)

    outcome = kit.run()

    kit.check(outcome, "Completed", 0, [1, 2, 1], lines("a.txt", "b.txt", "bad.txt", "c.txt", "d.txt"))
    error_file = kit.errors()
    assert "mini-batch 1, try 1 of 4: died" in error_file and described in error_file
    workers = {attempt.process for attempt in kit.ledger.attempts("job")}
    assert len(workers) == 2


def test_the_mini_batch_queued_behind_a_worker_that_dies_runs_later_at_no_cost(kit: Kit) -> None:
    kit.inputs("a.txt", "b.txt", "bad.txt", "c.txt", "d.txt", "e.txt", "f.txt", "g.txt")
    script_failing(kit, "time.sleep(0.5); os._exit(3)", header="import time\n")

    outcome = kit.run()

    kit.check(
        outcome,
        "Completed",
        0,
        [1, 2, 1, 1],
        lines("a.txt", "b.txt", "bad.txt", "c.txt", "d.txt", "e.txt", "f.txt", "g.txt"),
    )
    assert [(a.index, a.try_number) for a in kit.ledger.attempts("job")] == [(0, 1), (1, 1), (1, 2), (2, 1), (3, 1)]


def test_a_segfault_reports_the_python_stack(kit: Kit) -> None:
    kit.inputs("bad.txt")
    script_failing(kit, "import ctypes; ctypes.string_at(0)", condition="True")

    outcome = kit.run(max_retries=0)

    kit.check(outcome, "Completed", 1, [1], "")
    assert "Fatal Python error: Segmentation fault" in outcome.message
    assert "in run" in outcome.message


def test_init_failing_once_costs_no_try_and_the_worker_is_replaced(kit: Kit) -> None:
    kit.inputs("a.txt", "b.txt", "c.txt")
    kit.script(
        FIRST_TRY_ONLY,
        """
        def init():
            if first_time("init"):
                raise RuntimeError("model not ready")

        def run(mini_batch):
            return [os.path.basename(path) for path in mini_batch]
        """,
    )

    outcome = kit.run()

    kit.check(outcome, "Completed", 0, [1, 1], lines("a.txt", "b.txt", "c.txt"))
    init_log = kit.log("user/error/0/process000.txt")
    assert "init() failed in process000 on node 0" in init_log and "RuntimeError: model not ready" in init_log
    assert "RuntimeError" not in kit.log("user/error/0/process001.txt", missing="")


INIT_RAISES = """
def init():
    raise RuntimeError("no model here")

def run(mini_batch):
    return mini_batch
"""


@pytest.mark.parametrize("error_threshold", [-1, 5])
def test_init_failing_on_every_try_fails_the_job_whatever_the_threshold_with_its_traceback(
    kit: Kit, error_threshold: int
) -> None:
    kit.inputs("a.txt", "b.txt", "c.txt")
    kit.script(INIT_RAISES)

    outcome = kit.run(max_retries=1, error_threshold=error_threshold, max_concurrency_per_instance=2)

    kit.check(outcome, "Failed", 0, [0, 0], None)
    first_line = outcome.message.splitlines()[0]
    assert "init() of the scoring script failed 2 times in a row on each of the 2 worker(s)" in first_line
    assert "(RuntimeError: no model here)" in first_line
    assert 'Traceback (most recent call last):\n  File "' in outcome.message and "in init" in outcome.message
    assert kit.log("job_result.txt").startswith(f"Status: Failed\n{first_line}")
    assert kit.errors().count("RuntimeError: no model here") == 4


def test_a_worker_that_dies_in_init_counts_as_a_failed_init(kit: Kit) -> None:
    kit.inputs("a.txt")
    kit.script("import os\n\ndef init():\n    os._exit(3)\n\ndef run(mini_batch):\n    return mini_batch\n")

    outcome = kit.run(max_retries=0)

    kit.check(outcome, "Failed", 0, [0], None)
    assert "exited with code 3 during init()" in outcome.message


PRINT_AND_EXIT = "    print('noise\\n' * 50 + 'CUDA out of memory ü', file=sys.stderr)\n    sys.stderr.flush()\n"
"""The body of a function that prints 51 lines to stderr, to be followed by its `os._exit`."""


@pytest.mark.parametrize(
    ("script", "ended"),
    [
        (
            f"import os, sys\n\ndef init():\n{PRINT_AND_EXIT}    os._exit(2)\n\n"
            "def run(mini_batch):\n    return mini_batch\n",
            "exited with code 2 during init().",
        ),
        (
            f"import os, sys\n\ndef run(mini_batch):\n{PRINT_AND_EXIT}    os._exit(4)\n",
            "exited with code 4 while running mini-batch 0.",
        ),
    ],
)
def test_a_worker_that_exits_says_in_its_error_what_it_last_wrote_to_stderr(kit: Kit, script: str, ended: str) -> None:
    """What a script prints before `os._exit` (or a worker's own start prints as it fails) is the only word on why:
    the error names the worker's stderr file and quotes its last lines, in init() and in run()."""
    kit.inputs("a.txt")
    kit.script(script)

    outcome = kit.run(max_retries=0)

    assert f"{ended}\nThe end of what it wrote to logs/user/stderr/0/process000.stderr.txt:\n" in outcome.message
    assert outcome.message.count("noise") == 19 and "noise\nCUDA out of memory ü" in outcome.message
    assert "CUDA out of memory ü" in kit.log("job_result.txt")


def test_an_init_that_hangs_past_its_time_limit_fails_the_job_with_its_stack(kit: Kit) -> None:
    kit.inputs("a.txt", "b.txt")
    kit.script("import time\n\ndef init():\n    time.sleep(600)\n\ndef run(mini_batch):\n    return mini_batch\n")

    started = time.monotonic()
    outcome = kit.run(max_retries=0, init_timeout_seconds=1.0)

    kit.check(outcome, "Failed", 0, [0], None)
    assert time.monotonic() - started < 30
    assert "init() did not return within 1 seconds" in outcome.message.splitlines()[0]
    assert "in init" in outcome.message


def test_the_job_fails_as_soon_as_failed_items_exceed_the_threshold(kit: Kit) -> None:
    names = [f"bad{index:02d}.txt" for index in range(20)]
    kit.inputs(*names)
    kit.script(
        """
        def run(mini_batch):
            raise KeyError(mini_batch[0])
        """
    )

    outcome = kit.run(mini_batch_size=1, max_retries=0, error_threshold=2)

    kit.check(outcome, "Failed", 3, [1, 1, 1] + [0] * 17, None)
    assert outcome.counts.mini_batches_failed == 3
    assert len(list(kit.ledger.attempts("job"))) == 3
    assert f"KeyError: '{kit.input_dir / 'bad00.txt'}'" in outcome.message
    assert "Status: Failed" in kit.log("job_result.txt")
    assert not (kit.output_dir / ".batchpoint").exists()


def test_a_canceled_job_stops_and_writes_no_output(kit: Kit) -> None:
    kit.inputs(*[f"f{index}.txt" for index in range(6)])
    kit.script(
        """
        import time

        def run(mini_batch):
            time.sleep(0.3)
            return mini_batch
        """
    )
    started = time.monotonic()

    def should_cancel() -> bool:
        return time.monotonic() - started > 0.5

    outcome = run_job(
        kit.spec(mini_batch_size=1), InMemoryLedger(), LocalProcessExecutor(), should_cancel=should_cancel
    )

    assert outcome.status == "Canceled"
    assert outcome.counts.mini_batches_succeeded < 6
    assert kit.predictions() is None


LEAVES_PROCESSES = """
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    MARKERS = Path(os.environ["MARKERS"])

    def run(mini_batch):
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True)
        (MARKERS / f"session-{child.pid}").touch()
        if os.fork() == 0:  # a daemon: its own session, its parent gone
            os.setsid()
            if os.fork() == 0:
                (MARKERS / f"daemon-{os.getpid()}").touch()
                time.sleep(300)
            os._exit(0)
        while not list(MARKERS.glob("daemon-*")):
            time.sleep(0.01)
        if "hang" in mini_batch[0]:
            time.sleep(300)
        return mini_batch
"""
"""run() starts a process in a session of its own and a daemon (double fork), and leaves them running."""


@pytest.mark.parametrize("ending", ["done", "hang"])
def test_the_processes_a_script_leaves_running_end_with_its_worker(kit: Kit, ending: str) -> None:
    """Whether the worker leaves at the job's end (`done`) or is killed at its time limit (`hang`): before, killing the
    worker's session missed a process the script had started in a session of its own, and it outlived the job."""
    kit.inputs(f"{ending}.txt")
    kit.script(LEAVES_PROCESSES)

    outcome = kit.run(max_retries=0, timeout_seconds=2.0)

    assert outcome.status == "Completed", outcome.message
    assert outcome.counts.items_failed == (1 if ending == "hang" else 0)
    left = [int(marker.name.split("-")[1]) for marker in kit.markers.iterdir()]
    assert len(left) == 2
    assert not [pid for pid in left if _running(pid)], "a process the script started outlived the job"


def _running(pid: int) -> bool:
    """Whether `pid` still runs a second after the job's end: a kill is delivered, and a stopped process woken to
    die, a moment after it is sent (on a loaded machine the check came first)."""
    deadline = time.monotonic() + 1.0
    while True:
        try:
            running = psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            running = False
        if not running or time.monotonic() > deadline:
            return running
        time.sleep(0.02)


@pytest.mark.parametrize(
    "left",
    [
        "pool = multiprocessing.Pool(2)",  # the Pool's exit handler ends it: killed first, it hung that handler
        "threading.Thread(target=time.sleep, args=(300,)).start()",  # not daemon=True
        "multiprocessing.Process(target=time.sleep, args=(300,)).start()",  # the exit handler joins it
    ],
    ids=["open-pool", "thread", "process"],
)
def test_a_worker_leaves_at_once_whatever_its_script_left_open(kit: Kit, left: str) -> None:
    """Before, the worker waited for a thread the script left running, or hung in the exit handler of a Pool whose
    workers it had killed, until the executor's 10 s of grace ran out and it was killed (returncode -9)."""
    kit.inputs("a.txt")
    kit.script(f"""
        import multiprocessing
        import threading
        import time

        def init():
            global pool
            {left}

        def run(mini_batch):
            return mini_batch
    """)

    began = time.monotonic()
    outcome = kit.run()

    assert outcome.status == "Completed", outcome.message
    assert time.monotonic() - began < 8, "the job waited for its worker to be killed"
    assert "process000 exits with returncode 0." in kit.log("sys/node/0/_main.txt")


def test_the_processes_an_init_that_fails_leaves_running_end_with_its_worker(kit: Kit) -> None:
    kit.inputs("a.txt")
    kit.script("""
        import os
        import subprocess
        import sys
        from pathlib import Path

        def init():
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True)
            Path(os.environ["MARKERS"], f"session-{child.pid}").touch()
            raise RuntimeError("no model")

        def run(mini_batch):
            return mini_batch
    """)

    outcome = kit.run()

    assert outcome.status == "Failed" and "no model" in outcome.message
    left = [int(marker.name.split("-")[1]) for marker in kit.markers.iterdir()]
    assert left and not [pid for pid in left if _running(pid)], "a process init() started outlived the job"
