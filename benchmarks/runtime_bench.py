"""Batch runtime benchmark: a job run by batchpoint against a hand-written multiprocessing.Pool doing the same work.

A job of 20,000 small files in mini-batches of 10 runs on 2 workers, once with a trivial ``run()`` and once with
a ``run()`` that sleeps 10 ms. batchpoint runs it through ``run_job`` with an ``InMemoryLedger`` and a
``LocalProcessExecutor`` (the HTTP invoke path is not part of it). The baseline, in the same run, is what a user
would write by hand: a spawn-context ``multiprocessing.Pool`` of 2 processes that import the same scoring script
and call its ``init()`` once, ``imap`` over the same mini-batches in order, and the rows written to one output
file in order and fsynced. Both outputs must be byte-identical.

The coordinator runs in a fresh spawned process per job, so that its peak RSS (``ru_maxrss``) is its own; a
10,000-file and a 100,000-file job measure whether that peak depends on the number of input files.

Usage: python benchmarks/runtime_bench.py [--no-fail] [--rounds N]
"""

from __future__ import annotations

import hashlib
import importlib.util
import multiprocessing
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from targets import arguments, check, exit_status

# batchpoint is imported only in `run_batchpoint`: the Pool's spawned processes import this module too, and
# must not pay for more than the baseline needs.

FILES = 20_000
MEMORY_FILES = (10_000, 100_000)
FOLDER_FILES = 10_000
"""Inputs are folders of this many files; a job of N files reads the first N / FOLDER_FILES folders."""
MINI_BATCH_SIZE = 10
MINI_BATCHES = FILES // MINI_BATCH_SIZE
WORKERS = 2
SLEEPS = {"trivial run()": 0.0, "10 ms run()": 0.010}
TRIVIAL, SLOW = SLEEPS
BATCHPOINT, POOL = "batchpoint", "Pool"
TARGET_OVERHEAD_MS = 0.5
TARGET_RATIO = 0.9
TARGET_FIRST_RUN_SECONDS = 1.0
TARGET_PEAK_MB = 300
MB = 1_000_000
SLEEP_ENV, MARKS_ENV = "RUNTIME_BENCH_SLEEP", "RUNTIME_BENCH_MARKS"

SCORING_SCRIPT = f'''
import os
import time

SLEEP = float(os.environ["{SLEEP_ENV}"])
_first_run = True


def init():
    pass


def run(mini_batch):
    global _first_run
    if _first_run:
        _first_run = False
        with open(os.path.join(os.environ["{MARKS_ENV}"], f"first-run-{{os.getpid()}}"), "w") as marker:
            marker.write(repr(time.time()))
    if SLEEP:
        time.sleep(SLEEP)
    return [os.path.basename(path) for path in mini_batch]
'''
"""Rows are the input file names; each process records the wall-clock time of its first run() call."""


@dataclass(frozen=True)
class Job:
    folders: tuple[Path, ...]
    script: Path
    sleep: float
    workdir: Path
    """A fresh folder for this run only: the output folder and the first-run markers."""

    @property
    def output_dir(self) -> Path:
        return self.workdir / "out"

    @property
    def marks(self) -> Path:
        return self.workdir / "marks"

    @property
    def environment(self) -> dict[str, str]:
        return {SLEEP_ENV: repr(self.sleep), MARKS_ENV: str(self.marks)}


@dataclass(frozen=True)
class Run:
    seconds: float
    first_run: float
    """Seconds from the start (the call of run_job, or the creation of the Pool) to the first run() call."""
    output_sha256: str
    rss_before: int = 0
    """The coordinator's peak RSS in bytes before run_job (batchpoint only)."""
    peak_rss: int = 0
    """The coordinator's peak RSS in bytes over the job (batchpoint only)."""
    server_cpu: float = 0.0
    """CPU seconds the server process spent on the job (served_bench only)."""


# --- inputs ----------------------------------------------------------------------------------------------


