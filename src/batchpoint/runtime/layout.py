"""Where each log file of a job goes: its `logs/` folder laid out as Azure ML lays out the logs of a batch scoring
job, so that a user who follows Azure's troubleshooting pages finds each file where they say (docs/runtime.md,
"The job's logs"; `readme.txt` in the folder explains it).

Workers are named by node and process (`executor.WorkerName`): a node is an instance index, a process is
`processNNN`, numbered per node from 000, and a process started in place of one that stopped takes the next
number. So no two processes of a job ever write the same file, also after the server restarted during the job.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from batchpoint.runtime.executor import WorkerName

README = "readme.txt"
JOB_RESULT = "job_result.txt"
JOB_ERROR = "job_error.txt"
FAILED_ITEMS = "failed_items.txt"
"""One input file per line: those a rerun of the job's failures runs again."""
STREAM_LOG = "user_logs/std_log.txt"
MASTER_ROLE = "sys/master_role.txt"
PROCESSED_MINI_BATCHES = "sys/job_report/processed_mini-batches.csv"
USER_ERROR_SUMMARY = "user/error.txt"
PROGRESS_OVERVIEW = "job_progress_overview.{stamp}.txt"
PROGRESS_STAMP = "%Y%m%d%H"
"""The UTC hour the progress overview file was started; a new file starts each UTC day."""

_PROCESS_FILE = re.compile(r"process(\d+)\.stdout\.txt")
_append_lock = threading.Lock()


@dataclass(frozen=True)
class LogLayout:
    root: Path
    """The job's `logs/` folder."""

    def file(self, name: str) -> Path:
        return self.root / name

    def stdout(self, worker: WorkerName) -> Path:
        return self.root / "user" / "stdout" / worker.node / f"{worker.process}.stdout.txt"

    def stderr(self, worker: WorkerName) -> Path:
        return self.root / "user" / "stderr" / worker.node / f"{worker.process}.stderr.txt"

    def error(self, worker: WorkerName) -> Path:
        """The tracebacks of the errors the scoring script raised in this process (init() or run())."""
        return self.root / "user" / "error" / worker.node / f"{worker.process}.txt"

    def entry_script_logs(self, node: str) -> Path:
        """The folder of `EntryScript().logger`'s files (`<process>.log.txt`): `EntryScript().log_dir`."""
        return self.root / "user" / "entry_script_log" / node

    def entry_script_log(self, worker: WorkerName) -> Path:
        """What the process logged with `EntryScript().logger`."""
        return self.entry_script_logs(worker.node) / f"{worker.process}.log.txt"

    def node_main(self, node: str) -> Path:
        """The node's processes: when each started (pid, GPU) and how it exited."""
        return self.root / "sys" / "node" / node / "_main.txt"

    def perf(self, node: str) -> Path:
        return self.root / "perf" / node

    def progress_overview(self, stamp: str) -> Path:
        return self.root / PROGRESS_OVERVIEW.format(stamp=stamp)

    def relative(self, path: Path) -> str:
        """How error messages name a log file: relative to the job's output folder (`logs/...`)."""
        return path.relative_to(self.root.parent).as_posix()

    def worker_outputs(self) -> dict[str, Path]:
        """Every worker's stdout and stderr file, labelled `<node>/<process>.stdout` (`.stderr`): what the job's
        streamed log copies."""
        found = sorted((self.root / "user").glob("std*/*/process*.std*.txt"))
        return {f"{path.parent.name}/{path.name.removesuffix('.txt')}": path for path in found}


class ProcessNames:
    """Hands out the process names of each node: `processNNN`, a new number for every process started, past the
    numbers an earlier run of the job (before the server restarted) used, whose stdout files are there."""

    def __init__(self, layout: LogLayout) -> None:
        self._layout = layout
        self._next: dict[str, int] = {}

    def new(self, node: str) -> WorkerName:
        """The name of a process about to start on `node`; its stdout file is created now, so the number stays
        taken even if the process never writes a line."""
        number = self._next.get(node)
        if number is None:
            number = self._first_free(node)
        self._next[node] = number + 1
        worker = WorkerName(node, f"process{number:03d}")
        stdout = self._layout.stdout(worker)
        stdout.parent.mkdir(parents=True, exist_ok=True)
        stdout.touch()
        return worker

    def _first_free(self, node: str) -> int:
        folder = self._layout.stdout(WorkerName(node, "process000")).parent
        used = [
            int(match.group(1))
            for path in folder.glob("process*.stdout.txt")
            if (match := _PROCESS_FILE.fullmatch(path.name))
        ]
        return max(used, default=-1) + 1


