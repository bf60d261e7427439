"""Runs one batch job: plans it once, dispatches tries to an executor, retries, counts, commits and reports.

`run_job` is also how a job resumes after the server died: called again with the same ledger it skips the
mini-batches that succeeded (their rows are committed) and runs the others, so the output holds every item
exactly once.

When another writer has taken the job over (a fenced ledger refuses a write, or the job's folder lock was taken
over: `TakenOver`), the coordinator kills its workers at once and writes nothing more: it commits no output and
removes nothing, and the error propagates.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace

from batchpoint.runtime import counters
from batchpoint.runtime.executor import (
    Executor,
    InitFailedError,
    Task,
    TaskDone,
    TaskEvent,
    TaskFailed,
    TaskReturned,
    TaskStarted,
    TryTiming,
    WorkerName,
)
from batchpoint.runtime.inputs import InputError, list_inputs, plan_mini_batches
from batchpoint.runtime.job_report import write_job_report
from batchpoint.runtime.ledger import FAILED as MINI_BATCH_FAILED
from batchpoint.runtime.ledger import (
    RUN_DONE,
    Attempt,
    Ledger,
    MiniBatch,
    Success,
    TakenOver,
    TryEnd,
    TryStatus,
    new_plan,
)
from batchpoint.runtime.ledger import SUCCEEDED as MINI_BATCH_SUCCEEDED
from batchpoint.runtime.limits import ErrorThreshold, ItemCounts, RetryPolicy, count_items
from batchpoint.runtime.output import (
    JobLock,
    MissingRowsError,
    Output,
    check_output_available,
    open_output,
    remove_private_dir,
)
from batchpoint.runtime.remote_output import PublishError, publish, remote_output_problem
from batchpoint.runtime.report import (
    Counts,
    Failure,
    Failures,
    JobLogs,
    JobOutcome,
    outcome_message,
)
from batchpoint.runtime.spec import JobSpec
from batchpoint.runtime.status import JobStatus
from batchpoint.runtime.stop_points import stop_point

TRY_STATUS: dict[str, TryStatus] = {"exception": "RUN_EXCEPTION", "timeout": "RUN_TIMEOUT", "died": "PROCESS_EXITED"}
"""The status a failed try that costs the mini-batch a try gets in the ledger (`init` and `lost` cost none)."""
CHECK_SECONDS = 0.1
"""How often `should_cancel` is asked and the ledger written (when there is something to write)."""
PROGRESS_SECONDS = 1.0
"""How often progress is reported (when it changed)."""

ProgressCallback = Callable[[Counts], None]


def run_job(
    spec: JobSpec,
    ledger: Ledger,
    executor: Executor,
    on_progress: ProgressCallback | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> JobOutcome:
    """Run (or resume) the job to its end and return how it ended.

    Raises OutputExistsError when a job that was never planned would overwrite its output file (Decision 10),
    and JobAlreadyRunningError when another coordinator runs the same job. Any other exception (from the
    ledger, the file system or the callbacks) propagates once the workers are stopped, and leaves the job
    resumable: that is also how to stop a job without canceling it. `on_progress` gets a copy of the counts at
    most every second; `should_cancel` is asked every 0.1 s."""
    unplanned = ledger.mini_batches(spec.job_id) is None
    ledger.confirm_writer(spec.job_id)  # before anything touches the job's folder
    if unplanned:
        check_output_available(spec)
    with JobLock(spec, ledger.generation) as lock:
        try:
            problem = _unrunnable(spec) or (remote_output_problem(spec) if unplanned else None)
            if problem is None:
                try:
                    batches, planned_seconds = _plan(spec, ledger, executor, unplanned)
                except InputError as error:
                    problem = str(error)
            if problem is not None:
                return _end_early(spec, ledger, problem)
            return _JobRun(spec, ledger, executor, lock, batches, planned_seconds, on_progress, should_cancel).run()
        finally:
            executor.discard()  # workers started for a plan that was never run


def _unrunnable(spec: JobSpec) -> str | None:
    if spec.script_path is None:
        return "The deployment has no scoring script; running models without one is not supported yet."
    if not spec.script_path.is_file():
        return f"The scoring script '{spec.script_path}' does not exist."
    return None


def _plan(spec: JobSpec, ledger: Ledger, executor: Executor, unplanned: bool) -> tuple[list[MiniBatch], float | None]:
    """The job's mini-batches, and how long planning them took now (None: they were planned before). A new plan's
    workers start, and call `init()`, while it is written (`Executor.prepare`): once its input is listed, so that
    an input that cannot be read starts none. A plan found before the job's lock is read again under it; one that
    was missing is not (a plan stored meanwhile makes `Ledger.plan` refuse ours, and it is read then)."""
    batches = None if unplanned else ledger.mini_batches(spec.job_id)
    if batches is not None:
        return batches, None
    began = time.monotonic()
    planned = new_plan(plan_mini_batches(list_inputs(spec), spec.mini_batch_size))
    listed = time.monotonic()
    executor.prepare(spec, len(planned))
    writing = time.monotonic()
    if ledger.plan(spec.job_id, (batch.files for batch in planned)):  # as stored: no need to read it back
        batches = planned
    else:  # another coordinator's plan, stored meanwhile
        batches = ledger.mini_batches(spec.job_id)
        assert batches is not None
    return batches, listed - began + time.monotonic() - writing  # the workers' start is not the plan's time


def end_before_running(spec: JobSpec, ledger: Ledger, message: str) -> JobOutcome:
    """A job that failed before its coordinator could run (its input could not be fetched, its environment not
    built, its executor not reached): its logs say why, as those of any job that ended early do."""
    ledger.confirm_writer(spec.job_id)
    return _end_early(spec, ledger, message)


def _end_early(spec: JobSpec, ledger: Ledger, message: str) -> JobOutcome:
    outcome = JobOutcome(JobStatus.FAILED, message, Counts(), None)
    logs = JobLogs(spec)
    batches = ledger.mini_batches(spec.job_id)
    attempts = ledger.attempts(spec.job_id) if batches is not None else iter(())
    logs.result(outcome, Failures(), write_job_report(logs.layout, batches, attempts, outcome))
    remove_private_dir(spec)
    return outcome


class _JobRun:
    """The state of one run of the coordinator loop; all of it is rebuilt from the ledger on resume."""

    def __init__(
        self,
        spec: JobSpec,
        ledger: Ledger,
        executor: Executor,
        lock: JobLock,
        batches: list[MiniBatch],
        planned_seconds: float | None,
        on_progress: ProgressCallback | None,
        should_cancel: Callable[[], bool] | None,
    ) -> None:
        self.spec = spec
        self.planned_seconds = planned_seconds
        self.ledger = ledger
        self.executor = executor
        self.lock = lock
        self.on_progress = on_progress
        self.should_cancel = should_cancel
        self.retry = RetryPolicy(spec.max_retries)
        self.threshold = ErrorThreshold(spec.error_threshold)
        self.logs = JobLogs(spec)
        self.counts = Counts(mini_batches_total=len(batches), items_total=sum(len(batch.files) for batch in batches))
        self.succeeded = bytearray(len(batches))
        """1 at the index of each succeeded mini-batch: what goes into the output, in order."""
        self.pending: deque[MiniBatch] = deque()
        self.running: dict[int, MiniBatch] = {}
        self.queued: dict[int, MiniBatch] = {}
        """Mini-batches queued behind a running one on its worker, not started yet: neither running nor recorded."""
        self.started: dict[int, tuple[float, float]] = {}
        """When each running mini-batch's try began, as far as we know (monotonic and UTC seconds): the try's
        duration when its worker could not say (it died or was stopped), and the run() duration metric."""
        self.uncommitted: dict[int, tuple[int, ItemCounts, TryEnd]] = {}
        """Succeeded tries whose rows are not durable yet: index -> (try number, item counts, how it ended)."""
        self.failures = Failures()
        self.unrecorded_starts: list[Attempt] = []
        self.durable: list[Success] = []
        """Tries started, and successes whose rows are durable, since the ledger was last written: one
        transaction per CHECK_SECONDS, rather than two per mini-batch."""
        self.fatal: str | None = None
        """Why the job failed whatever its error threshold (every worker's init() failed)."""
        self.reported: Counts | None = None
        self.next_report = 0.0
        for batch in batches:
            self._restore(batch)

    def run(self) -> JobOutcome:
        output = open_output(self.spec, self.ledger.generation)
        try:
            return self._finish(self._execute(output))
        finally:
            output.close()

    def _restore(self, batch: MiniBatch) -> None:
        if batch.status == MINI_BATCH_SUCCEEDED:
            self._count_success(batch, ItemCounts(batch.succeeded_items, batch.failed_items))
        elif batch.status == MINI_BATCH_FAILED:
            self._count_exhausted(batch)
        elif self.retry.exhausted(batch.tries):
            self._exhaust(batch)  # its last failed try was recorded, its exhaustion was lost
        else:
            self.pending.append(batch)

    # --- the loop -----------------------------------------------------------------------------------

    def _execute(self, output: Output) -> JobOutcome:
        if self.threshold.exceeded(self.counts.items_failed) or not self.pending:
            return self._end(self._status_when_done(), output)
        self.logs.started(self.spec, self.counts, self.planned_seconds)
        self.executor.start(self.spec)
        at_once = False
        try:
            stopped = self._run_tries(output)
            if stopped is None:  # every mini-batch ended: the workers leave while the output is committed
                self.executor.wind_down()
                return self._end(self._status_when_done(), output)
        except TakenOver:
            at_once = True
            raise
        finally:
            self.executor.stop(graceful=not at_once)
        return self._end(stopped, output)

    def _run_tries(self, output: Output) -> JobStatus | None:
        """Run the mini-batches until each has ended (None), or the job stops early (how it ends)."""
        try:
            self._dispatch()  # the workers start before the first report, a write to the database
            self._report(force=True)
            return self._loop(output)
        except InitFailedError as error:
            self.fatal = str(error)
            return JobStatus.FAILED

    def _loop(self, output: Output) -> JobStatus | None:
        next_check = time.monotonic() + CHECK_SECONDS
        while self.pending or self.running or self.queued:
            self._dispatch()
            for event in self.executor.poll(max(0.0, next_check - time.monotonic())):
                self._handle(event, output)
            self._commit(output.committed())
            if self.threshold.exceeded(self.counts.items_failed):
                return JobStatus.FAILED
            if time.monotonic() >= next_check:
                self.lock.check()
                if self.durable:
                    stop_point("ledger-group", str(self.spec.output_dir))
                self._record()
                if self.should_cancel is not None and self.should_cancel():
                    return JobStatus.CANCELED
                self._report()
                next_check = time.monotonic() + CHECK_SECONDS
        return None

    def _status_when_done(self) -> JobStatus:
        return JobStatus.FAILED if self.threshold.exceeded(self.counts.items_failed) else JobStatus.COMPLETED

    def _dispatch(self) -> None:
        while self.pending and self.executor.idle_slots():
            batch = self.pending.popleft()
            self._start(batch, self.executor.submit(Task(batch.index, batch.files)))
        while self._may_queue() and self.executor.queue_slots():
            batch = self.pending.popleft()
            self.executor.queue(Task(batch.index, batch.files))
            self.queued[batch.index] = batch

    def _may_queue(self) -> bool:
        """Whether to queue a mini-batch behind a running one, which its worker starts without waiting for us.

        Not the last `worker_count` mini-batches: they go to whichever worker is free first, so that none waits
        behind a long try while another worker has nothing to do. And in a job with an error threshold, not once
        a try or an item failed: a queued mini-batch starts before we hear of a failure that may end the job."""
        failed = self.counts.items_failed or self.counts.mini_batches_retried
        return (self.threshold.limit < 0 or not failed) and len(self.pending) > self.spec.worker_count

    def _start(self, batch: MiniBatch, worker: WorkerName) -> None:
        began = time.time()
        self.unrecorded_starts.append(
            Attempt(batch.index, batch.tries + 1, str(worker), worker.node, worker.process, started=began)
        )
        self.running[batch.index] = batch
        self.started[batch.index] = (time.monotonic(), began)

    def _handle(self, event: TaskEvent, output: Output) -> None:
        match event:
            case TaskDone():
                self._succeeded(event, output)
            case TaskFailed():
                self._failed(event)
            case TaskStarted():
                self._start(self.queued.pop(event.index), event.worker)
            case TaskReturned():
                self.pending.appendleft(self.queued.pop(event.index))

    def _succeeded(self, result: TaskDone, output: Output) -> None:
        batch = self.running.pop(result.index)
        items = count_items(result.returned, len(batch.files))
        end = self._try_end(result.index, RUN_DONE, result.timing)
        counters.mini_batch_succeeded(end.elapsed_seconds, items.succeeded, items.failed)
        output.add(batch.index, result.rows)
        self.uncommitted[batch.index] = (batch.tries + 1, items, end)
        self._count_success(batch, items)
        if items.failed:
            self.failures.add(Failure.short_result(batch, result.returned))

    def _commit(self, indexes: list[int]) -> None:
        """Successes whose rows became durable (fsync groups of them) wait for the next ledger write."""
        for index in indexes:
            try_number, items, end = self.uncommitted.pop(index)
            self.durable.append(Success(index, try_number, items.succeeded, items.failed, end))

    def _record(self) -> None:
        """Write the tries started and the durable successes to the ledger, in one transaction: every
        CHECK_SECONDS, before a failed try, and at the end. A success lost in a crash before it was written only
        runs its mini-batch again."""
        if self.unrecorded_starts or self.durable:
            self.ledger.record_tries(self.spec.job_id, self.unrecorded_starts, self.durable)
            self.unrecorded_starts, self.durable = [], []

    def _failed(self, result: TaskFailed) -> None:
        batch = self.running.pop(result.index)
        if result.kind in ("init", "lost"):
            counters.try_failed(result, time.monotonic() - self.started.pop(result.index)[0])
            (self.logs.init_failed if result.kind == "init" else self.logs.worker_lost)(result)
            self.pending.appendleft(batch)  # not the mini-batch's fault: it costs no try
            return
        end = self._try_end(result.index, TRY_STATUS[result.kind], result.timing)
        counters.try_failed(result, end.elapsed_seconds)
        try_number = batch.tries + 1
        self.logs.try_failed(batch, try_number, self.retry.tries_allowed, result)
        self._record()  # the try's start first
        self.ledger.record_failed_try(self.spec.job_id, batch.index, try_number, result.error, end)
        batch = replace(batch, tries=try_number, last_error=result.error)
        if self.retry.exhausted(try_number):
            counters.mini_batch_exhausted(len(batch.files))
            self._exhaust(batch, self.logs.layout.relative(self.logs.error_file(result.worker)))
        else:
            counters.mini_batch_retried()
            self.counts.mini_batches_retried += 1
            self.pending.append(batch)

    def _try_end(self, index: int, status: TryStatus, timing: TryTiming | None) -> TryEnd:
        """How the try ended: timed by its worker, else (it died or was stopped) from when it was handed out."""
        began, began_utc = self.started.pop(index)
        if timing is None:
            return TryEnd(status, began_utc, time.monotonic() - began)
        return TryEnd(status, timing.started, timing.elapsed, timing.process_seconds, timing.run_seconds)

    def _exhaust(self, batch: MiniBatch, details: str = "") -> None:
        self.ledger.mark_exhausted(self.spec.job_id, batch.index)
        self._count_exhausted(batch, details)

    def _count_success(self, batch: MiniBatch, items: ItemCounts) -> None:
        self.succeeded[batch.index] = 1
        self.counts.mini_batches_succeeded += 1
        self.counts.items_succeeded += items.succeeded
        self.counts.items_failed += items.failed

    def _count_exhausted(self, batch: MiniBatch, details: str = "") -> None:
        self.counts.mini_batches_failed += 1
        self.counts.items_failed += len(batch.files)
        self.failures.add(Failure.exhausted(batch, details))

    @staticmethod
    def _unfinished_files(batches: list[MiniBatch]) -> list[str]:
        """The files of every mini-batch that did not succeed: failed on all its tries, or never ran (the job
        failed or was canceled first). A short result's missing items are not among them: which of its files
        they are is unknown, and its rows are in the output."""
        return [path for batch in batches if batch.status != MINI_BATCH_SUCCEEDED for path in batch.files]

    # --- reporting and the end ------------------------------------------------------------------------

    def _report(self, force: bool = False) -> None:
        """Progress to the callback and the overview file, when it changed (or when forced), at most every
        PROGRESS_SECONDS."""
        now = time.monotonic()
        if not force and now < self.next_report:
            return
        counts = replace(self.counts, mini_batches_running=len(self.running))
        if force or counts != self.reported:
            if self.on_progress is not None:
                self.on_progress(replace(counts))  # first: it may find the job taken over
            self.logs.progress(counts)
            self.reported = counts
        self.next_report = now + PROGRESS_SECONDS

    def _end(self, status: JobStatus, output: Output) -> JobOutcome:
        """The rows written so far made durable and recorded; a completed job's output committed and published."""
        self._commit(output.flush())
        self._record()
        self._confirm_writer()  # and again right before the output is committed
        output_file = None
        message = self.fatal or outcome_message(status, self.counts, self.spec.error_threshold, self.failures)
        if status == JobStatus.COMPLETED:
            try:
                indexes = (index for index, done in enumerate(self.succeeded) if done)
                output_file = output.write(indexes, before_commit=self._confirm_writer)
                publish(self.spec)
            except (MissingRowsError, PublishError) as error:
                status, message = JobStatus.FAILED, str(error)
        return JobOutcome(status, message, replace(self.counts), output_file)

    def _finish(self, outcome: JobOutcome) -> JobOutcome:
        """Once the workers have gone: the last progress, the job's report and logs; its private folder removed."""
        self.running.clear()
        self._report(force=True)
        batches = self.ledger.mini_batches(self.spec.job_id) or []
        if self.counts.mini_batches_succeeded < self.counts.mini_batches_total:
            self.logs.failed_items(self._unfinished_files(batches))
        pointers = write_job_report(self.logs.layout, batches, self.ledger.attempts(self.spec.job_id), outcome)
        self.logs.result(outcome, self.failures, pointers)
        remove_private_dir(self.spec)
        return outcome

    def _confirm_writer(self) -> None:
        """Raise TakenOver unless this coordinator is still the job's writer: its folder lock in place and its
        ledger writes still accepted."""
        self.lock.check()
        self.ledger.confirm_writer(self.spec.job_id)