def write_inputs(root: Path, count: int) -> list[Path]:
    """`count` files of two bytes in folders of FOLDER_FILES, named so that sorted names are the input order."""
    folders = []
    for part in range(count // FOLDER_FILES):
        folder = root / f"part{part:02d}"
        folder.mkdir(parents=True)
        for index in range(part * FOLDER_FILES, (part + 1) * FOLDER_FILES):
            (folder / f"f{index:06d}.txt").write_bytes(b"x\n")
        folders.append(folder)
    return folders


def first_run_time(marks: Path) -> float:
    """The earliest first run() call of any worker, as recorded by the scoring script."""
    return min(float(marker.read_text()) for marker in marks.iterdir())


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- batchpoint ------------------------------------------------------------------------------------------


def run_batchpoint(job: Job) -> Run:
    """Run the job through the runtime; called in a fresh process, whose peak RSS is the coordinator's."""
    from batchpoint.runtime.coordinator import run_job
    from batchpoint.runtime.ledger import InMemoryLedger
    from batchpoint.runtime.local import LocalProcessExecutor
    from batchpoint.runtime.sandbox.policy import WorkerSandbox
    from batchpoint.runtime.spec import JobSpec

    spec = JobSpec(
        job_id="bench",
        input_paths=job.folders,
        output_dir=job.output_dir,
        code_dir=job.script.parent,
        scoring_script=job.script.name,
        mini_batch_size=MINI_BATCH_SIZE,
        instance_count=1,
        max_concurrency_per_instance=WORKERS,
        environment_variables=job.environment,
    )
    rss_before = peak_rss()
    started, clock = time.time(), time.perf_counter()
    marks = WorkerSandbox(read_write=(str(job.marks),))  # the script's marks: outside its job
    outcome = run_job(spec, InMemoryLedger(), LocalProcessExecutor(sandbox=marks))
    seconds = time.perf_counter() - clock
    if outcome.status != "Completed" or outcome.output_file is None:
        raise RuntimeError(f"the job ended {outcome.status}: {outcome.message}")
    return Run(seconds, first_run_time(job.marks) - started, sha256(outcome.output_file), rss_before, peak_rss())


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def run_coordinator(job: Job) -> Run:
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as process:
        return process.submit(run_batchpoint, job).result()


# --- the hand-written Pool -------------------------------------------------------------------------------

_script: ModuleType | None = None
"""The scoring script, in each Pool process."""


def load_script(path: Path, environment: Mapping[str, str]) -> None:
    """The Pool's initializer: the environment batchpoint gives its workers, then import and init() once."""
    global _script
    os.environ.update(environment)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    _script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(_script)
    _script.init()


def score(files: list[str]) -> bytes:
    """One mini-batch: run() and its rows formatted as batchpoint formats a list, one `str(row)` per line."""
    assert _script is not None
    return "".join(f"{row}\n" for row in _script.run(files)).encode()


def pool_mini_batches(folders: tuple[Path, ...]) -> Iterator[list[str]]:
    files = [os.path.join(folder, name) for folder in folders for name in sorted(os.listdir(folder))]
    for start in range(0, len(files), MINI_BATCH_SIZE):
        yield files[start : start + MINI_BATCH_SIZE]


def run_pool(job: Job) -> Run:
    output = job.output_dir / "predictions.csv"
    output.parent.mkdir()
    started, clock = time.time(), time.perf_counter()
    context = multiprocessing.get_context("spawn")
    with context.Pool(WORKERS, initializer=load_script, initargs=(job.script, job.environment)) as pool:
        with output.open("wb") as out:
            for rows in pool.imap(score, pool_mini_batches(job.folders)):
                out.write(rows)
            out.flush()
            os.fsync(out.fileno())
        pool.close()
        pool.join()
    seconds = time.perf_counter() - clock
    return Run(seconds, first_run_time(job.marks) - started, sha256(output))


# --- measuring and reporting -----------------------------------------------------------------------------

RUNNERS: dict[str, Callable[[Job], Run]] = {
    BATCHPOINT: run_coordinator,
    POOL: run_pool,
}


def measure(runner: str, job: Job) -> Run:
    job.marks.mkdir(parents=True)
    try:
        return RUNNERS[runner](job)
    finally:
        shutil.rmtree(job.workdir)


@dataclass
class Timings:
    """Every run of every scenario, by (scenario, runner)."""

    runs: dict[tuple[str, str], list[Run]]

    def best(self, scenario: str, runner: str) -> Run:
        """The fastest run: noise on a shared machine only ever slows a run down."""
        return min(self.runs[scenario, runner], key=lambda run: run.seconds)

    def all(self, runner: str) -> list[Run]:
        return [run for (_, name), runs in self.runs.items() if name == runner for run in runs]


def run_rounds(folders: tuple[Path, ...], script: Path, workdir: Path, rounds: int) -> Timings:
    """Each scenario `rounds` times per runner, alternating which runner goes first."""
    timings = Timings({(scenario, runner): [] for scenario in SLEEPS for runner in RUNNERS})
    for scenario, sleep in SLEEPS.items():
        for round_ in range(rounds):
            order = list(RUNNERS) if round_ % 2 == 0 else list(reversed(RUNNERS))
            for runner in order:
                run = measure(runner, Job(folders, script, sleep, workdir / "job"))
                timings.runs[scenario, runner].append(run)
                print(f"  round {round_ + 1} {scenario:<14} {runner:<10} {run.seconds:6.2f} s, "
                      f"first run() after {run.first_run:.2f} s", flush=True)  # fmt: skip
    return timings


def measure_memory(inputs: list[Path], script: Path, workdir: Path) -> dict[int, Run]:
    """A job of each size in MEMORY_FILES with the trivial run(), by number of files."""
    runs: dict[int, Run] = {}
    for count in MEMORY_FILES:
        folders = tuple(inputs[: count // FOLDER_FILES])
        runs[count] = run = measure(BATCHPOINT, Job(folders, script, SLEEPS[TRIVIAL], workdir / "job"))
        print(f"  {count:>7,} files  {run.seconds:6.2f} s, coordinator RSS {run.rss_before / MB:.0f} MB before "
              f"run_job, peak {run.peak_rss / MB:.0f} MB", flush=True)  # fmt: skip
    return runs


def report_speed(timings: Timings) -> list[bool]:
    """The best run of each runner per scenario; the overhead is checked on the trivial run(), the ratio on the
    10 ms one, and the time to the first run() on every batchpoint run."""
    print(f"\nbest of each, {FILES:,} files, {MINI_BATCHES:,} mini-batches of {MINI_BATCH_SIZE}, {WORKERS} workers:")
    ratios: dict[str, float] = {}
    overheads: dict[str, float] = {}
    for scenario in SLEEPS:
        ours, pool = timings.best(scenario, BATCHPOINT), timings.best(scenario, POOL)
        ratios[scenario] = pool.seconds / ours.seconds
        overheads[scenario] = (ours.seconds - pool.seconds) / MINI_BATCHES * 1e3
        print(f"  {scenario:<14} batchpoint {ours.seconds:6.2f} s, Pool {pool.seconds:6.2f} s: ratio batchpoint/Pool "
              f"{ratios[scenario]:.2f}, overhead {overheads[scenario]:.2f} ms per mini-batch")  # fmt: skip
    first_runs = [run.first_run for run in timings.all(BATCHPOINT)]
    pool_first_runs = [run.first_run for run in timings.all(POOL)]
    print(f"  first run() after: batchpoint {_seconds(first_runs)}; Pool {_seconds(pool_first_runs)}")
    outputs = {run.output_sha256 for run in timings.all(BATCHPOINT) + timings.all(POOL)}
    return [
        check(overheads[TRIVIAL] <= TARGET_OVERHEAD_MS,
              f"overhead per mini-batch, {TRIVIAL}: {overheads[TRIVIAL]:.2f} ms (target <= {TARGET_OVERHEAD_MS} ms)"),
        check(ratios[SLOW] >= TARGET_RATIO,
              f"throughput ratio batchpoint/Pool, {SLOW}: {ratios[SLOW]:.2f} (target >= {TARGET_RATIO})"),
        check(max(first_runs) <= TARGET_FIRST_RUN_SECONDS,
              f"run_job to first run(): {max(first_runs):.2f} s in the slowest of {len(first_runs)} runs "
              f"(target <= {TARGET_FIRST_RUN_SECONDS:g} s)"),
        check(len(outputs) == 1, "batchpoint and the Pool wrote byte-identical outputs"),
    ]  # fmt: skip


def report_memory(memory: dict[int, Run]) -> bool:
    small, large = MEMORY_FILES
    growth = (memory[large].peak_rss - memory[small].peak_rss) / MB
    print(f"  coordinator peak RSS grows by {growth:.0f} MB from {small:,} to {large:,} files")
    peak = memory[large].peak_rss / MB
    return check(
        peak < TARGET_PEAK_MB, f"coordinator peak RSS, {large:,} files: {peak:.0f} MB (target < {TARGET_PEAK_MB} MB)"
    )


def _seconds(values: list[float]) -> str:
    return ", ".join(f"{value:.2f}" for value in values) + " s"


def benchmark(rounds: int, workdir: Path) -> tuple[Timings, dict[int, Run]]:
    started = time.monotonic()
    inputs = write_inputs(workdir / "in", max(MEMORY_FILES))
    print(f"wrote {max(MEMORY_FILES):,} input files in {time.monotonic() - started:.1f} s", flush=True)
    script = workdir / "code" / "score.py"
    script.parent.mkdir()
    script.write_text(SCORING_SCRIPT)
    timings = run_rounds(tuple(inputs[: FILES // FOLDER_FILES]), script, workdir, rounds)
    return timings, measure_memory(inputs, script, workdir)


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__)
    parser.add_argument("--rounds", type=int, default=2, help="runs per runner and scenario (default 2)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="runtime-bench-") as workdir:
        timings, memory = benchmark(args.rounds, Path(workdir))
    passed = all([*report_speed(timings), report_memory(memory)])
    return exit_status(passed, args.no_fail)


if __name__ == "__main__":
    sys.exit(main())
