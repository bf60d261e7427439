"""Takes the jobs this process owns to their end on a few background threads and records their progress and
outcome on the job resource; jobs whose owner died or stopped are taken over from their ledger.

A job runs under the fence of this process's claim of its lease (`store/leases.py`): every write its thread
makes (status, progress, ledger, steps, the output's commit) is refused once another process has taken the job
over, and the job then stops here at once (its workers killed) without writing anything more."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from batchpoint.arm.operations import iso
from batchpoint.arm.resources import modify
from batchpoint.cluster.faults import Backoff, describe, is_transient
from batchpoint.cluster.ownership import OwnedWorkPool, Ownership
from batchpoint.jobs.activity import RunnerActivity
from batchpoint.jobs.identity import WorkerIdentity
from batchpoint.jobs.logs import pipeline_execution_log
from batchpoint.jobs.pipelines.planner import run_pipeline
from batchpoint.jobs.placement import ComputeQueue, Placement
from batchpoint.jobs.run_record import ModelRun, PipelineRun, RemoteInput, run_of
from batchpoint.jobs.scoring_step import follow, scoring_child_id, touch
from batchpoint.ml.computes.rules import has_gpus, max_nodes
from batchpoint.runtime.coordinator import CHECK_SECONDS, end_before_running, run_job
from batchpoint.runtime.environments.cache import EnvironmentBuildError, EnvironmentCache
from batchpoint.runtime.environments.spec import EnvironmentSpec
from batchpoint.runtime.executor import Executor, ExecutorUnavailableError
from batchpoint.runtime.gpus import GpuPool
from batchpoint.runtime.ledger import TakenOver
from batchpoint.runtime.local import LocalProcessExecutor
from batchpoint.runtime.logs import StreamLog, followed
from batchpoint.runtime.output import remove_private_dir
from batchpoint.runtime.pipeline import step_log
from batchpoint.runtime.report import Counts, JobOutcome, stream_log
from batchpoint.runtime.sandbox.policy import WorkerSandbox
from batchpoint.runtime.spec import JobSpec
from batchpoint.runtime.status import TERMINAL, JobStatus
from batchpoint.runtime.stop_points import stop_point
from batchpoint.runtime.templates import TemplatePool
from batchpoint.store import FinalState, Store
from batchpoint.store.entities import Resource, utcnow
from batchpoint.store.leases import JOB, Fence, LeaseKey, LeaseLost

log = logging.getLogger(__name__)
FETCHED_MARKER = ".batchpoint-fetched"


class InputFetchError(Exception):
    """A remote input could not be copied to the job's folder."""


class ServerStopping(Exception):
    """Raised into a running job when the server stops: the job is handed back, to resume here or on another
    replica."""


