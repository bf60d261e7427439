"""Running a pipeline's steps: each step is a shell command in its own process; a step starts when the steps it
reads from have completed, and independent steps run in parallel.

A step writes its outputs into `<output>.partial` folders that are renamed into place when it completes, so an
output folder is whole or absent. Steps that already ended (before a crash of the server) are not run again: a
step's terminal state is final.

A step's command runs in the sandbox (docs/security.md): it reads its inputs and its environment, writes its code
copy and its partial outputs, and has a private home and temporary folder (in `spawn.private_temp_root()`). Its
environment holds the operator's settings, its own `variables` and the runtime's.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from batchpoint.runtime.processes import ProcessIdentity
from batchpoint.runtime.sandbox.policy import WorkerSandbox
from batchpoint.runtime.spawn import command_line, private_temp_root
from batchpoint.runtime.status import JobStatus

POLL_SECONDS = 0.05
ERROR_TAIL_LINES = 20


@dataclass(frozen=True)
class StepRun:
    """One step, ready to run: its command with every placeholder replaced by a value or a folder."""

    name: str
    command: str
    code_dir: Path | None
    work_dir: Path
    outputs: Mapping[str, Path]
    """Final output folders; the command writes to `partial(path)` of each."""
    depends_on: frozenset[str] = frozenset()
    python: Path = field(default_factory=lambda: Path(sys.executable))
    """The interpreter of the step's Python environment (its `bin/` comes first on PATH); default: the server's."""
    inputs: tuple[Path, ...] = ()
    """The folders and files the command reads (its inputs' data, models, earlier steps' outputs)."""
    variables: Mapping[str, str] = field(default_factory=dict)
    """The step's environment variables (its own and its managed identity's); the runtime's own win."""

    @property
    def log_file(self) -> Path:
        return step_log(self.work_dir)


@dataclass
class GraphOutcome:
    statuses: dict[str, JobStatus]
    errors: dict[str, str]

    @property
    def failed(self) -> list[str]:
        return [name for name, status in self.statuses.items() if status == JobStatus.FAILED]


StatusListener = Callable[[str, JobStatus, str], None]
"""Called with (step, status, message) whenever a step starts or ends."""


def step_log(work_dir: Path) -> Path:
    """A step's output (stdout and stderr), `user_logs/std_log.txt` as Azure names it."""
    return work_dir / "user_logs" / "std_log.txt"


def partial(path: Path) -> Path:
    return path.with_name(path.name + ".partial")


