"""The local executor's queue: a worker past `init()` holds one more task, which it starts as soon as its try
ends, and which comes back unstarted when the worker stops first. And a new job's workers, which start and call
`init()` while its plan is recorded."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import psutil
import pytest

from batchpoint.runtime.coordinator import run_job
from batchpoint.runtime.executor import Task, TaskDone, TaskEvent, TaskFailed, TaskReturned, TaskStarted
from batchpoint.runtime.ledger import InMemoryLedger
from batchpoint.runtime.local import LocalProcessExecutor, job_reads
from batchpoint.runtime.sandbox.policy import WorkerSandbox
from batchpoint.runtime.spawn import BOOT_SCRIPT
from batchpoint.runtime.spec import JobSpec
from tests.cluster.replicas import wait_until
from tests.runtime.conftest import Kit

SCRIPT = """
    import os, time
    from pathlib import Path

    def run(mini_batch):
        name = os.path.basename(mini_batch[0])
        Path(os.environ["MARKERS"], name).touch()
        if name.startswith("sleep"):
            time.sleep(float(name.split("-")[1]))
        if name == "die":
            while not Path(os.environ["MARKERS"], "queued").exists():
                time.sleep(0.01)
            os._exit(3)
        return [name]
"""
"""run() marks each mini-batch it starts; `sleep-S` sleeps S seconds, `die` kills the worker once the test has
queued a task behind it (its `queued` marker)."""


@pytest.fixture
def executor(kit: Kit) -> Iterator[LocalProcessExecutor]:
    kit.script(SCRIPT)
    executor = kit.executor(stack_dump_seconds=0.1)
    executor.start(kit.spec(timeout_seconds=2.0))
    yield executor
    executor.stop()


def task(index: int, *names: str) -> Task:
    return Task(index, tuple(f"/in/{name}" for name in names))


def queue_behind(
    executor: LocalProcessExecutor, running: Task, queued: Task, markers: Path | None = None
) -> list[TaskEvent]:
    """Submit `running`, and queue `queued` once the worker is past init(), then say so in `markers` (a `die`
    mini-batch waits for that); returns the events polled meanwhile."""
    events = submit_until_queueable(executor, running)
    executor.queue(queued)
    if markers is not None:
        (markers / "queued").touch()
    return events


def submit_until_queueable(executor: LocalProcessExecutor, running: Task) -> list[TaskEvent]:
    """Submit `running` and poll until its worker can take a queued task (its `ready` read: the executor reads a
    worker's replies and its end in one go, so a task that ended the worker at once would never show it)."""
    executor.submit(running)
    events: list[TaskEvent] = []
    deadline = time.monotonic() + 30
    while not executor.queue_slots():
        assert time.monotonic() < deadline, f"the worker never took a queued task: {events}"
        events += executor.poll(0.05)
    return events


def poll_until(executor: LocalProcessExecutor, events: list[TaskEvent], count: int) -> list[TaskEvent]:
    deadline = time.monotonic() + 30
    while len(events) < count:
        assert time.monotonic() < deadline, f"only {events}"
        events += executor.poll(0.1)
    return events


def test_a_queued_task_starts_on_the_same_worker_when_the_try_before_it_ends(executor: LocalProcessExecutor) -> None:
    events = queue_behind(executor, task(0, "sleep-0.3"), task(1, "b"))

    events = poll_until(executor, events, 3)

    assert [(type(event), event.index) for event in events] == [(TaskDone, 0), (TaskStarted, 1), (TaskDone, 1)]
    done, started, queued_done = events
    assert isinstance(done, TaskDone) and isinstance(started, TaskStarted) and isinstance(queued_done, TaskDone)
    assert done.worker == started.worker == queued_done.worker
    assert queued_done.rows == b"b\n"


@pytest.mark.parametrize(("running", "kind"), [("die", "died"), ("sleep-60", "timeout")])
def test_a_queued_task_comes_back_unstarted_when_its_worker_stops_first(
    kit: Kit, executor: LocalProcessExecutor, running: str, kind: str
) -> None:
    events = queue_behind(executor, task(0, running), task(1, "b"), kit.markers)

    events = poll_until(executor, events, 2)

    assert [(type(event), event.index) for event in events] == [(TaskFailed, 0), (TaskReturned, 1)]
    assert isinstance(events[0], TaskFailed) and events[0].kind == kind
    assert not (kit.markers / "b").exists()


def test_a_stopped_executor_does_not_start_its_queued_task(kit: Kit, executor: LocalProcessExecutor) -> None:
    queue_behind(executor, task(0, "sleep-0.5"), task(1, "b"))
    while not (kit.markers / "sleep-0.5").exists():
        time.sleep(0.01)

    executor.stop()
    time.sleep(0.7)

    assert not (kit.markers / "b").exists()


def test_a_task_too_large_for_the_pipe_is_queued_without_waiting_for_the_busy_worker(
    executor: LocalProcessExecutor,
) -> None:
    large = task(1, "b", *(f"{index:0200d}" for index in range(1_000)))  # 200 kB: more than a pipe holds
    events = submit_until_queueable(executor, task(0, "sleep-1"))

    queued = time.monotonic()
    executor.queue(large)

    assert time.monotonic() - queued < 0.5
    events = poll_until(executor, events, 3)
    assert [(type(event), event.index) for event in events] == [(TaskDone, 0), (TaskStarted, 1), (TaskDone, 1)]
    assert isinstance(events[2], TaskDone) and events[2].rows == b"b\n"


MARKS_INIT = """
    import os
    from pathlib import Path

    def init():
        Path(os.environ["MARKERS"], f"init-{os.getpid()}").touch()

    def run(mini_batch):
        return [os.path.basename(path) for path in mini_batch]
"""
"""init() leaves a marker named after its worker."""


WAIT_SECONDS = 30


class WatchedPlan(InMemoryLedger):
    """A ledger that, before it records a plan, waits until `workers` worker processes of this process have
    started, then until `inits` markers exist, then until no worker is left when `gone` (each wait at most 30 s),
    and notes how many workers there are and the markers then; `kill`: it then kills one of them; `fail`: it then
    cannot record the plan (the database went away); `theirs`: another coordinator's plan is stored first."""

    def __init__(
        self,
        markers: Path,
        workers: int,
        inits: int = 0,
        gone: bool = False,
        fail: bool = False,
        kill: bool = False,
        theirs: list[list[str]] | None = None,
    ) -> None:
        super().__init__()
        self.markers, self.workers, self.inits, self.gone = markers, workers, inits, gone
        self.fail, self.kill, self.theirs = fail, kill, theirs
        self.seen: tuple[int, list[str]] | None = None

    def plan(self, job_id: str, mini_batches: Iterable[Sequence[str]]) -> bool:
        wait_until(lambda: len(worker_processes()) >= self.workers, WAIT_SECONDS, f"{self.workers} workers")
        wait_until(lambda: len(list(self.markers.iterdir())) >= self.inits, WAIT_SECONDS, f"{self.inits} init()s")
        if self.gone:
            wait_until(lambda: not worker_processes(), WAIT_SECONDS, "the workers to exit")
        self.seen = (len(worker_processes()), sorted(path.name for path in self.markers.iterdir()))
        if self.kill:
            _kill_and_wait(worker_processes()[0])
        if self.fail:
            raise RuntimeError("the database went away")
        if self.theirs is not None:
            super().plan(job_id, self.theirs)
        return super().plan(job_id, mini_batches)


def _kill_and_wait(process: psutil.Process) -> None:
    """Kill a worker and wait until it has exited (a zombie its executor reaps) with all its threads: its pipes are
    closed. Its main thread shows as a zombie while another (its parent watch) may still be exiting, holding its
    descriptors: on a loaded machine, one kill in seven in a probe, and the executor then sent the worker its first
    mini-batch without an error, and charged a try for it (the test's rare failure)."""
    process.kill()
    while process.status() != psutil.STATUS_ZOMBIE or os.listdir(f"/proc/{process.pid}/task") != [str(process.pid)]:
        time.sleep(0.01)


def worker_processes() -> list[psutil.Process]:
    """This process's live worker processes (started cold: `python -I -S boot.py worker`)."""
    return [child for child in psutil.Process().children() if _is_worker(child)]


def _is_worker(process: psutil.Process) -> bool:
    try:
        return process.cmdline()[3:5] == [str(BOOT_SCRIPT), "worker"] and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def test_a_new_jobs_workers_start_and_call_init_while_its_plan_is_recorded(kit: Kit) -> None:
    kit.inputs("a.txt", "b.txt", "c.txt")  # two mini-batches: two of the four workers are needed
    kit.script(MARKS_INIT)
    ledger = WatchedPlan(kit.markers, workers=2, inits=2)

    outcome = kit.run(ledger, max_concurrency_per_instance=4)

    assert outcome.status == "Completed", outcome.message
    assert ledger.seen is not None and ledger.seen[0] == 2
    assert len(ledger.seen[1]) == 2 and all(marker.startswith("init-") for marker in ledger.seen[1])
    assert sorted(marker.name for marker in kit.markers.iterdir()) == ledger.seen[1]  # init() once per worker
    assert kit.log("sys/node/0/_main.txt").count(" started (") == 2
    assert not worker_processes()


def test_the_workers_started_for_a_plan_that_cannot_be_recorded_are_stopped(kit: Kit) -> None:
    kit.inputs("a.txt", "b.txt", "c.txt")
    kit.script(MARKS_INIT)
    ledger = WatchedPlan(kit.markers, workers=2, fail=True)

    with pytest.raises(RuntimeError, match="the database went away"):
        kit.run(ledger, max_concurrency_per_instance=2)

    assert ledger.seen is not None and ledger.seen[0] == 2
    assert not worker_processes()


def test_an_init_that_fails_while_the_plan_is_recorded_fails_the_job_with_its_traceback(kit: Kit) -> None:
    kit.inputs("a.txt", "b.txt", "c.txt")
    kit.script("""
        import os
        from pathlib import Path

        def init():
            Path(os.environ["MARKERS"], f"init-{os.getpid()}").touch()
            raise FileNotFoundError("the model file is missing")

        def run(mini_batch):
            return mini_batch
    """)
    ledger = WatchedPlan(kit.markers, workers=2, inits=2, gone=True)  # both workers said why, and exited

    outcome = kit.run(ledger, max_concurrency_per_instance=2, max_retries=0)

    assert outcome.status == "Failed"
    assert "FileNotFoundError: the model file is missing" in outcome.message


SLOW_INIT_BUT_THE_FIRST = """
    import os
    import time
    from pathlib import Path

    from azureml_user.parallel_run import EntryScript

    def init():
        if EntryScript().agent_name == "process000":
            Path(os.environ["MARKERS"], "first").touch()
        else:
            time.sleep(60)

    def run(mini_batch):
        return mini_batch
"""
"""The first worker's init() (the one that gets the first task) returns at once, the others' after a minute."""


def test_a_worker_still_in_init_when_the_last_mini_batch_ends_is_stopped_at_once(kit: Kit) -> None:
    kit.inputs("a.txt", "b.txt", "c.txt")
    kit.script(SLOW_INIT_BUT_THE_FIRST)
    ledger = WatchedPlan(kit.markers, workers=2, inits=1, theirs=[["a.txt"]])  # one mini-batch, two workers started
    began = time.monotonic()

    outcome = kit.run(ledger, max_concurrency_per_instance=2)

    assert outcome.status == "Completed", outcome.message
    assert len(ledger.mini_batches("job") or []) == 1
    assert time.monotonic() - began < 8, "the job waited for a worker that was still in init()"
    assert not worker_processes()


def test_a_worker_that_dies_before_its_first_task_costs_no_try(kit: Kit) -> None:
    kit.inputs("a.txt", "b.txt", "c.txt")
    kit.script(MARKS_INIT)
    ledger = WatchedPlan(kit.markers, workers=2, inits=2, kill=True)  # killed after its init(), before its task

    outcome = run_job(kit.spec(max_concurrency_per_instance=2, max_retries=0), ledger, kit.executor())

    batches = ledger.mini_batches("job") or []
    assert outcome.status == "Completed", outcome.message
    assert outcome.counts.items_failed == 0, [batch.last_error for batch in batches]  # once in a loaded suite: why
    assert [(batch.status, batch.tries) for batch in batches] == [("succeeded", 1)] * 2


def test_a_reruns_workers_read_its_first_jobs_inputs_not_where_its_links_lead(tmp_path: Path) -> None:
    """A rerun's input folder holds the server's links to the first job's files; a file there may have been made a
    link to elsewhere by a user since (or a folder the first job's listing did not follow). Before, the rerun's
    sandbox followed each link to its end and let its script read that."""
    first_inputs, jobs = tmp_path / "in", tmp_path / "jobs"
    secret = tmp_path / "elsewhere" / "signing.key"
    for folder in (first_inputs, jobs / "rerun" / "input", secret.parent):
        folder.mkdir(parents=True)
    secret.write_text("the server's secret\n")
    (first_inputs / "f.txt").symlink_to(secret)  # a regular file when the rerun was asked for, a link now
    (jobs / "rerun" / "input" / "f.txt").symlink_to(first_inputs / "f.txt")
    code = tmp_path / "code"
    code.mkdir()
    (code / "score.py").write_text("def run(mini_batch):\n    return mini_batch\n")
    spec = JobSpec(
        job_id="rerun", input_paths=[jobs / "rerun" / "input"], output_dir=tmp_path / "out", code_dir=code,
        scoring_script="score.py", input_roots=[first_inputs],
    )  # fmt: skip

    reads = [str(path) for path in job_reads(spec, WorkerSandbox(server_links=(str(jobs),)))]

    assert str(first_inputs) in reads
    assert not [path for path in reads if path.startswith(str(secret.parent))], reads