class JobRunner:
    """Runs the jobs this process owns (`cluster/ownership.py`): the ones invoked here while it has room, and
    the ones it takes over. A job ends only with a terminal outcome; a transient fault pauses it (its status
    unchanged, a message saying why) and it tries again from its ledger."""

    def __init__(
        self,
        store: Store,
        environments: EnvironmentCache,
        jobs_root: Path,
        ownership: Ownership,
        stopping: threading.Event,
        max_jobs: int = 4,
        ray_address: str | None = None,
        identity: WorkerIdentity | None = None,
        ray_shared_paths: Sequence[Path] = (),
        sandbox: WorkerSandbox | None = None,
        gpus: GpuPool | None = None,
        templates: bool = True,
    ) -> None:
        """``identity``: what the workers of each job and each pipeline step get to reach the server
        (``jobs/identity.py``); ``sandbox``: what scoring code, pipeline steps and environment builds may reach
        (docs/security.md); ``gpus``: the server's GPUs, which the local
        workers of every job share out (``runtime/gpus.py``); ``templates``: local workers of the server's own
        environment are forked from warm templates (``runtime/templates.py``), which ``shutdown`` stops."""
        self._store = store
        self._gpus = gpus or GpuPool()
        self._identity = identity
        self._sandbox = sandbox or WorkerSandbox()
        self._templates = TemplatePool() if templates else None
        self._ray_address = ray_address
        self._ray_shared_paths = ray_shared_paths
        self._environments = environments
        self._jobs_root = jobs_root
        self._ownership = ownership
        self._stopping = stopping
        self.activity = RunnerActivity()
        self._fences: dict[str, Fence] = {}
        """The fence each job running here writes under, by job key."""
        self._pool = OwnedWorkPool(ownership, JOB, max_jobs, stopping, self._run_tracked)
        self._queue = ComputeQueue(self._max_nodes)
        ownership.on_cancel(self._cancel_requested)

    def reserve(self, job_id: str) -> bool:
        """Own a job being stored (in the store's transaction), so that no other process starts it before
        `submit`; False if a job of that id is owned already."""
        return self._ownership.add(_lease(job_id))

    def submit(self, job_id: str) -> None:
        """Run a job this process owns here if there is room (or it runs here already: then once more when that run
        returns, as a queued job woken while it was still parking itself), else hand it to whichever process has
        room first."""
        key = job_id.lower()
        if self._pool.room() > 0 or self._pool.running(key):
            self.activity.queued(key)
            self._pool.start(key)
            return
        if (fence := self._ownership.fence(_lease(key))) is not None:
            self._ownership.let_go(fence, ended=False)
        self._leave_queue(key)  # it waits on its compute in whichever process claims it next

    def cancel(self, job_id: str) -> None:
        """Ask for the job's cancel; whichever process owns it (now or after a restart) ends it. A job waiting here
        for its compute's nodes ends at once."""
        self._ownership.request_cancel(job_id.lower())
        job = self._store.get(job_id)
        if job is None or (compute := self._queue.withdraw(job.id)) is None:
            return
        fence = self._ownership.fence(_lease(job.id))
        if fence is not None:
            try:
                with self._store.fenced(fence):
                    self._finish(job.id, JobStatus.CANCELED, "Canceled while it waited for its compute's nodes.", None)
            except TakenOver as error:
                self._ownership.lost(fence, error)
            else:
                self._ownership.finish(fence)
        self._wake(compute)

    def _cancel_requested(self, job_key: str) -> None:
        """A cancel asked of another process, of a job this process owns: a job waiting here for its compute's
        nodes ends at once (a running one sees it as it goes)."""
        compute = self._queue.withdraw(job_key)
        if compute is not None:
            self.submit(job_key)
            self._wake(compute)

    def shutdown(self) -> None:
        """Stop every job (they stay resumable); each gives its lease back as it stops."""
        self._pool.shutdown()
        if self._templates is not None:
            self._templates.close()

    def _run_tracked(self, job_key: str) -> None:
        self.activity.dequeued(job_key)
        try:
            self._run(job_key)
        finally:
            self.activity.ended(job_key)

    def _run(self, job_key: str) -> None:
        """Run the job under its fence; unless it waits for its compute's nodes, it leaves their queue as it
        leaves here, however it ended."""
        fence = self._ownership.fence(_lease(job_key))
        if fence is None:
            self._leave_queue(job_key)
            return  # lost before it started here: whoever claims it next runs it
        self._fences[job_key] = fence
        waiting = False
        try:
            with self._store.fenced(fence):
                waiting = not self._run_fenced(job_key)
                if waiting:
                    return  # waiting for its compute's nodes: this process keeps it
        except ServerStopping:
            self._ownership.let_go(fence, ended=False)
            return
        except TakenOver as error:
            self._ownership.lost(fence, error)
            return
        except FinalState:
            log.info("job %s had ended already; nothing more is written of it", job_key)
        finally:
            del self._fences[job_key]
            if not waiting:
                self._leave_queue(job_key)
        self._ownership.let_go(fence, ended=True)  # if not, whoever claims the lease next sees the job ended

    def _run_fenced(self, job_key: str) -> bool:
        """`_run_to_end`, ending the job as Failed if anything else went wrong around it."""
        try:
            return self._run_to_end(job_key)
        except (ServerStopping, TakenOver, FinalState):
            raise
        except Exception:  # the job must end, whatever went wrong around it
            log.exception("job %s could not run", job_key)
            self._finish(job_key, JobStatus.FAILED, "The job could not run; see the server's log.", None)
        return True

    def _run_to_end(self, job_key: str) -> bool:
        """Run the job until it has a terminal outcome (True) or waits for its compute's nodes (False); transient
        faults are waited out, with backoff."""
        backoff = Backoff()
        while True:
            try:
                return self._run_once(job_key)
            except (ServerStopping, TakenOver, FinalState):
                raise
            except Exception as error:
                if not is_transient(error):
                    raise
                delay = backoff.delay()
                log.warning("job %s paused: %s; trying again in %.1f s", job_key, describe(error), delay)
                self._pause(job_key, error, delay)

    def _run_once(self, job_key: str) -> bool:
        job = self._store.get(job_key)
        if job is None or job.body["properties"]["status"] in TERMINAL:
            return True
        run = run_of(job)
        if run is None:
            raise ValueError(f"The job {job.id} has no run record.")
        if self._ownership.cancel_requested(job_key, ask=True):
            self._end_canceled(job, run)
        elif isinstance(run, PipelineRun):
            self._run_pipeline(job, run)
        else:
            return self._run_on_compute(job, run)
        return True

    def _run_on_compute(self, job: Resource, run: ModelRun) -> bool:
        """A model job holds its compute's nodes while it runs; it waits, ``Queued``, until they are free (False)."""
        placement = run.placement
        if placement is not None and not self._queue.take(job.id, placement):
            self._update(job.id, lambda properties: properties.update(status=JobStatus.QUEUED))
            return False
        self._wake(placement.compute_id if placement is not None else None)  # the next waiting job may fit too
        try:
            self._run_model_job(job, run)
        finally:
            next_job = self._queue.release(job.id)
            if next_job is not None and not self._stopping.is_set():
                self.submit(next_job)
        return True

    def _wake(self, compute: str | None) -> None:
        """Try the first job waiting for the compute's nodes."""
        next_job = self._queue.next_waiting(compute) if compute else None
        if next_job is not None and not self._stopping.is_set():
            self.submit(next_job)

    def _leave_queue(self, job_key: str) -> None:
        """The job no longer waits here for its compute's nodes (if it did): the next one in line is tried."""
        self._wake(self._queue.withdraw(job_key))

    def _executor_for(self, placement: Placement | None, environment: EnvironmentSpec | None) -> Executor:
        """Computes of one's own run on the server's Ray cluster when it has one; the built-in compute, and every
        compute of a server without one, on local worker processes."""
        if self._ray_address and placement is not None and placement.capped:
            from batchpoint.runtime.ray_executor import RayExecutor  # Ray is an optional extra

            installer = self._environments.installer.name
            compute = self._store.get(placement.compute_id)
            gpus = 1 if compute is not None and has_gpus(compute) else 0
            return RayExecutor(
                self._ray_address, environment, installer, self._ray_shared_paths, self._sandbox, gpus_per_worker=gpus
            )
        return LocalProcessExecutor(sandbox=self._sandbox, gpus=self._gpus, templates=self._templates)

    def _max_nodes(self, compute_id: str) -> int | None:
        compute = self._store.get(compute_id)
        return max_nodes(compute) if compute is not None else None

    def _run_model_job(self, job: Resource, run: ModelRun) -> None:
        spec = run.spec
        ledger = self._store.ledger(self._fences[job.key])
        try:
            executor = self._executor_for(run.placement, run.environment)
            if self._slow_to_start(run, executor):
                self._start(job.id)
            spec = self._prepared(spec, run.fetch, run.environment, executor)
            if self._identity is not None:
                spec = self._identity.apply(spec, job.id)
            with followed(stream_log(spec)):
                outcome = run_job(
                    spec,
                    ledger,
                    executor,
                    on_progress=lambda counts: self._progress(job.id, counts),
                    should_cancel=lambda: self._should_cancel(job.id),
                )
        except (ServerStopping, TakenOver, FinalState):
            raise
        except (InputFetchError, EnvironmentBuildError, ExecutorUnavailableError) as error:  # the job's own: terminal
            if self._stopping.is_set():
                raise
            end_before_running(spec, ledger, str(error))  # logs/job_result.txt says why, as in any job
            self._finish(job.id, JobStatus.FAILED, str(error), None)
        except Exception as error:  # the job must end, whatever went wrong around it, unless it was transient
            if is_transient(error) or self._stopping.is_set():
                raise
            log.exception("job %s failed outside its scoring script", job.id)
            message = f"The job failed outside its scoring script ({describe(error)}); see the server's log."
            self._finish(job.id, JobStatus.FAILED, message, None)
            remove_private_dir(spec)
        else:
            self._finish(job.id, outcome.status, outcome.message, outcome)
        ledger.forget(spec.job_id)

    def _end_canceled(self, job: Resource, run: ModelRun | PipelineRun) -> None:
        """A job asked to cancel before it (re)started here: it ends without running, leaving nothing behind. One
        transaction, so that its fence is checked (and its lease held) before anything is removed."""
        with self._store.transaction():
            if isinstance(run, ModelRun):
                self._store.ledger(self._fences[job.key]).forget(run.spec.job_id)
                remove_private_dir(run.spec)
            self._finish(job.id, JobStatus.CANCELED, "The job was canceled.", None)

    def _pause(self, job_key: str, error: Exception, delay: float) -> None:
        """Say why the job waits (best effort: the database may be the fault), then wait, watching for a stop,
        a lost lease and a cancel (which the next try then honours at once)."""
        message = f"Paused: {describe(error)}; trying again in {delay:g} s."
        try:
            self._update(job_key, lambda properties: properties.update(statusMessage=message))
        except TakenOver:
            raise
        except Exception:  # a terminal state too: the next try sees the job ended
            log.debug("could not record the pause of job %s", job_key, exc_info=True)
        deadline = time.monotonic() + delay
        while (left := deadline - time.monotonic()) > 0:
            self._stopping.wait(min(left, CHECK_SECONDS))
            if self._should_cancel(job_key):
                return

    def _slow_to_start(self, run: ModelRun, executor: Executor) -> bool:
        """Whether the job's workers may be long in starting: on a cluster's nodes, or after its input is copied
        here or its environment is built. Such a job reads Running from now; any other from its first report, once
        its workers have started (docs/runtime.md, "Jobs"): one write fewer before they do."""
        if not executor.workers_on_this_machine or run.fetch is not None:
            return True
        return run.environment is not None and self._environments.find(run.environment) is None

    def _start(self, job_id: str) -> None:
        self._update(job_id, _running)

    def _run_pipeline(self, job: Resource, run: PipelineRun) -> None:
        self._start(job.id)
        workspace_id = job.parent_id
        steps = {step["name"]: step_log(Path(step["work_dir"])) for step in run.steps}
        execution_log = StreamLog(pipeline_execution_log(self._jobs_root, job.name), lambda: steps)
        try:
            with followed(execution_log):
                status, message = run_pipeline(
                    run.pipeline,
                    workspace_id,
                    job.name,
                    self._environments,
                    self._status_of,
                    lambda child_id, status, message: self._step_status(child_id, status, message, execution_log),
                    lambda: self._should_cancel(job.id),
                    self._sandbox,
                    self._identity,
                )
        except (ServerStopping, TakenOver, FinalState):
            raise
        except Exception as error:  # the job must end, whatever went wrong around it, unless it was transient
            if is_transient(error) or self._stopping.is_set():
                raise
            log.exception("pipeline job %s failed outside its steps", job.id)
            status = JobStatus.FAILED
            message = f"The job failed outside its steps ({type(error).__name__}); see the server's log."
        execution_log.write(f"Job {status}: {message}")
        self._finish(job.id, status, message, None)

    def _status_of(self, job_id: str) -> str | None:
        child = self._store.get(job_id)
        return child.body["properties"]["status"] if child else None

    def _step_status(self, child_id: str, status: JobStatus, message: str, execution_log: StreamLog) -> None:
        execution_log.write(f"Step {child_id.rsplit('/', 1)[-1]}: {status}" + (f": {message}" if message else ""))

        def apply(properties: dict[str, Any]) -> None:
            if status == JobStatus.RUNNING:
                properties.update(status=status, startTime=iso(utcnow()))
            else:
                _ended(properties, status, message, "StepFailed")

        if status != JobStatus.RUNNING:
            stop_point("child-write", child_id.rsplit("/", 1)[-1])
        self._update(child_id, apply)

    def _prepared(
        self, spec: JobSpec, remote: RemoteInput | None, environment: EnvironmentSpec | None, executor: Executor
    ) -> JobSpec:
        """Workers on this machine read a remote input from a copy made here first, and run in this machine's build
        of the job's environment: normally found in the cache (built when the deployment provisioned), built now if
        the cache lost it or another machine invoked the job. Workers elsewhere (a Ray cluster's nodes) read the
        input where it is and build the environment where they run."""
        if not executor.workers_on_this_machine:
            return replace(spec, remote_input=remote.source if remote is not None else None)
        fetch_input(remote)
        if environment is None:
            return spec
        return replace(spec, python=self._environments.ensure(environment).python)

    def _should_cancel(self, job_id: str) -> bool:
        if self._stopping.is_set():
            raise ServerStopping
        fence = self._fences[job_id.lower()]
        if not self._ownership.holds(fence):
            raise LeaseLost("the lease could not be renewed in time")
        return self._ownership.cancel_requested(fence.key.subject)

    def _progress(self, job_id: str, counts: Counts) -> None:
        self.activity.progress(job_id.lower(), counts)

        def apply(properties: dict[str, Any]) -> None:
            _running(properties)  # a local job's first report says its workers have started; a resumed one runs again
            properties["progress"] = progress_of(counts)
            properties.pop("statusMessage", None)  # running again after a pause
            if counts.mini_batches_total and counts.mini_batches_done == counts.mini_batches_total:
                properties["status"] = JobStatus.FINALIZING

        self._update(job_id, apply)

    def _finish(self, job_id: str, status: JobStatus, message: str, outcome: JobOutcome | None) -> None:
        def apply(properties: dict[str, Any]) -> None:
            _ended(properties, status, message, "JobFailed")
            if outcome is not None:
                properties["progress"] = progress_of(outcome.counts)

        stop_point("terminal-write", job_id.rsplit("/", 1)[-1])
        self._update(job_id, apply)

    def _update(self, job_id: str, change: Callable[[dict[str, Any]], None]) -> None:
        """Change a job's properties; a model job's scoring step follows in the same transaction."""

        def apply(job: Resource) -> None:
            change(job.body["properties"])
            touch(job)

        with self._store.transaction():
            job = modify(self._store, job_id, apply)
            child_id = scoring_child_id(job) if job is not None else None
            child = self._store.get(child_id) if child_id else None
            if job is not None and child is not None and follow(job, child):
                if child.body["properties"]["status"] in TERMINAL:
                    stop_point("scoring-child-write", child.name)
                self._store.update(child)


