"""Jobs with real worker processes: a scoring script and input files written into a temporary folder."""

from __future__ import annotations

import csv
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from batchpoint.runtime.coordinator import run_job
from batchpoint.runtime.executor import Executor
from batchpoint.runtime.job_report import COLUMNS
from batchpoint.runtime.ledger import InMemoryLedger, Ledger, MiniBatch
from batchpoint.runtime.local import LocalProcessExecutor
from batchpoint.runtime.report import JobOutcome
from batchpoint.runtime.sandbox.policy import WorkerSandbox
from batchpoint.runtime.spec import JobSpec


@dataclass
class Kit:
    """Builds one job: `inputs` then `script`, then `run`. Tries and errors are read back from `ledger`."""

    root: Path
    ledger: InMemoryLedger = field(default_factory=InMemoryLedger)
    input_dir: Path = field(init=False)
    output_dir: Path = field(init=False)
    code_dir: Path = field(init=False)

    def __post_init__(self) -> None:
        self.input_dir, self.output_dir, self.code_dir = self.root / "in", self.root / "out", self.root / "code"

    @property
    def markers(self) -> Path:
        """A folder scripts use to remember things across tries (e.g. "fail the first time only")."""
        path = self.root / "markers"
        path.mkdir(exist_ok=True)
        return path

    def inputs(self, *names: str) -> list[Path]:
        """Create input files (relative names, parents made); each holds its own stem."""
        paths = []
        for name in names:
            path = self.input_dir / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(Path(name).stem)
            paths.append(path)
        return paths

    def script(self, *parts: str, name: str = "score.py") -> None:
        """Write a module into the code folder from parts, each dedented on its own."""
        self.code_dir.mkdir(exist_ok=True)
        (self.code_dir / name).write_text("\n".join(textwrap.dedent(part) for part in parts))

    def spec(self, **settings: Any) -> JobSpec:
        defaults: dict[str, Any] = {
            "job_id": "job",
            "input_paths": [self.input_dir],
            "output_dir": self.output_dir,
            "code_dir": self.code_dir,
            "scoring_script": "score.py",
            "mini_batch_size": 2,
            "timeout_seconds": 20.0,
            "environment_variables": {"MARKERS": str(self.markers)},
        }
        return JobSpec(**{**defaults, **settings})

    def sandbox(self) -> WorkerSandbox:
        """The workers' sandbox, with the test-only allowance to write `markers` (outside the job)."""
        return WorkerSandbox(read_write=(str(self.markers),))

    def executor(self, **options: Any) -> LocalProcessExecutor:
        return LocalProcessExecutor(sandbox=self.sandbox(), **options)

    def run(self, ledger: Ledger | None = None, **settings: Any) -> JobOutcome:
        return run_job(self.spec(**settings), ledger or self.ledger, self.executor())

    def batches(self, job_id: str = "job") -> list[MiniBatch]:
        batches = self.ledger.mini_batches(job_id)
        assert batches is not None
        return batches

    def tries(self) -> list[int]:
        return [batch.tries for batch in self.batches()]

    def predictions(self) -> str | None:
        path = self.output_dir / "predictions.csv"
        return path.read_text() if path.exists() else None

    def check(
        self, outcome: JobOutcome, status: str, failed_items: int, tries: list[int], predictions: str | None
    ) -> None:
        """What every job test pins: the status, the failed items, the tries of each mini-batch, and the exact
        predictions file (None: there is none)."""
        assert outcome.status == status, outcome.message
        assert outcome.counts.items_failed == failed_items
        assert self.tries() == tries
        assert self.predictions() == predictions

    def log(self, relative: str, missing: str | None = None) -> str:
        """A log file's text; `missing` is what an absent file reads as (by default it is an error)."""
        path = self.output_dir / "logs" / relative
        if missing is not None and not path.exists():
            return missing
        return path.read_text()

    def overview(self) -> str:
        """The job's progress overview (`logs/job_progress_overview.<YYYYMMDDHH>.txt`, one file per UTC day)."""
        return "".join(path.read_text() for path in sorted((self.output_dir / "logs").glob("job_progress_overview.*")))

    def errors(self) -> str:
        """Every error file of the job's processes (`logs/user/error/<node>/<process>.txt`), one after another."""
        return "".join(path.read_text() for path in sorted((self.output_dir / "logs" / "user" / "error").glob("*/*")))


