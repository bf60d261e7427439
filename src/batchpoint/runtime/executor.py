"""The seam between the coordinator and the workers that call the scoring script.

The coordinator owns the ledger, retries, the error threshold and the output; an executor only runs tries. The
local process pool (`batchpoint.runtime.local`) and the Ray executor (`batchpoint.runtime.ray_executor`) implement
its five abstract methods; queuing a task behind a running one (`queue_slots`, `queue`) and booting workers while
the plan is written (`prepare`, `discard`) are optional."""

from __future__ import annotations

import errno
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

from batchpoint.runtime.spec import JobSpec

FailureKind = Literal["exception", "init", "timeout", "died", "lost"]
"""`lost`: the worker's machine went away (a Ray node died); like `init`, it is not the mini-batch's fault and costs
it no try."""


@dataclass(frozen=True, slots=True)
class WorkerName:
    """Who runs a try, as the job's log layout names it: `node` is the instance index ("0" to
    instance_count - 1) and `process` is "processNNN", numbered per node from 000, a replacement taking the next
    number (as on Azure), so that no two processes of a job share a log file. `detail` tells it apart in
    messages (its pid, or the Ray host it runs on)."""

    node: str
    process: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.process} on node {self.node}" + (f" ({self.detail})" if self.detail else "")


@dataclass(frozen=True, slots=True)
class TryTiming:
    """How long a try took, as the worker measured it: `started` is the UTC time (seconds since the epoch) it
    began, `elapsed` the whole try, `run_seconds` the `run()` call alone and `process_seconds` the worker's CPU
    time (`time.process_time()`) during the try."""

    started: float
    elapsed: float
    process_seconds: float | None = None
    run_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class Task:
    """One try of one mini-batch."""

    index: int
    files: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TaskDone:
    """`run()` returned a list or DataFrame of `returned` rows, formatted as `rows` (empty for summary_only)."""

    index: int
    worker: WorkerName
    returned: int
    rows: bytes
    timing: TryTiming | None = None


@dataclass(frozen=True, slots=True)
class TaskFailed:
    """The try failed; `error` is what a user needs to fix it: the exception and its traceback, or why the
    worker stopped. `timing` is None when the worker could not measure the try (it died or was stopped)."""

    index: int
    worker: WorkerName
    kind: FailureKind
    error: str
    timing: TryTiming | None = None


@dataclass(frozen=True, slots=True)
class TaskStarted:
    """A queued task began: the try before it on the same worker ended."""

    index: int
    worker: WorkerName


@dataclass(frozen=True, slots=True)
class TaskReturned:
    """A queued task that never began, as its worker stopped first: it goes back as it was, at no cost."""

    index: int


TaskResult = TaskDone | TaskFailed
TaskEvent = TaskResult | TaskStarted | TaskReturned


class InitFailedError(Exception):
    """`init()` failed on every worker slot as many times as the job allows: no worker can run the job, which
    fails whatever its error threshold (Decision 1). The message carries the last init traceback."""

    @classmethod
    def on_every_worker(cls, tries: int, workers: int, last_error: str, details: str) -> InitFailedError:
        """`details` names the log file of the last failure (`logs/user/error/<node>/<process>.txt`, or the node's
        log when the worker had no task)."""
        return cls(
            f"The init() of the scoring script failed {tries} times in a row on each of the {workers} worker(s) "
            f"({gist(last_error)}); the job cannot run. See logs/job_error.txt. The last error ({details}):\n"
            f"{last_error}"
        )


def gist(error: str) -> str:
    """One line of an error: a traceback's exception line (its class and the first line of its message, which may
    span lines: the line after the last traceback's indented frames), else the error's first line."""
    lines = [line for line in error.strip().splitlines() if line.strip()] or ["no error text"]
    if not lines[0].startswith("Traceback"):
        return lines[0].strip()
    last = max(number for number, line in enumerate(lines) if line.startswith("Traceback (most recent call last)"))
    raised = [line for line in lines[last + 1 :] if not line.startswith((" ", "\t"))]
    return (raised or lines)[0 if raised else -1].strip()