def timestamp(moment: datetime | None = None) -> str:
    """Azure's time stamp of a log line: UTC, microseconds, no zone (`2021-04-15T22:03:32.226929`)."""
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%f")


def append_line(path: Path, text: str) -> None:
    """Append `text`, each of its lines stamped with the time, in one write (the folder is made if needed)."""
    stamp = timestamp()
    lines = "".join(f"{stamp} {line}\n" for line in text.rstrip("\n").splitlines())
    path.parent.mkdir(parents=True, exist_ok=True)
    with _append_lock, open(path, "a", encoding="utf-8", errors="replace") as log:
        log.write(lines)


README_TEXT = """\
The logs of this batch scoring job, laid out as Azure Machine Learning lays out the logs of a batch endpoint job
(see "Troubleshooting batch endpoints" in Azure's documentation). Written by batchpoint; where Azure documents no
format, the format is batchpoint's own and is described here.

Where to start
  job_result.txt      How the job ended: its status, the counts, the output file and the first failures.
  job_error.txt       Only when something failed: each distinct error once (the scoring script's, and the job's
                      own when it failed outside the script), with how often it happened, its first mini-batch and
                      files, its traceback, and the file under user/error/ that holds every occurrence.
  user_logs/std_log.txt
                      What `ml_client.jobs.stream` and `batchpoint jobs logs --follow` print: progress, each failed
                      try, the end, and every line the workers printed (labelled <node>/<process>.stdout).

Nodes and processes
  <node> is an instance of the deployment (0 to instance_count - 1). <process> is processNNN, numbered per node
  from process000; a process started in place of one that stopped (an init() that failed, a run() that timed out,
  a worker that died, a restart of the server) takes the next number, so no two processes share a file.

The files
  readme.txt                                   This file.
  job_progress_overview.<YYYYMMDDHH>.txt       Progress, about every second while it changes: "Processed X of N
                                               mini batches in H:MM:SS. Estimated remaining time H:MM:SS." A new
                                               file starts each UTC day (named after the hour it started).
  job_result.txt, job_error.txt                See above.
  failed_items.txt                             The input files of the mini-batches that failed on every try or
                                               never ran: what `batchpoint jobs rerun JOB --failed` runs again.
                                               A path a line; one holding a line break is a JSON string.
  sys/master_role.txt                          The coordinator's view: the job starting or resuming, settings the
                                               runtime does not act on, workers that failed to start or were lost,
                                               workers that share a GPU, how the job ended.
  sys/job_report/processed_mini-batches.csv    One row per ended try of a mini-batch, in mini-batch order, written
                                               from the job's ledger when the job ends (so it is exact after a
                                               restart of the server too). The last row of each mini-batch is its
                                               final one: RUN_DONE (its rows are in the output), RUN_EXCEPTION,
                                               RUN_TIMEOUT or PROCESS_EXITED (its last try failed so; it used all
                                               its tries), or NOT_PROCESSED (the job ended before it did). Columns:
                                               Mini-batch Id, Picked Count (the try), Node Id, Process, Start Time
                                               (UTC), Total, Succeeded, Failed (items), Elapsed Seconds (the try),
                                               Process Seconds (CPU time of the worker), Run Method Seconds (run()
                                               alone), Status, Error Category (the exception's class), Error Message
                                               (its last line), Mini-batch Detail (its files, as JSON). N/A: not
                                               known (a worker that died could not time its try).
  sys/node/<node>/_main.txt                    When each process of the node started (its pid, its GPU) and how it
                                               exited ("process001 exits with returncode -9.").
  user/error.txt                               The errors of the scoring script, summarized as in job_error.txt.
  user/error/<node>/<process>.txt              Every traceback the scoring script raised in that process, in
                                               init() or in run(), each headed by its mini-batch, try and files.
  user/stdout/<node>/<process>.stdout.txt      What the process printed and logged (Python's root logger, at the
                                               deployment's logging level).
  user/stderr/<node>/<process>.stderr.txt      What the process wrote to stderr.
  user/entry_script_log/<node>/<process>.log.txt
                                               What the scoring script logged with
                                               azureml_user.parallel_run.EntryScript().logger.
                                               The folder is EntryScript().log_dir: the script
                                               may write files of its own there.
  perf/<node>/node_resource_usage.csv          The machine's CPU, memory, disk and network use, and
  perf/<node>/processes_resource_usage.csv     each worker process's, sampled when the workers start and then
                                               every 600 s (BATCHPOINT_RESOURCE_MONITOR_INTERVAL in the
                                               deployment's environment variables; 0 turns it off). Local workers
                                               only.
"""
"""`readme.txt`: what each file of the layout holds (Azure publishes no text of its own)."""
