"""Takes accepted jobs to their end on a few background threads, records their progress and outcome on the
job resource, and picks up unfinished jobs when the server starts again."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from batchpoint.runtime.coordinator import run_job
from batchpoint.runtime.environments.cache import EnvironmentBuildError, EnvironmentCache
from batchpoint.runtime.environments.spec import EnvironmentSpec
from batchpoint.runtime.executor import Executor, ExecutorUnavailableError
from batchpoint.runtime.local import LocalProcessExecutor
from batchpoint.runtime.logs import StreamLog, followed
from batchpoint.runtime.pipeline import step_log
from batchpoint.runtime.report import Counts, JobOutcome, stream_log
from batchpoint.services.compute_queue import ComputeQueue, Placement
from batchpoint.services.computes import max_nodes
from batchpoint.services.environments import environment_from_record
from batchpoint.services.job_logs import pipeline_execution_log
from batchpoint.services.jobs import TERMINAL, spec_from_record
from batchpoint.services.metrics import RunnerActivity
from batchpoint.services.operations import iso
from batchpoint.services.pipeline_jobs import run_pipeline
from batchpoint.services.resources import modify
from batchpoint.store import Store
from batchpoint.store.entities import Resource, utcnow

log = logging.getLogger(__name__)
FETCHED_MARKER = ".batchpoint-fetched"


class InputFetchError(Exception):
    """A remote input could not be copied to the job's folder."""


class ServerStopping(Exception):
    """Raised into a running job when the server stops: the job is left to resume at the next start."""


