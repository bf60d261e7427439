"""The local executor: `instance_count x max_concurrency_per_instance` worker processes on this machine.

Workers are started by `spawn.py` (with `subprocess`: the server is multi-threaded, so no fork without
exec), or forked from a warm template of their environment when the server has one ready (`templates.py`), each in
its own session so that a timeout kills the script's own child processes too, and each in the
sandbox of its job (`sandbox/`, docs/security.md). A new job's first workers start, and call `init()`, while its
plan is written (`prepare`); other workers are started when their slot first gets a task, and replaced (lazily, by
the next task) when they are lost.

A worker that has called `init()` and runs a try can hold one more task, queued in its command pipe (as
`Pool.imap` queues tasks ahead of its workers): it starts that one as soon as it has answered the try before,
so it does not sit idle for a round trip through the coordinator between two tries.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

import psutil

from batchpoint.runtime.executor import (
    Executor,
    FailureKind,
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
from batchpoint.runtime.gpus import GpuLease, GpuPool, device_files, driver_reads
from batchpoint.runtime.layout import MASTER_ROLE, LogLayout, ProcessNames, append_line
from batchpoint.runtime.limits import Deadlines
from batchpoint.runtime.perf import ResourceMonitor
from batchpoint.runtime.protocol import CONFIG, DONE, ERROR, INIT_FAILED, READY, RUN, STOP, encode, send
from batchpoint.runtime.replies import ProtocolError, ReplyPipe, reply, stopped_for
from batchpoint.runtime.sandbox.policy import WorkerSandbox
from batchpoint.runtime.spawn import (
    StartedWorker,
    boot_worker,
    private_temp_root,
    read_text,
    start_worker,
    why_it_ended,
)
from batchpoint.runtime.spec import SUMMARY_ONLY, JobSpec
from batchpoint.runtime.templates import TemplateKey, TemplatePool, template_key
from batchpoint.runtime.worker import STACK_DUMP_SIGNAL

STACK_POLL_SECONDS = 0.02
QUEUED_FRAME_BYTES = select.PIPE_BUF - 4
"""A queued task's message is written at once up to this size (PIPE_BUF with multiprocessing's 4-byte length
header, which any pipe holds); a larger one could fill the pipe and block the coordinator until the worker's
current try ends, so it is written when that try ends."""


class _Worker:
    def __init__(self, slot: int, name: WorkerName, started: StartedWorker, home: Path, gpu: GpuLease | None) -> None:
        self.slot = slot
        self.gpu = gpu
        """The GPU it uses (None: the server has none)."""
        self.started = started
        self.process = started.process
        self.commands = started.commands
        self.replies = started.replies
        self.reply_pipe = ReplyPipe(started.replies)
        self.home = home
        """Private folder: the script's working directory `cwd/` and the crash-traceback file."""
        self.name = replace(name, detail=f"pid {started.process.pid}" + (f", GPU {gpu.gpu}" if gpu else ""))
        self.task: Task | None = None
        """The task the worker runs (or starts once `init()` returns)."""
        self.queued: Task | None = None
        """The task it starts when `task` ends."""
        self.unsent: bytes | None = None
        """The queued task's message when it was too large to write before `task` ends."""
        self.ready = False
        """`init()` has returned; `run()` starts as soon as a task arrives, so its time limit starts too."""
        self.told_to_stop = False

    @property
    def traceback_file(self) -> Path:
        return self.home / "traceback.txt"