@pytest.fixture
def kit(tmp_path: Path) -> Kit:
    return Kit(tmp_path)


ECHO = """
    import os

    def run(mini_batch):
        return [os.path.basename(path) for path in mini_batch]
"""
"""A script whose rows are the input file names."""

SLOW_TO_SHUT_DOWN = """
    import os
    import time
    from pathlib import Path

    def run(mini_batch):
        return mini_batch

    def shutdown():
        time.sleep(1)
        Path(os.environ["MARKERS"], str(os.getpid())).touch()
"""
"""A script whose `shutdown()` takes a second, then leaves a marker."""


def committed_before_shutdown_ended(kit: Kit, executor: Executor) -> list[bool]:
    """Run SLOW_TO_SHUT_DOWN on two workers; for each, whether the predictions file was in place before its
    `shutdown()` ended."""
    kit.inputs("a.txt", "b.txt")
    kit.script(SLOW_TO_SHUT_DOWN)
    outcome = run_job(kit.spec(mini_batch_size=1, max_concurrency_per_instance=2), kit.ledger, executor)
    assert outcome.status == "Completed", outcome.message
    committed = (kit.output_dir / "predictions.csv").stat().st_ctime
    return [marker.stat().st_mtime > committed for marker in kit.markers.iterdir()]


def ray_nodes(logs: Path) -> set[str]:
    """The Ray nodes named by the first line of each worker's stdout file (`Worker process000 on node 0 (pid N on
    HOST, Ray node ID)`)."""
    firsts = [path.read_text().partition("\n")[0] for path in (logs / "user" / "stdout").glob("*/process*.stdout.txt")]
    return {first.rsplit("Ray node ", 1)[-1] for first in firsts if first}


def report(logs: Path) -> list[dict[str, str]]:
    """The rows of a job's `sys/job_report/processed_mini-batches.csv`, checking its header."""
    with open(logs / "sys" / "job_report" / "processed_mini-batches.csv", newline="") as file:
        reader = csv.DictReader(file)
        assert tuple(reader.fieldnames or ()) == COLUMNS
        return list(reader)


def check_completed_report(logs: Path, mini_batches: int, items: int) -> None:
    """A completed job's logs after any number of restarts: one final row per mini-batch, each RUN_DONE, the
    succeeded items add up, and each process started once, with a file of its own."""
    rows = report(logs)
    ids = [int(row["Mini-batch Id"]) for row in rows]
    assert ids == sorted(ids) and set(ids) == set(range(mini_batches))
    final = {int(row["Mini-batch Id"]): row for row in rows}
    assert {row["Status"] for row in final.values()} == {"RUN_DONE"}
    assert sum(int(row["Succeeded"]) for row in final.values()) == items
    started = [
        f"{main.parent.name}/{line.split()[1]}"
        for main in logs.glob("sys/node/*/_main.txt")
        for line in main.read_text().splitlines()
        if " started " in line
    ]
    stdout = {f"{path.parent.name}/{path.name.split('.')[0]}" for path in logs.glob("user/stdout/*/*.stdout.txt")}
    assert len(started) == len(set(started)) and set(started) <= stdout  # a crash may leave a number unused


def lines(*rows: str) -> str:
    return "".join(f"{row}\n" for row in rows)


USES_ENTRY_SCRIPT = """
    import os
    import sys

    from azureml_user.parallel_run import EntryScript

    def init():
        entry = EntryScript()
        entry.logger.info("init of %s on %d.%d", entry.agent_name, *sys.version_info[:2])
        entry.logger.debug("below the deployment's logging level")
        with open(os.path.join(entry.log_dir, entry.agent_name + "_own.txt"), "w") as own:
            own.write("written by the script\\n")

    def run(mini_batch):
        entry = EntryScript()
        assert entry is EntryScript()
        entry.logger.warning("scoring %s", [os.path.basename(path) for path in mini_batch])
        facts = [
            entry.output_dir == os.environ["AZUREML_BI_OUTPUT_PATH"],
            entry.working_dir == os.getcwd(),
            entry.config["mini_batch_size"],
        ]
        return [" ".join(map(str, facts))] * len(mini_batch)
"""
"""A script written for ParallelRunStep: logs through `EntryScript().logger`, writes a file of its own to
`log_dir`, and reports what `EntryScript` says of its process."""