def _running(properties: dict[str, Any]) -> None:
    properties["status"] = JobStatus.RUNNING
    properties.setdefault("startTime", iso(utcnow()))


def _ended(properties: dict[str, Any], status: JobStatus, message: str, error_code: str) -> None:
    """A job's or a step's terminal state: its first line as the status message, all of it in a failure's error."""
    properties.update(status=status, endTime=iso(utcnow()), statusMessage=message.splitlines()[0] if message else "")
    if status == JobStatus.FAILED:
        properties["error"] = {"code": error_code, "message": message}


def _lease(job_id: str) -> LeaseKey:
    return LeaseKey(JOB, job_id.lower())


def fetch_input(remote: RemoteInput | None) -> None:
    """Copy a remote input (a remote datastore or a URL) into the job's folder, once: a marker says it is whole,
    so a job resumed after a crash does not fetch again. The marker is hidden, so the runtime does not list it."""
    if remote is None:
        return
    source, target = remote.source, remote.target
    marker = target / FETCHED_MARKER
    if marker.exists():
        return
    try:
        filesystem = source.filesystem()
        target.mkdir(parents=True, exist_ok=True)
        if filesystem.isdir(source.path):
            filesystem.get(source.path.rstrip("/") + "/", str(target) + "/", recursive=True)
        else:
            filesystem.get(source.path, str(target / source.path.rstrip("/").rsplit("/", 1)[-1]))
    except Exception as error:  # any storage client error: the job fails saying which input
        raise InputFetchError(f"Could not fetch the input '{source.uri}': {type(error).__name__}: {error}") from error
    marker.touch()


def progress_of(counts: Counts) -> dict[str, Any]:
    return {
        "miniBatches": {
            "total": counts.mini_batches_total,
            "succeeded": counts.mini_batches_succeeded,
            "failed": counts.mini_batches_failed,
            "running": counts.mini_batches_running,
            "retried": counts.mini_batches_retried,
        },
        "items": {"total": counts.items_total, "succeeded": counts.items_succeeded, "failed": counts.items_failed},
    }