class LocalProcessExecutor(Executor):
    def __init__(
        self,
        python: str = sys.executable,
        shutdown_grace_seconds: float = 10.0,
        stack_dump_seconds: float = 0.5,
        sandbox: WorkerSandbox | None = None,
        gpus: GpuPool | None = None,
        templates: TemplatePool | None = None,
    ) -> None:
        """`python` runs the jobs without an environment of their own; `shutdown_grace_seconds` bounds the
        scripts' `shutdown()`; `stack_dump_seconds` bounds the wait for a timed-out worker's stack before it is
        killed. `sandbox`: what the workers may reach (default: the kernel's Landlock, the server's own uid).
        `gpus`: the server's GPUs, one per worker while there are enough (default: none). `templates`: the
        server's warm templates, which fork workers of its own environment (default: every worker starts cold)."""
        self._templates = templates
        self._template: TemplateKey | None = None
        self._python = python
        self._gpus = gpus or GpuPool()
        self._sandbox = sandbox or WorkerSandbox()
        self._grace = shutdown_grace_seconds
        self._stack_dump_seconds = stack_dump_seconds
        self._slots: list[_Worker | None] = []
        self._deadlines: Deadlines[int] = Deadlines()
        self._finished: list[TaskEvent] = []
        self._init_failures: list[int] = []
        """Per slot: how many times in a row `init()` failed there."""
        self._last_init_error = ""
        self._last_init_details = ""
        self._prepared = False
        """`prepare` set the job up and started workers; `start` has not come yet."""

    def prepare(self, spec: JobSpec, tasks: int) -> None:
        self._set_up(spec)
        self._prepared = True
        for slot in range(min(tasks, len(self._slots))):
            self._start_worker(slot)

    def discard(self) -> None:
        if self._prepared:
            self._prepared = False
            self.stop(graceful=False)

    def start(self, spec: JobSpec) -> None:
        if not self._prepared:
            self._set_up(spec)
        self._prepared = False

    def _set_up(self, spec: JobSpec) -> None:
        if spec.script_path is None:
            raise ValueError("The local executor needs a scoring script.")
        self._spec = spec
        self._homes = _job_homes(spec)
        self._job_python = spec.python or Path(self._python)
        if self._templates is not None:
            self._template = template_key(self._job_python, self._sandbox.user.uid, spec.environment_variables)
        self._reads = job_reads(spec, self._sandbox)
        self._sandbox.share(spec.output_dir)
        self._layout = LogLayout(spec.logs_dir)
        self._names = ProcessNames(self._layout)
        self._monitor = ResourceMonitor(self._layout, spec.resource_monitor_seconds)
        self._slots = [None] * spec.worker_count
        self._init_failures = [0] * spec.worker_count

    def idle_slots(self) -> int:
        return sum(
            1
            for slot, worker in enumerate(self._slots)
            if (worker is None and self._usable(slot)) or (worker is not None and worker.task is None)
        )

    def submit(self, task: Task) -> WorkerName:
        worker = self._idle_worker()
        worker.task = task
        try:
            send(worker.commands, RUN, index=task.index, files=task.files)
        except OSError:
            if not worker.ready:
                self._read_init_failure(worker)
            if self._slots[worker.slot] is worker:
                self._lose_before(worker, task)
        else:
            if worker.ready:
                self._arm(worker)
        return worker.name

    def queue_slots(self) -> int:
        return sum(1 for worker in self._slots if worker is not None and self._can_queue(worker))

    def queue(self, task: Task) -> None:
        worker = next(worker for worker in self._slots if worker is not None and self._can_queue(worker))
        worker.queued = task
        frame = encode(RUN, index=task.index, files=task.files)
        if len(frame) <= QUEUED_FRAME_BYTES:
            _send_quietly(worker.commands, frame)  # a worker that has gone reports it through its replies
        else:
            worker.unsent = frame

    def poll(self, timeout: float) -> list[TaskEvent]:
        if not any(self._usable(slot) for slot in range(len(self._slots))):
            raise InitFailedError.on_every_worker(
                self._spec.init_tries, len(self._slots), self._last_init_error, self._last_init_details
            )
        if not self._finished:
            self._receive(timeout)
        self._stop_expired()
        self._monitor.sample_if_due((worker.name, worker.process.pid) for worker in self._slots if worker is not None)
        finished, self._finished = self._finished, []
        return finished

    def wind_down(self) -> None:
        for worker in self._slots:
            if worker is None or worker.task is not None:
                continue
            if _may_leave(worker):
                self._tell_to_stop(worker)
            else:  # still in init(), started for a mini-batch the stored plan did not have
                self._retire(worker)

    def stop(self, graceful: bool = True) -> None:
        workers = [worker for worker in self._slots if worker is not None]
        idle = [worker for worker in workers if _may_leave(worker)] if graceful else []
        for worker in idle:
            self._tell_to_stop(worker)
        deadline = time.monotonic() + self._grace
        self._wait_until_closed([worker.replies for worker in idle], deadline)
        for worker in idle:  # closed its pipe on its way out: let it exit, so its exit code is its own
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.process.wait(max(0.0, deadline - time.monotonic()))
        for worker in workers:
            self._retire(worker)
        self._finished.clear()
        shutil.rmtree(self._homes, ignore_errors=True)

    @staticmethod
    def _tell_to_stop(worker: _Worker) -> None:
        if not worker.told_to_stop:
            worker.told_to_stop = True
            _send_quietly(worker.commands, encode(STOP))

    @staticmethod
    def _wait_until_closed(connections: list[Connection], deadline: float) -> None:
        """Wait for retiring workers to close their pipes (they do by exiting, after `shutdown()`)."""
        while connections and (left := deadline - time.monotonic()) > 0:
            for connection in wait(connections, left):
                connections.remove(connection)  # type: ignore[arg-type]  # wait() returns what it was given

    # --- workers ----------------------------------------------------------------------------------------

    def _idle_worker(self) -> _Worker:
        for worker in self._slots:
            if worker is not None and worker.task is None:
                return worker
        for slot, worker in enumerate(self._slots):
            if worker is None and self._usable(slot):
                return self._start_worker(slot)
        raise RuntimeError("submit() was called without an idle slot")

    def _start_worker(self, slot: int) -> _Worker:
        """A worker in `slot`, sent its job's configuration: it imports the script and calls `init()` within the
        job's init time limit, then waits for its first task."""
        worker = self._boot(slot)
        _send_quietly(worker.commands, encode(CONFIG, **self._config(worker)))
        self._deadlines.arm(worker.slot, time.monotonic() + self._spec.init_timeout_seconds)
        return worker

    def _boot(self, slot: int) -> _Worker:
        """A worker process in `slot`, in its sandbox, with its folders and its line in the node's log."""
        name = self._names.new(str(slot // self._spec.max_concurrency_per_instance))
        home = Path(tempfile.mkdtemp(prefix="w", dir=self._homes))  # short: Decision 16
        self._sandbox.prepare_home(home)
        stderr = self._layout.stderr(name)
        stderr.parent.mkdir(parents=True, exist_ok=True)
        entry_script_logs = self._layout.entry_script_logs(name.node)
        entry_script_logs.mkdir(parents=True, exist_ok=True)
        self._sandbox.share(entry_script_logs)
        gpu = self._gpus.take()
        try:
            policy = self._policy(home, entry_script_logs, gpu)
            environment = self._worker_environment(home, gpu)
            started = self._fork(home, self._layout.stdout(name), stderr)
            if started is not None:
                boot_worker(started, self._job_python, policy, environment)
            else:
                started = start_worker(
                    python=self._job_python,
                    home=home,
                    policy=policy,
                    environment=environment,
                    stdout=self._layout.stdout(name),
                    stderr=stderr,
                )
        except BaseException:
            self._gpus.release(gpu)
            shutil.rmtree(home, ignore_errors=True)
            raise
        worker = _Worker(slot, name, started, home, gpu)
        self._slots[slot] = worker
        forked = f", forked from the template pid {started.parent_pid}" if started.parent_pid != os.getpid() else ""
        append_line(self._layout.node_main(name.node), f"{name.process} started ({worker.name.detail}{forked}).")
        if gpu is not None and gpu.others:
            append_line(self._layout.file(MASTER_ROLE), self._gpus.sharing(str(worker.name), gpu))
        return worker

    def _fork(self, home: Path, stdout: Path, stderr: Path) -> StartedWorker | None:
        """A worker forked from the job's template, when it has one ready; None: start one cold."""
        if self._templates is None or self._template is None:
            return None
        return self._templates.fork(self._template, home=home, stdout=stdout, stderr=stderr, workers=len(self._slots))

    def _template_environment(self, folder: Path) -> dict[str, str]:
        """A template's environment: a worker's of no job (no job variable, no secret), with the job's thread
        counts, in the template's own private folder."""
        assert self._template is not None
        return self._sandbox.environment(python=self._job_python, home=folder, variables=dict(self._template.variables))

    def _policy(self, home: Path, entry_script_logs: Path, gpu: GpuLease | None) -> dict[str, Any] | None:
        """What a worker may reach: the job's code, model and inputs; its output folder and its node's
        `EntryScript.log_dir`; its private folder; its GPU and the driver's state."""
        gpus = [gpu.gpu] if gpu else []
        return self._sandbox.policy(
            python=self._job_python,
            read=[*self._reads, *driver_reads(gpus)],
            read_write=[self._spec.output_dir, entry_script_logs],
            scratch=home,
            devices=device_files(gpus),
        )

    def _worker_environment(self, home: Path, gpu: GpuLease | None) -> dict[str, str]:
        spec = self._spec
        defined = {"AZUREML_BI_OUTPUT_PATH": str(spec.output_dir.absolute()), **self._gpus.environment(gpu)}
        if spec.model_dir is not None:
            defined["AZUREML_MODEL_DIR"] = str(spec.model_dir.absolute())
        variables = {**spec.job_variables, **spec.environment_variables}  # the deployment's own win
        variables.pop("AZUREML_MODEL_DIR", None)
        return self._sandbox.environment(python=self._job_python, home=home, variables=variables, defined=defined)

    @staticmethod
    def _can_queue(worker: _Worker) -> bool:
        """Only a worker past `init()` gets a queued task: one still in `init()` reads no messages, and a failed
        `init()` hands back its task at no cost, with no second one to hand back with it."""
        return worker.ready and worker.task is not None and worker.queued is None

    def _usable(self, slot: int) -> bool:
        """A slot is given up once `init()` failed there `init_tries` times in a row."""
        return self._init_failures[slot] < self._spec.init_tries

    def _config(self, worker: _Worker) -> dict[str, Any]:
        spec = self._spec
        return {
            "parent_pid": worker.started.parent_pid,
            "teach": self._template is not None,
            "script": str(spec.script_path),
            "code_dir": str(spec.code_dir.absolute()) if spec.code_dir else None,
            "logging_level": spec.logging_level,
            "summary_only": spec.output_action == SUMMARY_ONLY,
            "argv": script_argv(spec),
            "traceback_file": str(worker.traceback_file),
            "entry_script": {
                "log_file": str(self._layout.entry_script_log(worker.name).absolute()),
                "agent_name": worker.name.process,
                "output_dir": str(spec.output_dir.absolute()),
            },
        }

    def _arm(self, worker: _Worker) -> None:
        self._deadlines.arm(worker.slot, time.monotonic() + self._spec.timeout_seconds)

    # --- results ----------------------------------------------------------------------------------------

    def _receive(self, timeout: float) -> None:
        workers = {worker.replies: worker for worker in self._slots if worker is not None}
        seconds = self._deadlines.seconds_left(time.monotonic(), timeout)
        if not workers:
            time.sleep(seconds)
            return
        for connection in wait(list(workers), seconds):
            self._receive_from(workers[connection])  # type: ignore[index]  # wait() returns what it was given

    def _read_init_failure(self, worker: _Worker) -> None:
        """A worker that went in `init()` may have said why first: its traceback is the job's error, as when `poll`
        reads it. Its `ready`, if it said that, is not taken: gone before its first task, it failed its start."""
        with contextlib.suppress(OSError, ProtocolError):
            for frame in worker.reply_pipe.frames():
                message, _ = reply(frame, ready=False)
                if message["kind"] == INIT_FAILED:
                    self._init_failed(worker, message["error"])
                    return

    def _receive_from(self, worker: _Worker) -> None:
        """What the worker sent, each reply in turn while it keeps its slot; then what ended its pipe, if something
        did (a length that is no frame's, or its end closed)."""
        pipe = worker.reply_pipe
        try:
            for frame in pipe.frames():
                if self._slots[worker.slot] is not worker:
                    return  # a reply before stopped it
                index = worker.task.index if worker.task is not None else None
                self._take(worker, *reply(frame, worker.ready, index))
        except OSError:
            self._lose_dead(worker)
            return
        except ProtocolError as error:
            if self._slots[worker.slot] is worker:
                self._stop_for(worker, error)
            return
        if self._slots[worker.slot] is worker and pipe.broken is not None:
            self._stop_for(worker, pipe.broken)
        elif self._slots[worker.slot] is worker and pipe.ended:
            self._lose_dead(worker)

    def _take(self, worker: _Worker, message: dict[str, Any], payload: bytes) -> None:
        kind = message["kind"]
        self._learn(message.get("modules"))
        if kind == READY:
            worker.ready = True
            self._init_failures[worker.slot] = 0
            self._deadlines.disarm(worker.slot)
            if worker.task is not None:
                self._arm(worker)
        elif kind == DONE:
            timing = TryTiming(**message["timing"])
            self._finish(worker, TaskDone(message["index"], worker.name, message["returned"], payload, timing))
        elif kind == ERROR:
            timing = TryTiming(**message["timing"])
            self._finish(worker, TaskFailed(message["index"], worker.name, "exception", message["error"], timing))
        elif kind == INIT_FAILED:
            self._init_failed(worker, message["error"])

    def _learn(self, modules: list[str] | None) -> None:
        """A worker listed the modules it imported (when ready, and since then with its first answer): the warm
        template of its environment imports them too."""
        if modules is not None and self._templates is not None and self._template is not None:
            self._templates.learn(self._template, modules, self._template_environment, len(self._slots))

    def _finish(self, worker: _Worker, result: TaskDone | TaskFailed) -> None:
        self._deadlines.disarm(worker.slot)
        self._finished.append(result)
        worker.task, worker.queued = worker.queued, None
        if worker.task is not None:
            self._start_queued(worker, worker.task)

    def _start_queued(self, worker: _Worker, task: Task) -> None:
        """The worker goes on to its queued task as it answers the one before (or as it gets it, when it was too
        large to send earlier): its time limit starts now."""
        if worker.unsent is not None:
            _send_quietly(worker.commands, worker.unsent)
            worker.unsent = None
        self._arm(worker)
        self._finished.append(TaskStarted(task.index, worker.name))

    def _stop_expired(self) -> None:
        for slot in self._deadlines.expired(time.monotonic()):
            worker = self._slots[slot]
            assert worker is not None
            stack = self._dump_stack(worker)
            if not worker.ready:
                self._init_failed(
                    worker,
                    f"init() did not return within {self._spec.init_timeout_seconds:g} seconds; the worker "
                    f"{worker.name} was stopped. Where it was:\n{stack}",
                )
                continue
            assert worker.task is not None
            self._lose(
                worker,
                "timeout",
                f"run() did not finish mini-batch {worker.task.index} within {self._spec.timeout_seconds:g} seconds; "
                f"the worker {worker.name} was stopped. Where it was:\n{stack}",
            )

    def _dump_stack(self, worker: _Worker) -> str:
        """Ask the worker for its Python stacks (faulthandler) and wait briefly until they are written."""
        _signal_quietly(worker.process.pid, STACK_DUMP_SIGNAL)
        deadline = time.monotonic() + self._stack_dump_seconds
        written = 0
        while time.monotonic() < deadline:
            time.sleep(STACK_POLL_SECONDS)
            previous, written = written, _size(worker.traceback_file)
            if written and written == previous:
                break
        return read_text(worker.traceback_file)

    def _lose_dead(self, worker: _Worker) -> None:
        crash = read_text(worker.traceback_file)  # before _retire removes the worker's folder
        returncode = self._retire(worker)
        when = "during init()" if not worker.ready else f"while running mini-batch {getattr(worker.task, 'index', '')}"
        stderr = self._layout.stderr(worker.name)
        error = why_it_ended(
            f"The worker {worker.name}", returncode, when, crash, stderr, self._layout.relative(stderr)
        )
        if not worker.ready:
            self._count_init_failure(worker, error)
        elif worker.task is not None:
            self._record_loss(worker, "died", error)

    def _stop_for(self, worker: _Worker, error: ProtocolError) -> None:
        """The worker sent what is not a reply: it is stopped as one that crashed (in `init()`: a failed `init()`),
        and its node's log says why (between mini-batches no try's error does)."""
        running = f"while running mini-batch {worker.task.index}" if worker.task is not None else "between mini-batches"
        message = stopped_for(f"The worker {worker.name}", error, running if worker.ready else "during init()")
        append_line(self._layout.node_main(worker.name.node), message)
        if worker.ready:
            self._lose(worker, "died", message)
        else:
            self._init_failed(worker, message)

    def _lose_before(self, worker: _Worker, task: Task) -> None:
        """The worker had gone before `task` reached it."""
        if worker.ready:
            message = f"The worker {worker.name} had exited before mini-batch {task.index} reached it."
            self._lose(worker, "died", message)
        else:  # it died in init(): no try of the mini-batch
            self._lose_dead(worker)

    def _lose(self, worker: _Worker, kind: FailureKind, error: str) -> None:
        self._retire(worker)
        self._record_loss(worker, kind, error)

    def _init_failed(self, worker: _Worker, error: str) -> None:
        self._retire(worker)
        self._count_init_failure(worker, error)

    def _count_init_failure(self, worker: _Worker, error: str) -> None:
        """The worker is gone; its task goes back to the coordinator without costing the mini-batch a try."""
        self._init_failures[worker.slot] += 1
        self._last_init_error = error
        self._last_init_details = self._layout.relative(self._layout.error(worker.name))
        self._record_loss(worker, "init", error)

    def _record_loss(self, worker: _Worker, kind: FailureKind, error: str) -> None:
        if worker.task is not None:
            self._finished.append(TaskFailed(worker.task.index, worker.name, kind, error))
        if worker.queued is not None:
            self._finished.append(TaskReturned(worker.queued.index))

    def _retire(self, worker: _Worker) -> int:
        """Kill what is left of the worker and its children, reap it and free its slot; returns its exit code."""
        returncode = worker.started.kill()
        append_line(
            self._layout.node_main(worker.name.node), f"{worker.name.process} exits with returncode {returncode}."
        )
        worker.started.close()
        self._gpus.release(worker.gpu)
        shutil.rmtree(worker.home, ignore_errors=True)
        self._deadlines.disarm(worker.slot)
        self._slots[worker.slot] = None
        return returncode


def _may_leave(worker: _Worker) -> bool:
    """An idle worker past `init()` leaves when told (`shutdown()`, then its exit); one still in `init()` is only
    stopped."""
    return worker.task is None and worker.ready


def job_reads(spec: JobSpec, sandbox: WorkerSandbox) -> list[Path | str]:
    """What a job's workers read besides their environment: its code (or the script's folder), its model, its
    inputs, and where the links the server made there lead; a rerun's, the inputs of the job it reruns, not where
    its links lead (one a user placed there may lead anywhere, and be changed after the rerun was asked for)."""
    assert spec.script_path is not None
    code = spec.code_dir or spec.script_path.parent
    model = [spec.model_dir] if spec.model_dir is not None else []
    linked = model if spec.input_roots else [*model, *spec.input_paths]
    return [code, *model, *spec.input_paths, *spec.input_roots, *sandbox.links_of(linked)]


def _job_homes(spec: JobSpec) -> Path:
    """A fresh folder for the job's worker folders, in a temporary folder of this user that others may cross (to
    their own worker folder, when workers run as another user) but not list. Whatever a server that died during the
    job left there goes first (its workers died with it).

    Named after the job, its output folder and this process: a coordinator that took the job over from a stuck
    one on this machine (`output.JobLock`) has folders of its own, and neither removes the other's. The name is a
    short digest, not the job's name: a worker's sockets (multiprocessing's forkserver listener, say) go in its
    TMPDIR below, and a unix socket's path is limited to 107 bytes (Decision 16)."""
    root = private_temp_root()
    job = hashlib.sha256(f"{spec.job_id}\0{spec.private_dir.absolute()}".encode()).hexdigest()[:10]
    for earlier in root.glob(f"{job}-*"):
        if not psutil.pid_exists(int(earlier.name.rsplit("-", 1)[1])):
            shutil.rmtree(earlier, ignore_errors=True)
    homes = root / f"{job}-{os.getpid()}"
    shutil.rmtree(homes, ignore_errors=True)
    homes.mkdir(mode=0o711)
    return homes


def script_argv(spec: JobSpec) -> list[str]:
    """The arguments the Azure driver passes, for scripts that read them with `argparse.parse_known_args()`."""
    return [
        str(spec.script_path),
        "--logging_level", spec.logging_level.upper(),
        "--mini_batch_size", str(spec.mini_batch_size),
        "--output", str(spec.output_dir.absolute()),
        "--output_action", "summary_only" if spec.output_action == SUMMARY_ONLY else "append_row",
    ]  # fmt: skip


def _send_quietly(connection: Connection, frame: bytes) -> None:
    """Send, ignoring a worker that has already gone: its end of the pipe reports that to `poll`."""
    with contextlib.suppress(OSError):
        connection.send_bytes(frame)


def _signal_quietly(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
