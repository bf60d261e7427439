"""Sandbox benchmark (issue 23): what entering the worker sandbox adds to starting a worker.

One job of one mini-batch (a trivial script) on the local executor, started again and again, alternately sandboxed
(`WorkerSandbox()`: Landlock, no capabilities, its own IPC namespace) and not (`WorkerSandbox(abi=0)`: the same
start, minimal environment, no sandbox), on the server's interpreter and on a Python 3.8 virtual environment when
this machine has one. Measured per start: the wall time from the first submit to the mini-batch's result (spawn,
interpreter start, sandbox, `init()`, one `run()`), and the CPU time the worker used (its rusage once reaped: robust
to a loaded machine, where wall times are noise). Target: the median sandboxed start costs at most 10 ms of CPU
more than the unsandboxed one in the same run; the wall ratio is reported.

Usage: python benchmarks/sandbox_bench.py [--no-fail] [--rounds N]
"""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from batchpoint.runtime.environments.interpreters import PythonFinder, PythonNotFound
from batchpoint.runtime.executor import Task, TaskDone
from batchpoint.runtime.local import LocalProcessExecutor
from batchpoint.runtime.sandbox.policy import WorkerSandbox
from batchpoint.runtime.spec import JobSpec
from targets import arguments, exit_status

TARGET_ADDED_CPU_MS = 10.0
SCRIPT = "def init():\n    pass\n\n\ndef run(mini_batch):\n    return mini_batch\n"


def children_cpu_ms() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (usage.ru_utime + usage.ru_stime) * 1000


def start_once(spec: JobSpec, sandbox: WorkerSandbox, python: Path) -> tuple[float, float]:
    """(wall ms to the first result, CPU ms of the worker) of one worker start."""
    executor = LocalProcessExecutor(python=str(python), sandbox=sandbox)
    executor.start(spec)
    cpu = children_cpu_ms()
    started = time.perf_counter()
    executor.submit(Task(0, (str(spec.input_paths[0] / "a.txt"),)))
    while not any(isinstance(event, TaskDone) for event in executor.poll(1.0)):
        pass
    wall = (time.perf_counter() - started) * 1000
    executor.stop()  # reaps the worker: its CPU time joins RUSAGE_CHILDREN
    return wall, children_cpu_ms() - cpu


def python38(root: Path) -> Path | None:
    try:
        interpreter = PythonFinder().choose("3.8")
    except PythonNotFound:
        return None
    subprocess.run([interpreter.path, "-m", "venv", "--without-pip", str(root / "py38")], check=True)
    return root / "py38" / "bin" / "python"


def measure(root: Path, label: str, python: Path, rounds: int) -> float:
    (root / "code").mkdir(parents=True, exist_ok=True)
    (root / "code" / "score.py").write_text(SCRIPT)
    (root / "in").mkdir(exist_ok=True)
    (root / "in" / "a.txt").write_text("a")
    spec = JobSpec(
        job_id="bench",
        input_paths=[root / "in"],
        output_dir=root / "out",
        code_dir=root / "code",
        scoring_script="score.py",
    )
    (root / "out").mkdir(exist_ok=True)
    plain: list[tuple[float, float]] = []
    boxed: list[tuple[float, float]] = []
    for _ in range(rounds):
        plain.append(start_once(spec, WorkerSandbox(abi=0), python))
        boxed.append(start_once(spec, WorkerSandbox(), python))
    wall = [statistics.median(run[0] for run in runs) for runs in (plain, boxed)]
    cpu = [statistics.median(run[1] for run in runs) for runs in (plain, boxed)]
    added = cpu[1] - cpu[0]
    print(
        f"  {label:18s} CPU ms: unsandboxed {cpu[0]:6.1f}  sandboxed {cpu[1]:6.1f}  added {added:+5.1f} | "
        f"wall ms: {wall[0]:6.1f} vs {wall[1]:6.1f} (ratio {wall[1] / wall[0]:.2f})"
    )
    return added


def main() -> int:
    parser = arguments(__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    options = parser.parse_args()
    print(f"sandbox: Landlock ABI {WorkerSandbox().abi}; worker start, median of {options.rounds} rounds")
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        added = [measure(root / "server", "server's Python", Path(sys.executable), options.rounds)]
        old = python38(root)
        if old is not None:
            added.append(measure(root / "py38", "Python 3.8 venv", old, options.rounds))
    ok = max(added) <= TARGET_ADDED_CPU_MS
    print(f"  {'ok' if ok else 'FAILED'}: at most {TARGET_ADDED_CPU_MS:.0f} ms of CPU added per worker start")
    return exit_status(ok, options.no_fail)


if __name__ == "__main__":
    sys.exit(main())