def run_graph(
    steps: list[StepRun],
    ended: Mapping[str, JobStatus],
    continue_on_step_failure: bool,
    on_status: StatusListener,
    should_cancel: Callable[[], bool],
    sandbox: WorkerSandbox | None = None,
) -> GraphOutcome:
    """Run the steps that have not `ended` (step -> its terminal status, from an earlier run of the graph); `sandbox`:
    what the steps' commands may reach (default: the kernel's Landlock, the server's own uid)."""
    sandbox = sandbox or WorkerSandbox()
    outcome = GraphOutcome(dict(ended), {})
    pending = {step.name: step for step in steps if step.name not in ended}
    running: dict[Future[tuple[JobStatus, str]], StepRun] = {}
    stop = threading.Event()
    with (
        ThreadPoolExecutor(max_workers=max(1, len(pending)), thread_name_prefix="step") as pool,
        _stopped_on_error(stop),
    ):
        while pending or running:
            if should_cancel() or (outcome.failed and not continue_on_step_failure):
                stop.set()
            if not stop.is_set():
                for step in _ready(pending, outcome.statuses):
                    del pending[step.name]
                    on_status(step.name, JobStatus.RUNNING, "")
                    running[pool.submit(_run_step, step, stop, sandbox)] = step
                _skip_blocked(pending, outcome, on_status)
            if not running:
                break
            finished, _ = wait(list(running), timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
            for future in finished:
                step = running.pop(future)
                status, message = future.result()
                outcome.statuses[step.name] = status
                if message:
                    outcome.errors[step.name] = message
                on_status(step.name, status, message)
    for name in pending:
        outcome.statuses[name] = JobStatus.CANCELED
        on_status(name, JobStatus.CANCELED, "The pipeline stopped before this step started.")
    return outcome


@contextlib.contextmanager
def _stopped_on_error(stop: threading.Event) -> Iterator[None]:
    """Whatever interrupts the graph (the server stopping, a lost lease) stops the running steps before the
    pool waits for them."""
    try:
        yield
    except BaseException:
        stop.set()
        raise


def _ready(pending: dict[str, StepRun], statuses: dict[str, JobStatus]) -> list[StepRun]:
    return [
        step for step in pending.values() if all(statuses.get(name) == JobStatus.COMPLETED for name in step.depends_on)
    ]


def _skip_blocked(pending: dict[str, StepRun], outcome: GraphOutcome, on_status: StatusListener) -> None:
    """Steps downstream of a failed or canceled step can never run: they end Canceled, naming the cause."""
    changed = True
    while changed:
        changed = False
        for step in list(pending.values()):
            blocked = [
                name for name in step.depends_on if outcome.statuses.get(name) in (JobStatus.FAILED, JobStatus.CANCELED)
            ]
            if blocked:
                del pending[step.name]
                outcome.statuses[step.name] = JobStatus.CANCELED
                on_status(
                    step.name, JobStatus.CANCELED, f"Skipped: the step '{blocked[0]}' it depends on did not complete."
                )
                changed = True


def _run_step(step: StepRun, stop: threading.Event, sandbox: WorkerSandbox) -> tuple[JobStatus, str]:
    _prepare(step, sandbox)
    private = Path(tempfile.mkdtemp(prefix="step-", dir=private_temp_root()))  # short: Decision 16
    try:
        return _run_sandboxed(step, stop, sandbox, private)
    finally:
        shutil.rmtree(private, ignore_errors=True)


def _run_sandboxed(
    step: StepRun, stop: threading.Event, sandbox: WorkerSandbox, private: Path
) -> tuple[JobStatus, str]:
    command, environment = _sandboxed(step, sandbox, private)
    with open(step.log_file, "ab") as log:
        process = subprocess.Popen(
            command,
            cwd=step.work_dir / "code",
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        ProcessIdentity.of(process.pid).save(_process_group_file(step))
        while process.poll() is None:
            if stop.is_set():
                _kill(process)
                return JobStatus.CANCELED, "Canceled: the pipeline stopped while this step ran."
            time.sleep(POLL_SECONDS)
    if process.returncode != 0:
        return (
            JobStatus.FAILED,
            f"The step '{step.name}' failed (exit code {process.returncode}): {_tail(step.log_file)}",
        )
    for final in step.outputs.values():
        shutil.rmtree(final, ignore_errors=True)
        partial(final).rename(final)
    return JobStatus.COMPLETED, ""


def _sandboxed(step: StepRun, sandbox: WorkerSandbox, private: Path) -> tuple[list[str], dict[str, str]]:
    """The step's shell command in its sandbox, and the environment to start it with; its HOME and TMPDIR are in
    `private` (with the other sandboxed processes' private folders), and so is its policy."""
    os.chmod(private, 0o711)
    home = private / "sandbox"
    sandbox.prepare_home(home)
    partials = [partial(final) for final in step.outputs.values()]
    policy = sandbox.policy(
        python=step.python, read=step.inputs, read_write=[step.work_dir / "code", *partials], scratch=home
    )
    defined = {"PYTHONUNBUFFERED": "1"}  # prints reach the log as they happen
    environment = sandbox.environment(python=step.python, home=home, variables=step.variables, defined=defined)
    return command_line(["/bin/bash", "-c", step.command], private / "policy.json", policy, environment)


def _process_group_file(step: StepRun) -> Path:
    return step.work_dir / "process-group"


def _stop_leftover(step: StepRun) -> None:
    """A step that was running when the server was killed may still run, orphaned: stop it before running again
    (only if its process is still the one that was started: the pid may have been reused since)."""
    leftover = ProcessIdentity.load(_process_group_file(step))
    if leftover is not None:
        leftover.kill_group()


def _prepare(step: StepRun, sandbox: WorkerSandbox) -> None:
    """No leftover of an earlier try, a fresh copy of the code (a script may write next to itself) and empty
    partial output folders, both the worker user's."""
    _stop_leftover(step)
    code = step.work_dir / "code"
    shutil.rmtree(code, ignore_errors=True)
    if step.code_dir is not None:
        shutil.copytree(step.code_dir, code, symlinks=True)
    else:
        code.mkdir(parents=True)
    sandbox.give(code)
    step.log_file.parent.mkdir(parents=True, exist_ok=True)
    for final in step.outputs.values():
        shutil.rmtree(partial(final), ignore_errors=True)
        partial(final).mkdir(parents=True)
        sandbox.give(partial(final))


def _kill(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _tail(log: Path) -> str:
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    return " | ".join(line.strip() for line in lines[-ERROR_TAIL_LINES:] if line.strip()) or "(no output)"