class ExecutorUnavailableError(Exception):
    """The executor cannot run the job at all (for example its cluster does not answer); the message says why."""


DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
"""A full disk or quota: a passing fault wherever it happens (`cluster/faults.py`), which pauses the job."""


class TransientFault(Exception):
    """Raised by an executor when the machinery failed, not the script (a worker host lost): the job waits and
    resumes from its ledger instead of failing."""


class Executor(ABC):
    """Runs tries on workers that have imported the scoring script and called its `init()`.

    One instance runs one job at a time, driven by one thread: `start`, then `submit`/`poll` until done, then
    `stop`. An executor must enforce `spec.timeout_seconds` on each `run()` (reporting a `timeout` failure), report
    a worker that dies during a try as `died`, replace lost workers, and make sure no worker outlives the process
    that started it.

    A worker whose `init()` fails (raises, dies, or exceeds `spec.init_timeout_seconds`) hands its task back as
    an `init` failure, which costs the mini-batch no try, and is replaced; a slot whose `init()` failed
    `spec.init_tries` times in a row is given up. When every slot is given up, `poll` raises InitFailedError."""

    workers_on_this_machine: ClassVar[bool] = True
    """Whether the workers run on the coordinator's machine: a job's remote input is then copied here and its
    environment built here first. An executor whose workers run elsewhere reads the input and builds the
    environment where they run (`spec.remote_input`)."""

    def prepare(self, spec: JobSpec, tasks: int) -> None:  # noqa: B027 - optional: an executor may do nothing here
        """A new job's plan of `tasks` mini-batches is being recorded, and `start` comes next: an executor may start
        workers now, whose start and `init()` then overlap the plan's write (docs/runtime.md, "How a worker
        starts"). `discard` stops them when the job ends before `start`."""

    def discard(self) -> None:  # noqa: B027 - optional, as `prepare`
        """The job ended before `start` (its plan could not be recorded): the workers `prepare` started are stopped.
        Does nothing once `start` was called (`stop` retires them then); safe to call more than once."""

    @abstractmethod
    def start(self, spec: JobSpec) -> None:
        """Get ready to run the job's tries (after `prepare`, when it was called); workers may start lazily on
        `submit`."""

    @abstractmethod
    def idle_slots(self) -> int:
        """How many more tasks `submit` accepts now."""

    @abstractmethod
    def submit(self, task: Task) -> WorkerName:
        """Start the task on an idle slot and return the name of the worker running it."""

    def queue_slots(self) -> int:
        """How many more tasks `queue` accepts now; an executor that cannot queue keeps 0."""
        return 0

    def queue(self, task: Task) -> None:
        """Hand the task to a busy worker, which starts it as soon as its current try ends, without waiting for
        the coordinator's answer to that try. `poll` reports TaskStarted when it does, or TaskReturned when the
        worker stopped first."""
        raise NotImplementedError

    @abstractmethod
    def poll(self, timeout: float) -> Sequence[TaskEvent]:
        """Results of finished tries, and queued tasks that started or came back; waits up to `timeout` seconds
        when there are none yet. Raises InitFailedError when no slot can start a worker any more."""

    def wind_down(self) -> None:  # noqa: B027 - optional: an executor may have nothing to do here
        """Every task has ended and none will come: idle workers may start leaving (`shutdown()`, their exit)
        while the coordinator commits the output; `stop` then waits for them. An executor may do nothing here."""

    @abstractmethod
    def stop(self, graceful: bool = True) -> None:
        """Retire the workers: idle ones call `shutdown()`, busy ones are stopped; not `graceful`: all are stopped at
        once, without `shutdown()` (another process took the job over). Safe to call more than once."""