class JobRunner:
    def __init__(
        self, store: Store, environments: EnvironmentCache, jobs_root: Path, max_jobs: int = 4, ray_address: str | None = None
    ) -> None:
        self._store = store
        self._ray_address = ray_address
        self._environments = environments
        self._jobs_root = jobs_root
        self.activity = RunnerActivity()
        self._ledger = store.ledger()
        self._pool = ThreadPoolExecutor(max_workers=max_jobs, thread_name_prefix="job")
        self._canceled: set[str] = set()
        self._stopping = threading.Event()
        self._queue = ComputeQueue(self._max_nodes)
        self._active: set[str] = set()
        self._again: set[str] = set()
        self._active_lock = threading.Lock()

    def submit(self, job_id: str) -> None:
        """Run the job on a background thread; if it is on one already, run it again once that one returns
        (a queued job woken while it was still parking itself)."""
        with self._active_lock:
            if job_id in self._active:
                self._again.add(job_id)
                return
            self._active.add(job_id)
        self.activity.queued(job_id)
        self._pool.submit(self._run_tracked, job_id)

    def _run_tracked(self, job_id: str) -> None:
        self.activity.dequeued(job_id)
        try:
            self._run(job_id)
        finally:
            self.activity.ended(job_id)

    def cancel(self, job_id: str) -> None:
        self._canceled.add(job_id.lower())
        job = self._store.get(job_id)
        if job is not None and self._queue.withdraw(job.id):
            self._finish(job.id, "Canceled", "Canceled while it waited for its compute's nodes.", None)
            self._canceled.discard(job.id.lower())
            self._wake(Placement.of(job.secrets.get("placement")))

    def resume(self) -> int:
        """Submit every job a previous run of the server left unfinished."""
        unfinished = self._store.unfinished_jobs()
        for job_id in unfinished:
            self.submit(job_id)
        return len(unfinished)

    def shutdown(self) -> None:
        self._stopping.set()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _run(self, job_id: str) -> None:
        try:
            job = self._store.get(job_id)
            if job is None or job.body["properties"]["status"] in TERMINAL:
                return
            if "pipeline" in job.secrets:
                self._run_pipeline(job)
            else:
                self._run_on_compute(job)
        finally:
            with self._active_lock:
                self._active.discard(job_id)
                again = job_id in self._again
                self._again.discard(job_id)
            if again and not self._stopping.is_set():
                self.submit(job_id)

    def _run_on_compute(self, job: Resource) -> None:
        """A model job holds its compute's nodes while it runs; it waits, ``Queued``, until they are free."""
        placement = Placement.of(job.secrets.get("placement"))
        if placement is not None and not self._queue.take(job.id, placement):
            self._update(job.id, lambda properties: properties.update(status="Queued"))
            return
        self._wake(placement)  # the next waiting job may fit too
        try:
            self._run_model_job(job.id, job)
        finally:
            next_job = self._queue.release(job.id)
            if next_job is not None and not self._stopping.is_set():
                self.submit(next_job)

    def _wake(self, placement: Placement | None) -> None:
        next_job = self._queue.next_waiting(placement.compute_id) if placement else None
        if next_job is not None and not self._stopping.is_set():
            self.submit(next_job)

    def _executor_for(self, placement: Placement | None, environment: EnvironmentSpec | None) -> Executor:
        """Computes of one's own run on the server's Ray cluster when it has one; the built-in compute, and every
        compute of a server without one, on local worker processes."""
        if self._ray_address and placement is not None and placement.capped:
            from batchpoint.runtime.ray_executor import RayExecutor  # Ray is an optional extra

            return RayExecutor(self._ray_address, environment.requirements if environment else ())
        return LocalProcessExecutor()

    def _max_nodes(self, compute_id: str) -> int | None:
        compute = self._store.get(compute_id)
        return max_nodes(compute) if compute is not None else None

    def _run_model_job(self, job_id: str, job: Resource) -> None:
        spec = spec_from_record(job.secrets["spec"])
        self._start(job_id)
        try:
            fetch_input(job.secrets.get("fetch"))
            environment = environment_from_record(job.secrets.get("environment"))
            self._ensure_environment(environment)
            with followed(stream_log(spec)):
                outcome = run_job(
                    spec,
                    self._ledger,
                    self._executor_for(Placement.of(job.secrets.get("placement")), environment),
                    on_progress=lambda counts: self._progress(job_id, counts),
                    should_cancel=lambda: self._should_cancel(job_id),
                )
        except ServerStopping:
            return
        except (InputFetchError, EnvironmentBuildError, ExecutorUnavailableError) as error:
            self._finish(job_id, "Failed", str(error), None)
        except Exception as error:  # the job must end, whatever went wrong around it
            log.exception("job %s failed outside its scoring script", job_id)
            message = f"The job failed outside its scoring script ({type(error).__name__}); see the server's log."
            self._finish(job_id, "Failed", message, None)
        else:
            self._finish(job_id, outcome.status, outcome.message, outcome)
        self._ledger.forget(spec.job_id)
        self._canceled.discard(job_id.lower())

    def _start(self, job_id: str) -> None:
        self._update(job_id, lambda properties: properties.update(status="Running", startTime=iso(utcnow())))

    def _run_pipeline(self, job: Resource) -> None:
        self._start(job.id)
        workspace_id = job.id.rsplit("/jobs/", 1)[0]
        steps = {step["name"]: step_log(Path(step["work_dir"])) for step in job.secrets["pipeline"]["steps"]}
        execution_log = StreamLog(pipeline_execution_log(self._jobs_root, job.name), lambda: steps)
        try:
            with followed(execution_log):
                status, message = run_pipeline(
                    job.secrets["pipeline"],
                    workspace_id,
                    job.name,
                    self._environments,
                    self._status_of,
                    lambda child_id, status, message: self._step_status(child_id, status, message, execution_log),
                    lambda: self._should_cancel(job.id),
                )
        except ServerStopping:
            return
        except Exception as error:  # the job must end, whatever went wrong around it
            log.exception("pipeline job %s failed outside its steps", job.id)
            status, message = "Failed", f"The job failed outside its steps ({type(error).__name__}); see the server's log."
        execution_log.write(f"Job {status}: {message}")
        self._finish(job.id, status, message, None)
        self._canceled.discard(job.id.lower())

    def _status_of(self, job_id: str) -> str | None:
        child = self._store.get(job_id)
        return child.body["properties"]["status"] if child else None

    def _step_status(self, child_id: str, status: str, message: str, execution_log: StreamLog) -> None:
        execution_log.write(f"Step {child_id.rsplit('/', 1)[-1]}: {status}" + (f": {message}" if message else ""))

        def apply(properties: dict[str, Any]) -> None:
            now = iso(utcnow())
            properties["status"] = status
            if status == "Running":
                properties["startTime"] = now
            else:
                properties.update(endTime=now, statusMessage=message.splitlines()[0] if message else "")
                if status == "Failed":
                    properties["error"] = {"code": "StepFailed", "message": message}

        self._update(child_id, apply)

    def _ensure_environment(self, spec: EnvironmentSpec | None) -> None:
        """Normally found in the cache (built when the deployment provisioned); rebuilt if the cache lost it."""
        if spec is not None:
            self._environments.ensure(spec)

    def _should_cancel(self, job_id: str) -> bool:
        if self._stopping.is_set():
            raise ServerStopping
        return job_id.lower() in self._canceled

    def _progress(self, job_id: str, counts: Counts) -> None:
        self.activity.progress(job_id, counts)

        def apply(properties: dict[str, Any]) -> None:
            properties["progress"] = progress_of(counts)
            done = counts.mini_batches_succeeded + counts.mini_batches_failed
            if counts.mini_batches_total and done == counts.mini_batches_total:
                properties["status"] = "Finalizing"

        self._update(job_id, apply)

    def _finish(self, job_id: str, status: str, message: str, outcome: JobOutcome | None) -> None:
        def apply(properties: dict[str, Any]) -> None:
            properties.update(status=status, endTime=iso(utcnow()), statusMessage=message.splitlines()[0] if message else "")
            if outcome is not None:
                properties["progress"] = progress_of(outcome.counts)
            if status == "Failed":
                properties["error"] = {"code": "JobFailed", "message": message}

        self._update(job_id, apply)

    def _update(self, job_id: str, change: Callable[[dict[str, Any]], None]) -> None:
        def apply(job: Resource) -> None:
            change(job.body["properties"])
            job.updated_at = utcnow()

        modify(self._store, job_id, apply)


def fetch_input(remote: dict[str, Any] | None) -> None:
    """Copy a remote input (a remote datastore or a URL) into the job's folder, once: a marker says it is whole,
    so a job resumed after a crash does not fetch again. The marker is hidden, so the runtime does not list it."""
    if remote is None:
        return
    target = Path(remote["target"])
    marker = target / FETCHED_MARKER
    if marker.exists():
        return
    import fsspec  # heavy: only jobs with remote inputs need it

    try:
        filesystem = fsspec.filesystem(remote["protocol"], **remote["storage_options"])
        target.mkdir(parents=True, exist_ok=True)
        if filesystem.isdir(remote["path"]):
            filesystem.get(remote["path"].rstrip("/") + "/", str(target) + "/", recursive=True)
        else:
            filesystem.get(remote["path"], str(target / remote["path"].rstrip("/").rsplit("/", 1)[-1]))
    except Exception as error:  # any storage client error: the job fails saying which input
        raise InputFetchError(f"Could not fetch the input '{remote['uri']}': {type(error).__name__}: {error}") from error
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