def check_entry_script_logs(logs: Path, mini_batches: int, python: tuple[int, int] = sys.version_info[:2]) -> None:
    """Each process's `EntryScript` lines in `user/entry_script_log/<node>/<process>.log.txt`, in Azure's stand-in's
    format and at the deployment's level (Info); every mini-batch logged once."""
    files = sorted((logs / "user" / "entry_script_log").glob("*/process*.log.txt"))
    assert files, "no EntryScript log"
    text = "".join(path.read_text() for path in files)
    for path in files:
        assert (
            f"|ParallelRunStep|init()|INFO|init of {path.name.split('.')[0]} on {python[0]}.{python[1]}\n"
            in path.read_text()
        )
    assert text.count("|ParallelRunStep|run()|WARNING|scoring [") == mini_batches
    assert "below the deployment's logging level" not in text
    stdout = "".join(path.read_text() for path in (logs / "user" / "stdout").glob("*/*.txt"))
    assert "scoring [" not in stdout


REPORTS_ITS_GPU = """
    import os

    def run(mini_batch):
        name = os.path.basename(mini_batch[0])
        if name.startswith("die"):
            os._exit(3)
        gpu = os.environ.get("CUDA_VISIBLE_DEVICES")
        return [f"{name} {os.getpid()} {gpu} {os.environ['AZ_BATCHAI_GPU_COUNT_FOUND']}"]
"""
"""A script whose row names its input, its process, the GPU it sees and the GPUs its node has."""


WRITES_INTO_ITS_PIPE = """
    import gc
    import os
    import struct
    import time
    from multiprocessing.connection import Connection

    DONE = '{"kind": "done", "index": 0, "returned": 1, "timing": {"started": 0, "elapsed": 0}}'
    BAD = {
        "not json": b"not json\\n",
        "deep": b"[" * 100000 + b"\\n",
        "a list for a kind": b'{"kind": []}\\n',
        "a stranger's index": DONE.replace('"index": 0', '"index": 7').encode(),
        "no timing": b'{"kind": "done", "index": 0, "returned": 1}\\n',
        "a timing of NaN": DONE.replace('"started": 0', '"started": NaN').encode(),
        "a timing of 400 digits": DONE.replace('"started": 0', '"started": 1' + "0" * 400).encode(),
        "negative rows": DONE.replace('"returned": 1', '"returned": -5').encode(),
        "ready again": b'{"kind": "ready"}\\n',
        "init_failed in run()": b'{"kind": "init_failed", "error": "no"}\\n',
        "done in init()": DONE.encode(),
    }
    FRAME = struct.Struct("!i")
    OWN_DONE = DONE.encode() + b"\\na.txt\\n"
    RAW = {
        "a length it does not send": FRAME.pack(1000),
        "a length over 1 GiB": FRAME.pack(2**31 - 1),
        "its own done, then a length that is no frame's": FRAME.pack(len(OWN_DONE)) + OWN_DONE + FRAME.pack(-5),
    }

    def write_once(when):
        marker = os.path.join(os.environ["MARKERS"], "written")
        if os.environ["WHEN"] != when or os.path.exists(marker):
            return
        open(marker, "w").close()
        for thing in gc.get_objects():
            if isinstance(thing, Connection) and thing.writable:
                if os.environ["BAD"] in RAW:
                    os.write(thing.fileno(), RAW[os.environ["BAD"]])
                    time.sleep(300)
                thing.send_bytes(BAD[os.environ["BAD"]])

    def init():
        write_once("init")

    def run(mini_batch):
        write_once("run")
        return [os.path.basename(path) for path in mini_batch]
"""
"""Writes one bad reply (`BAD`) into its worker's pipe, once in the job, in `init()` or `run()` (`WHEN`)."""


def bad_reply_variables(kit: Kit, bad: str, when: str) -> dict[str, str]:
    """The job's variables for WRITES_INTO_ITS_PIPE."""
    return {"MARKERS": str(kit.markers), "BAD": bad, "WHEN": when}
