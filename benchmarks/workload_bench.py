"""Workload benchmark: batchpoint against Ray Data, a hand-written multiprocessing.Pool and the serial limit.

Two real scoring workloads, each run by every system on the same machine, with the same number N of worker
processes (default: the number of cores), the same input files and the same model file:

- **tabular**: 1,000 CSV files of 1,000 rows x 8 float columns, scored by a scikit-learn RandomForest (50 trees,
  depth 8) saved as an MLflow model. batchpoint: an MLflow deployment without a scoring script (its generated
  scorer). Ray Data: ``read_csv`` -> ``map_batches`` with a model-loading class -> ``write_csv``. Pool: one
  predict per mini-batch of 10 files, one output CSV.
- **images**: 2,000 PNG files (224 x 224 RGB), scored by a torchvision ResNet-18 with random weights on the CPU.
  batchpoint: a scoring script returning a DataFrame. Ray Data: ``read_images`` -> ``map_batches`` -> ``write_csv``.

How each system is driven and timed:

- **batchpoint** as users drive it: ``batchpoint serve --http`` (SQLite), the model, code and deployment created
  over HTTP, then an invoke over HTTP and polling the job every second until it reads ``Completed``: the time from
  the invoke to the last output byte, which is when the predictions file was committed (its ``st_ctime``: it is
  written, fsynced, then linked into place), not when the poll saw the job end (up to a second later).
- **Ray Data**: a local cluster started by the benchmark (``ray.init(address="local")``, never joining another
  one) with N + 1 logical CPUs: N actors of 1 CPU and one slot for the read and write tasks (with N, the actors
  hold every CPU and the reads never run). Timed from ``read_*`` to the return of ``write_csv``.
- **Pool**: a script as one writes it by hand: its libraries imported at its top, then ``Pool(N, initializer=load)``
  (fork, the default on Linux before Python 3.14, so workers inherit the imports) ``imap`` over mini-batches of 10
  files, the parent writing one output file in order, fsynced. Timed from ``Pool()`` to the fsync.
- **limit**: the same work serially in one process with the model already loaded (read, predict, write, fsync),
  divided by N: no parallel system beats it on N free cores. It pays no process start, import or model load. Its
  time is the CPU time of the thread doing the work, or its wall time if shorter: what it takes on a core of its
  own. Its wall time also counts the time it waited for a core, which on a machine with other work grows with that
  work (a 136-second serial pass once used its core 77% of the time beside a test suite) and made it no limit.

Fair rules: one thread per process for every system (``OMP_NUM_THREADS=1``, torch ``set_num_threads(1)``); the same
scoring code (``workload_scoring.py``) and model load (``mlflow.pyfunc.load_model(..., suppress_warnings=True)``,
``load_state_dict``); the same batching (10 files, or 10,000 rows for Ray's ``batch_size``); warm caches for all:
every input is read once first (the OS file cache) and each system makes a warm-up pass over 40 files before it is
measured (batchpoint: a job of the running server, which keeps what it keeps between jobs, then a wait until its
processes are idle, so that the warm template its workers taught has finished its imports; Ray: in the cluster it
measures on; Pool and limit: in the process that measures). Rounds alternate the order of the systems; the
ratios are the median over rounds of the same round's ratio. Outputs are compared as each file's multiset of
predictions (Ray writes its rows in its own order and files).

Printed per system: items per second, time to the first prediction (from the start of the clock to the first
prediction any process made, recorded by the scoring code itself), wall time, the peak of the summed RSS of all
processes involved (batchpoint: the server and its workers; Ray: the driver and every cluster process; Pool: the
parent and its workers) with PSS beside it, their CPU seconds and the number of processes.

First-prediction probes: after the rounds, ``--probes`` pairs (default 6) of batchpoint and the Pool, each pair
alternating which goes first, each stopped at its first prediction (batchpoint's job is canceled, the Pool
terminated after its first answer) and run without the memory sampler. A round's first prediction varies by up to
0.3 s on a 2-core VM, more than the two systems differ; the pairs' median difference does not.

Targets: batchpoint's throughput >= 1.0x Ray Data's, >= 0.95x the Pool's, >= 0.85x the limit, on both workloads;
its time to the first prediction below both peers' (the Pool's: the probes' median difference below 0; Ray Data's:
the rounds' medians); its peak RSS at most Ray Data's. Exits 1 when one is missed.

Needs the ``bench`` extra (``make bench`` installs it). Data and models are generated once into ``--data``.

Usage: python benchmarks/workload_bench.py [--workload tabular|images|all] [--rounds N] [--probes N] [--workers N]
[--no-fail]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import ctypes
import functools
import json
import logging
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import workload_scoring as scoring
from targets import arguments, check, exit_status

if TYPE_CHECKING:
    from multiprocessing.pool import Pool

    import httpx

# Heavy libraries (pandas, mlflow, torch, ray, httpx) are imported where they are used: each system runs in a
# process of its own, which imports what it needs and nothing more.

BENCH_DIR = Path(__file__).resolve().parent
TABULAR, IMAGES = "tabular", "images"
BATCHPOINT, RAY, POOL, LIMIT = "batchpoint", "Ray Data", "Pool", "limit"
SYSTEMS = (BATCHPOINT, RAY, POOL, LIMIT)
FILES = {TABULAR: 1_000, IMAGES: 2_000}
ROWS = 1_000
IMAGE_SIDE = 224
MINI_BATCH_FILES = 10
WARMUP_FILES = 40
THREAD_VARIABLES = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
RESNET_FILE = "resnet18.pt"
PR_SET_CHILD_SUBREAPER = 36
TARGETS = {RAY: 1.0, POOL: 0.95, LIMIT: 0.85}
"""batchpoint's throughput over each system's, at least."""
AGREEMENT = 0.99
"""The share of files whose predictions every system must agree on (a ResNet's floating-point sums may differ
with the batch a file was in, which can flip a near tie)."""
POLL_SECONDS = 1.0
"""How often the job is read while it runs, as a user's client reads it (the SDK's `jobs.stream` every few seconds).
The time is the predictions file's commit, which the polling does not delay; each read costs the server (one of
the measured processes) about 1.5 ms of CPU: every 0.1 s, 0.6 s of a 42-second job's CPU."""
ENDED = ("Completed", "Failed", "Canceled")
PROBES = 6
"""Paired first-prediction probes per workload, batchpoint and the Pool in turn (each pair alternating which goes
first). The rounds' first predictions vary by up to 0.3 s on a 2-core VM, more than the two systems differ, so the
target against the Pool is judged on the median of the pairs' differences."""
PROBE_SECONDS = 120.0
"""How long a probe waits for its first prediction."""
Probes = list[tuple[float, float]]
"""Paired first predictions in seconds: (batchpoint's, the Pool's)."""
SETTLE_SECONDS = 120.0
SETTLED_CPU = 0.02
"""CPU seconds per second below which the server's children (its warm template) count as idle after the warm-up,
twice in a row. Not a share of a core: on a loaded machine a template still importing gets far less than a quarter
of one (the bench once measured cold workers at a load of 30, its template importing at 0.15 core), never this
little."""
API = "2025-12-01"
V = {"api-version": API}
WORKSPACE = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local"
    "/providers/Microsoft.MachineLearningServices/workspaces/default"
)
MB = 2**20


# --- data and models ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    name: str
    inputs: Path
    warmup: Path
    """The first WARMUP_FILES inputs (hard links), for the warm-up passes."""
    model: Path
    """The MLflow model's folder, or the folder holding the ResNet's weights."""
    items: int


def prepare(data: Path, name: str, files: int) -> Workload:
    """The workload's inputs and model under `data`, generated the first time (deterministic), then read once so
    that every system finds them in the OS file cache."""
    make_inputs, make_model = (make_tables, make_forest) if name == TABULAR else (make_images, make_resnet)
    inputs = _generated(data / f"{name}-{files}", lambda folder: make_inputs(folder, files))
    warmup = _generated(data / f"{name}-{files}-warmup", lambda folder: _link_first(inputs, folder))
    model = _generated(data / ("forest-mlflow" if name == TABULAR else "resnet18"), make_model)
    paths = list(inputs.iterdir())
    for path in paths:
        path.read_bytes()
    return Workload(name, inputs, warmup, model, len(paths))


def _generated(target: Path, make: Callable[[Path], None]) -> Path:
    """`target`, made by `make` into a temporary folder renamed into place, so an interrupted run leaves none."""
    if not target.exists():
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.parent.mkdir(parents=True, exist_ok=True)
        make(partial)
        partial.rename(target)
    return target


def make_tables(folder: Path, files: int) -> None:
    import numpy as np
    import pandas as pd

    folder.mkdir()
    generator = np.random.default_rng(0)
    for index in range(files):
        frame = pd.DataFrame(generator.normal(size=(ROWS, len(scoring.FEATURES))).round(6), columns=scoring.FEATURES)
        frame.to_csv(folder / f"part-{index:05d}.csv", index=False)


def make_images(folder: Path, files: int) -> None:
    """Smooth pictures (upscaled from 28 x 28), which PNG compresses as it does photos, unlike noise."""
    import numpy as np
    from PIL import Image

    folder.mkdir()
    base = np.random.default_rng(0).integers(0, 255, size=(IMAGE_SIDE // 8, IMAGE_SIDE // 8, 3), dtype=np.uint8)
    for index in range(files):
        small = np.roll(base, index, axis=0) ^ np.uint8(index % 251)
        picture = Image.fromarray(small).resize((IMAGE_SIDE, IMAGE_SIDE), Image.Resampling.BILINEAR)
        picture.save(folder / f"img-{index:05d}.png")


def _link_first(inputs: Path, folder: Path) -> None:
    folder.mkdir()
    for path in sorted(inputs.iterdir())[:WARMUP_FILES]:
        os.link(path, folder / path.name)


def make_forest(folder: Path) -> None:
    """The tabular model: ``mark_first`` then a RandomForest, saved as an MLflow model with its signature."""
    import mlflow.sklearn
    import numpy as np
    import pandas as pd
    import sklearn
    from mlflow.models import infer_signature
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    features = pd.DataFrame(
        np.random.default_rng(1).normal(size=(5_000, len(scoring.FEATURES))), columns=scoring.FEATURES
    )
    labels = (features["f0"] + features["f1"] * features["f2"] > 0).astype(int)
    forest = RandomForestClassifier(n_estimators=50, max_depth=8, n_jobs=1, random_state=0)
    model = Pipeline([("mark", FunctionTransformer(scoring.mark_first)), ("forest", forest)]).fit(features, labels)
    mlflow.sklearn.save_model(
        model,
        str(folder),
        signature=infer_signature(features, model.predict(features)),
        code_paths=[scoring.__file__],
        serialization_format="pickle",
        pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
    )


def make_resnet(folder: Path) -> None:
    import torch
    import torchvision

    folder.mkdir()
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), folder / RESNET_FILE)


# --- what every system measures ------------------------------------------------------------------------------


class ProcessTree:
    """While in a ``with`` block: the peak summed RSS (and PSS) of a process and its descendants, sampled every
    0.1 s, and their CPU seconds (each process's last sample, less what it had used at the start; a process that
    lives less than 0.1 s may be missed). PSS reads ``smaps_rollup``, which costs ~10 ms of CPU per process with
    torch loaded, so only at a new RSS peak and at most every 5 s."""

    def __init__(self, pid: int) -> None:
        import psutil

        self._root = psutil.Process(pid)
        self.peak_rss = self.peak_pss = self.processes = 0
        self._cpu: dict[tuple[int, float], float] = {}
        """CPU seconds of each process (pid, start time) at its last sample."""
        self._cpu_at_start: dict[tuple[int, float], float] = {}
        self._last_pss = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample_until_stopped, daemon=True)

    @property
    def cpu_seconds(self) -> float:
        return sum(self._cpu.values()) - sum(self._cpu_at_start.values())

    def __enter__(self) -> ProcessTree:
        self._sample()
        self._cpu_at_start = dict(self._cpu)
        self.peak_rss = self.peak_pss = 0
        self._last_pss = 0.0  # the first peak of the measured span reads PSS (a run shorter than 5 s too)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _sample_until_stopped(self) -> None:
        while not self._stop.wait(0.1):
            self._sample()

    def _sample(self) -> None:
        import psutil

        members = [self._root, *self._root.children(recursive=True)]
        rss = 0
        for process in members:
            with contextlib.suppress(psutil.Error):
                with process.oneshot():
                    times = process.cpu_times()
                    self._cpu[process.pid, process.create_time()] = times.user + times.system
                    rss += process.memory_info().rss
        self.processes = max(self.processes, len(members))
        if rss > self.peak_rss:
            self.peak_rss = rss
            if time.monotonic() - self._last_pss >= 5.0:
                self._last_pss = time.monotonic()
                self.peak_pss = max(self.peak_pss, self._pss(members))

    @staticmethod
    def _pss(members: list[Any]) -> int:
        import psutil

        total = 0
        for process in members:
            with contextlib.suppress(psutil.Error):
                total += process.memory_full_info().pss
        return total


@dataclass
class Run:
    system: str
    seconds: float
    """From the start of the clock to the last output byte."""
    started: float
    """When the clock started (seconds since the epoch), to place the first prediction."""
    peak_rss: int = 0
    peak_pss: int = 0
    cpu_seconds: float = 0.0
    processes: int = 0
    first_prediction: float | None = None
    load: float = 0.0
    """The load average (1 minute) when the run ended."""
    predictions: dict[str, str] = field(default_factory=dict)
    """Each file's predictions, as a sorted multiset."""

    def measured(self, tree: ProcessTree) -> Run:
        self.peak_rss, self.peak_pss = tree.peak_rss, tree.peak_pss
        self.cpu_seconds, self.processes = tree.cpu_seconds, tree.processes
        return self


def first_mark(folder: Path) -> float | None:
    """The earliest first prediction any process recorded in `folder` (seconds since the epoch)."""
    marks = [float(path.read_text()) for path in folder.glob("*.mark") if path.stat().st_size]
    return min(marks) if marks else None


def mini_batches(folder: Path) -> list[list[str]]:
    files = sorted(str(path) for path in folder.iterdir())
    return [files[start : start + MINI_BATCH_FILES] for start in range(0, len(files), MINI_BATCH_FILES)]


# --- the peers, each in a process of its own (python workload_bench.py --child JSON) ---------------------------


def load_model(workload: str, model: str) -> Any:
    if workload == TABULAR:
        import mlflow.pyfunc

        return mlflow.pyfunc.load_model(model, suppress_warnings=True)
    return scoring.load_resnet(os.path.join(model, RESNET_FILE))


def score_tables(model: Any, files: list[str]) -> str:
    """One predict over the mini-batch's rows; ``row,prediction,file`` lines, as batchpoint writes them."""
    import pandas as pd

    frames = [pd.read_csv(path) for path in files]
    predictions = model.predict(pd.concat(frames, ignore_index=True)).tolist()
    lines, start = [], 0
    for path, frame in zip(files, frames, strict=True):
        name = os.path.basename(path)
        lines += [f"{row},{value},{name}\n" for row, value in enumerate(predictions[start : start + len(frame)])]
        start += len(frame)
    return "".join(lines)


def score_images(model: Any, files: list[str]) -> str:
    """``file class`` lines, as batchpoint writes the image script's DataFrame."""
    classes = scoring.classify(model, [scoring.read_image(path) for path in files])
    return "".join(f"{os.path.basename(path)} {label}\n" for path, label in zip(files, classes, strict=True))


SCORERS = {TABULAR: score_tables, IMAGES: score_images}
_worker: dict[str, Any] = {}
"""A Pool worker's model and workload, set by its initializer."""


def _load_in_worker(workload: str, model: str, marks: str) -> None:
    os.environ[scoring.MARKS_ENV] = marks
    _worker.update(workload=workload, model=load_model(workload, model))


def _score_in_worker(files: list[str]) -> str:
    return SCORERS[_worker["workload"]](_worker["model"], files)


Pass = Callable[[str, Path, str], tuple[float, float]]
"""One pass of a peer over an input folder, writing `output`, its processes recording their first prediction
in a marks folder; returns when its clock started (epoch seconds) and its seconds to the last output byte."""


def pool_pass(config: dict[str, Any], folder: str, output: Path, marks: str) -> tuple[float, float]:
    """The hand-written script's work, from ``Pool()`` to the fsync of its output."""
    started, clock = time.time(), time.perf_counter()
    with _pool(config, marks) as pool, output.open("w") as out:
        for text in pool.imap(_score_in_worker, mini_batches(Path(folder))):
            out.write(text)
        out.flush()
        os.fsync(out.fileno())
        return started, time.perf_counter() - clock


def pool_first(config: dict[str, Any], folder: str, marks: str) -> float:
    """A probe of the Pool's first prediction: its work until the answer of its first mini-batch; returns when its
    clock started (the workers record their first prediction in `marks`)."""
    started = time.time()
    with _pool(config, marks) as pool:
        next(pool.imap(_score_in_worker, mini_batches(Path(folder))))
    return started


def _pool(config: dict[str, Any], marks: str) -> Pool:
    """The hand-written script's Pool: forked workers that load the model once, recording their first prediction in
    `marks`."""
    context = multiprocessing.get_context("fork")
    return context.Pool(config["workers"], _load_in_worker, (config["workload"], config["model"], marks))


def limit_pass(model: Any, config: dict[str, Any], folder: str, output: Path, _marks: str) -> tuple[float, float]:
    """The serial work; its seconds are on a core of its own: its thread's CPU time, or its wall time if shorter."""
    score = SCORERS[config["workload"]]
    started, clock, cpu = time.time(), time.perf_counter(), time.thread_time()
    with output.open("w") as out:
        for files in mini_batches(Path(folder)):
            out.write(score(model, files))
        out.flush()
        os.fsync(out.fileno())
    return started, min(time.perf_counter() - clock, time.thread_time() - cpu)


class TablePredictor:
    """Ray Data's actor for the tabular workload."""

    def __init__(self, model: str, marks: str) -> None:
        os.environ[scoring.MARKS_ENV] = marks
        self.model = load_model(TABULAR, model)

    def __call__(self, batch: Any) -> Any:
        import pandas as pd

        predictions = self.model.predict(batch[scoring.FEATURES])
        return pd.DataFrame({"file": batch["path"].map(os.path.basename), "prediction": predictions})


class ImagePredictor:
    """Ray Data's actor for the image workload."""

    def __init__(self, model: str, marks: str) -> None:
        os.environ[scoring.MARKS_ENV] = marks
        self.model = load_model(IMAGES, model)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        classes = scoring.classify(self.model, list(batch["image"]))
        return {"file": np.array([os.path.basename(path) for path in batch["path"]]), "class": np.array(classes)}


def ray_pass(config: dict[str, Any], folder: str, output: Path, marks: str) -> tuple[float, float]:
    import ray.data

    workers = config["workers"]
    started, clock = time.time(), time.perf_counter()
    if config["workload"] == TABULAR:
        dataset = ray.data.read_csv(folder, include_paths=True).map_batches(
            TablePredictor, fn_constructor_args=(config["model"], marks), concurrency=workers, num_cpus=1,
            batch_size=MINI_BATCH_FILES * ROWS, batch_format="pandas",
        )  # fmt: skip
    else:
        dataset = ray.data.read_images(folder, mode="RGB", include_paths=True).map_batches(
            ImagePredictor, fn_constructor_args=(config["model"], marks), concurrency=workers, num_cpus=1,
            batch_size=MINI_BATCH_FILES, batch_format="numpy",
        )  # fmt: skip
    dataset.write_csv(str(output))
    return started, time.perf_counter() - clock


@contextlib.contextmanager
def ray_cluster(workers: int) -> Iterator[None]:
    """A local cluster of this process's own (its processes stay in its tree: this process is their subreaper),
    in a folder of its own (not /tmp/ray, through which another ``ray.init()`` on this machine would find it)."""
    ctypes.CDLL(None).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    import ray
    import ray.data

    temp = tempfile.mkdtemp(prefix="ray-")  # short: Ray's socket paths below it must fit in 107 bytes
    ray.init(
        address="local", num_cpus=workers + 1, include_dashboard=False, log_to_driver=False,
        logging_level=logging.ERROR, runtime_env={"env_vars": THREAD_VARIABLES}, _temp_dir=temp,
    )  # fmt: skip
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    try:
        yield
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)


def run_child(config: dict[str, Any]) -> dict[str, Any]:
    """One measured run of a peer after its warm-up pass, in this process; what it measured, for the parent."""
    system, work = config["system"], Path(config["work"])
    warmup_marks = work / "warmup-marks"
    warmup_marks.mkdir()
    with contextlib.ExitStack() as stack:
        if system == RAY:
            stack.enter_context(ray_cluster(config["workers"]))
            one_pass: Pass = functools.partial(ray_pass, config)
        elif system == POOL:
            _import_libraries(config["workload"])  # the script's own imports, which its forked workers inherit
            one_pass = functools.partial(pool_pass, config)
        else:
            one_pass = functools.partial(limit_pass, load_model(config["workload"], config["model"]), config)
        one_pass(config["warmup"], work / "warmup-output", str(warmup_marks))
        if config.get("probe"):
            return asdict(Run(system, 0.0, pool_first(config, config["inputs"], config["marks"])))
        with ProcessTree(os.getpid()) as tree:
            started, seconds = one_pass(config["inputs"], Path(config["output"]), config["marks"])
    return asdict(Run(system, seconds, started).measured(tree))


def _import_libraries(workload: str) -> None:
    if workload == TABULAR:
        import mlflow.pyfunc  # noqa: F401
        import pandas  # noqa: F401
    else:
        import PIL.Image  # noqa: F401
        import torch  # noqa: F401
        import torchvision  # noqa: F401


def measure_peer(system: str, workload: Workload, workers: int, work: Path) -> Run:
    """Run a peer in a fresh process (its own imports and memory) and read back its measurement and output."""
    output = work / ("output" if system == RAY else "output.txt")
    run = _run_peer(system, workload, workers, work, {"output": str(output)})
    mark = first_mark(work / "marks")
    run.first_prediction = None if system == LIMIT or mark is None else mark - run.started
    run.predictions = predictions(workload.name, sorted(output.iterdir()) if system == RAY else [output])
    return run


def probe_pool(workload: Workload, workers: int, work: Path) -> float:
    """The Pool's first prediction, in a fresh process after its warm-up pass, without the memory sampler."""
    run = _run_peer(POOL, workload, workers, work, {"probe": True})
    mark = first_mark(work / "marks")
    if mark is None:
        raise RuntimeError("the Pool's probe recorded no first prediction")
    return mark - run.started


def _run_peer(system: str, workload: Workload, workers: int, work: Path, settings: dict[str, Any]) -> Run:
    """`run_child` in a fresh process, with `settings` added to its configuration; what it measured."""
    shutil.rmtree(work, ignore_errors=True)
    (work / "marks").mkdir(parents=True)
    config = {
        "system": system, "workload": workload.name, "inputs": str(workload.inputs), "warmup": str(workload.warmup),
        "model": str(workload.model), "workers": workers, "work": str(work), "marks": str(work / "marks"),
        **settings,
    }  # fmt: skip
    with (work / "log.txt").open("w") as log:
        done = subprocess.run(
            [sys.executable, __file__, "--child", json.dumps(config)], stdout=subprocess.PIPE, stderr=log,
            text=True, env=child_environment(), check=False,
        )  # fmt: skip
    if done.returncode != 0:
        tail = "\n".join((work / "log.txt").read_text().splitlines()[-40:])
        raise RuntimeError(f"{system} failed (exit code {done.returncode}):\n{tail}")
    return Run(**json.loads(done.stdout.strip().splitlines()[-1]))


def child_environment() -> dict[str, str]:
    environment = {**os.environ, **THREAD_VARIABLES}
    environment.pop("RAY_ADDRESS", None)
    return environment


# --- batchpoint, through its server ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    client: httpx.Client
    home: Path
    pid: int


@contextlib.contextmanager
def serving(work: Path, data: Path) -> Iterator[Server]:
    """A server whose jobs may read `data` and `work` (the deployments' code) by local path."""
    import httpx

    from api_bench import batchpoint_command, free_port, mint_token, running

    home, port = work / "server", free_port()
    command = [*batchpoint_command(port, home), "--allow-local-path", str(data), "--allow-local-path", str(work)]
    with running(command, port, work / "server.log", env=THREAD_VARIABLES) as process:
        headers = {"Authorization": f"Bearer {mint_token(home)}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=120) as client:
            yield Server(client, home, process.pid)


IMAGE_SCRIPT = f'''
import os

import pandas as pd

import workload_scoring as scoring

model = None


def init():
    global model
    model = scoring.load_resnet(os.path.join(os.environ["AZUREML_MODEL_DIR"], "resnet18", "{RESNET_FILE}"))


def run(mini_batch):
    classes = scoring.classify(model, [scoring.read_image(path) for path in mini_batch])
    return pd.DataFrame({{"file": [os.path.basename(path) for path in mini_batch], "class": classes}})
'''
"""batchpoint's scoring script for the images; its first prediction is recorded in the job's output folder."""


def deploy(server: Server, workload: Workload, workers: int, work: Path) -> str:
    """The workload's model (and script), endpoint and default deployment; returns the scoring URI."""
    from served_bench import put_and_wait

    client, name = server.client, f"workload-{workload.name}"
    model_id = f"{WORKSPACE}/models/{name}/versions/1"
    model_type = "mlflow_model" if workload.name == TABULAR else "custom_model"
    body = {"properties": {"modelUri": str(workload.model), "modelType": model_type}}
    client.put(model_id, params=V, json=body).raise_for_status()
    settings: dict[str, Any] = {
        "model": {"referenceType": "Id", "assetId": model_id},
        "miniBatchSize": MINI_BATCH_FILES,
        "maxConcurrencyPerInstance": workers,
        "errorThreshold": 0,
        "retrySettings": {"maxRetries": 0, "timeout": "PT600S"},
        "environmentVariables": THREAD_VARIABLES,
    }
    if workload.name == IMAGES:
        code = work / "code"
        code.mkdir(parents=True)
        (code / "score.py").write_text(IMAGE_SCRIPT)
        shutil.copy(scoring.__file__, code)
        code_id = f"{WORKSPACE}/codes/{name}/versions/1"
        client.put(code_id, params=V, json={"properties": {"codeUri": str(code)}}).raise_for_status()
        settings["codeConfiguration"] = {"codeId": code_id, "scoringScript": "score.py"}
    endpoint = f"{WORKSPACE}/batchEndpoints/{name}"
    put_and_wait(client, endpoint, {"location": "local", "properties": {"authMode": "AADToken"}})
    put_and_wait(client, f"{endpoint}/deployments/main", {"location": "local", "properties": settings}, 600)
    endpoint_body = client.get(endpoint, params=V).json()
    endpoint_body["properties"]["defaults"] = {"deploymentName": "main"}
    put_and_wait(client, endpoint, endpoint_body)
    return str(endpoint_body["properties"]["scoringUri"])


def invoke_body(job: str, folder: Path) -> dict[str, Any]:
    """An invoke's body: a job named `job` over the files of `folder`."""
    return {"properties": {"name": job, "inputData": {"in": {"jobInputType": "UriFolder", "uri": str(folder)}}}}


def run_batchpoint(server: Server, scoring_uri: str, folder: Path, job: str) -> tuple[Run, Path]:
    """Invoke over HTTP and poll until Completed; returns the run and the job's output folder."""
    with ProcessTree(server.pid) as tree:
        started, clock = time.time(), time.perf_counter()
        server.client.post(scoring_uri, json=invoke_body(job, folder)).raise_for_status()
        while (status := _job_status(server.client, job)) not in ENDED:
            time.sleep(POLL_SECONDS)
        seconds = time.perf_counter() - clock  # an upper bound of the time to the last output byte
    if status != "Completed":
        raise RuntimeError(f"batchpoint's job {job} ended {status}: {_job_error(server.client, job)}")
    outputs = _output_folder(server, job)
    assert outputs is not None, f"batchpoint's job {job} completed without an output folder"
    output = outputs / "predictions.csv"
    committed = output.stat().st_ctime - started
    if not 0 < committed <= seconds:  # changed after its commit (its mode, say): its ctime is not the commit's
        raise RuntimeError(f"{output}: committed {committed:.3f} s after the invoke, seen {seconds:.3f} s after")
    return Run(BATCHPOINT, committed, started).measured(tree), outputs


def probe_batchpoint(server: Server, scoring_uri: str, workload: Workload, job: str) -> float:
    """batchpoint's first prediction: invoke over the workload's inputs, wait for it, then cancel the job and wait
    until the server is idle again. No memory sampler runs (its first PSS read falls in the first second)."""
    outputs = _outputs_root(server)
    started = time.time()
    server.client.post(scoring_uri, json=invoke_body(job, workload.inputs)).raise_for_status()
    deadline = time.monotonic() + PROBE_SECONDS
    while (mark := first_mark(outputs / job / "score")) is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"batchpoint's job {job} made no prediction in {PROBE_SECONDS:g} s")
        time.sleep(0.02)
    server.client.post(f"{WORKSPACE}/jobs/{job}/cancel", params=V)  # refused only when it has ended already
    while _job_status(server.client, job) not in ENDED:
        time.sleep(0.1)
    settle(server.pid)
    return mark - started


def _output_folder(server: Server, job: str) -> Path | None:
    """The folder of the job's outputs (the default datastore's `azureml/<job>/score`); None before it exists."""
    folder = _outputs_root(server) / job / "score"
    return folder if folder.is_dir() else None


def _outputs_root(server: Server) -> Path:
    """The default datastore's `azureml` folder, which holds every job's outputs (the warm-up job's made it): found
    once, so that a probe's watcher lists only its job's folder every 20 ms. Globbing the server's storage each time
    cost it 8 to 14 ms of CPU on the measured machine while batchpoint's workers ran; the Pool's probe waits blocked."""
    return next((server.home / "storage").glob("*/azureml-blobstore-*/azureml"))


def probe_first_predictions(
    server: Server, scoring_uri: str, workload: Workload, workers: int, work: Path, probes: int
) -> Probes:
    """`probes` pairs of first predictions (batchpoint's, the Pool's), the pairs alternating which goes first."""
    pairs = []
    for number in range(probes):
        firsts: dict[str, float] = {}
        for system in (BATCHPOINT, POOL) if number % 2 == 0 else (POOL, BATCHPOINT):
            if system == BATCHPOINT:
                firsts[system] = probe_batchpoint(server, scoring_uri, workload, f"{workload.name}-probe-{number}")
            else:
                firsts[system] = probe_pool(workload, workers, work / "probe")
        pairs.append((firsts[BATCHPOINT], firsts[POOL]))
        print(f"  probe {number + 1} first prediction: batchpoint {firsts[BATCHPOINT]:.3f} s, "
              f"Pool {firsts[POOL]:.3f} s", flush=True)  # fmt: skip
    return pairs


def settle(pid: int, timeout: float = SETTLE_SECONDS) -> None:
    """Wait until the server's processes are idle after the warm-up job (at most `timeout`): what it keeps between
    jobs (the warm template its workers taught) is ready, as the peers' warm state is when they are measured."""
    import psutil

    tree = psutil.Process(pid)
    deadline = time.monotonic() + timeout
    quiet = 0
    while time.monotonic() < deadline and quiet < 2:
        before = _cpu_seconds(tree, with_root=False)
        time.sleep(1.0)
        quiet = quiet + 1 if _cpu_seconds(tree, with_root=False) - before < SETTLED_CPU else 0


def _cpu_seconds(root: Any, with_root: bool = True) -> float:
    import psutil

    total = 0.0
    for process in [root, *root.children(recursive=True)][0 if with_root else 1 :]:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            total += times.user + times.system
    return total


def _job_status(client: httpx.Client, job: str) -> str:
    return str(client.get(f"{WORKSPACE}/jobs/{job}", params=V).json()["properties"]["status"])


def _job_error(client: httpx.Client, job: str) -> str:
    properties = client.get(f"{WORKSPACE}/jobs/{job}", params=V).json()["properties"]
    return str(properties.get("error") or properties.get("statusMessage"))


def measure_batchpoint(server: Server, scoring_uri: str, workload: Workload, job: str) -> Run:
    run, output = run_batchpoint(server, scoring_uri, workload.inputs, job)
    mark = first_mark(output)
    run.first_prediction = None if mark is None else mark - run.started
    run.predictions = predictions(workload.name, [output / "predictions.csv"])
    return run


# --- outputs -------------------------------------------------------------------------------------------------


def predictions(workload: str, files: list[Path]) -> dict[str, str]:
    """Each input file's predictions as a sorted multiset, from any system's output files: ``row,prediction,file``
    or ``file class`` lines, or Ray's CSV files (a header, then ``file,prediction``)."""
    found: dict[str, Counter[str]] = {}
    for path in files:
        lines = path.read_text().splitlines()
        pairs: Iterator[list[str] | tuple[str, str]]
        if lines and lines[0].startswith(("file,", '"file",')):
            pairs = csv.reader(lines[1:])
        elif workload == TABULAR:
            pairs = ((fields[2], fields[1]) for fields in (line.split(",") for line in lines))
        else:
            pairs = (line.split(" ", 1) for line in lines)
        for name, value in pairs:
            found.setdefault(name, Counter())[value] += 1
    return {
        name: " ".join(f"{value}x{count}" for value, count in sorted(values.items())) for name, values in found.items()
    }


def agreement(runs: list[Run], items: int) -> float:
    """The share of input files whose predictions every run wrote alike (each file once, with all its rows)."""
    reference = runs[0].predictions
    alike = sum(1 for name, value in reference.items() if all(run.predictions.get(name) == value for run in runs))
    return alike / items if all(len(run.predictions) == items for run in runs) else 0.0


# --- rounds and report ---------------------------------------------------------------------------------------


def run_workload(
    workload: Workload, server: Server, systems: list[str], rounds: int, workers: int, work: Path, probes: int
) -> tuple[list[list[Run]], Probes]:
    """Each round's runs, the systems' order alternating between rounds; then the paired first-prediction probes
    of batchpoint and the Pool, when both run."""
    scoring_uri = ""
    if BATCHPOINT in systems:
        scoring_uri = deploy(server, workload, workers, work / "deployment")
        run_batchpoint(server, scoring_uri, workload.warmup, f"{workload.name}-warmup")
        settle(server.pid)
    results = []
    for number in range(rounds):
        runs = []
        for system in systems if number % 2 == 0 else list(reversed(systems)):
            if system == BATCHPOINT:
                run = measure_batchpoint(server, scoring_uri, workload, f"{workload.name}-{number}")
            else:
                run = measure_peer(system, workload, workers, work / "peers")
            run.load = os.getloadavg()[0]
            runs.append(run)
            print(f"  round {number + 1} {system:<10} {_describe(run, workload.items, workers)}", flush=True)
        results.append(sorted(runs, key=lambda run: systems.index(run.system)))
    if BATCHPOINT not in systems or POOL not in systems:
        return results, []
    return results, probe_first_predictions(server, scoring_uri, workload, workers, work / "peers", probes)


def throughput(run: Run, items: int, workers: int) -> float:
    """Items per second; the limit's serial rate times the number of workers."""
    return items / run.seconds * (workers if run.system == LIMIT else 1)


def _describe(run: Run, items: int, workers: int) -> str:
    first = "-" if run.first_prediction is None else f"{run.first_prediction:.2f} s"
    return (f"{throughput(run, items, workers):8.1f} items/s, wall {run.seconds:6.2f} s, first prediction {first}, "
            f"peak RSS {run.peak_rss / MB:,.0f} MB (PSS {run.peak_pss / MB:,.0f}), CPU {run.cpu_seconds:.1f} s, "
            f"{run.processes} processes, load {run.load:.1f}")  # fmt: skip


def report(workload: Workload, results: list[list[Run]], probes: Probes, workers: int) -> bool:
    items = workload.items
    by_system: dict[str, list[Run]] = {}
    for runs in results:
        for run in runs:
            by_system.setdefault(run.system, []).append(run)
    print(f"\n{workload.name}: {items:,} files, {workers} worker processes, mini-batches of {MINI_BATCH_FILES} files "
          f"(median of {len(results)} rounds)")  # fmt: skip
    print(f"  {'system':<12}{'items/s':>9}{'1st pred. s':>13}{'wall s':>9}{'peak RSS MB':>13}{'PSS MB':>9}"
          f"{'CPU s':>8}{'procs':>7}{'load':>6}")  # fmt: skip
    for system, runs in by_system.items():
        print(f"  {system if system != LIMIT else f'limit (x{workers})':<12}"
              f"{statistics.median(throughput(run, items, workers) for run in runs):>9.1f}"
              f"{_median_or_dash([run.first_prediction for run in runs]):>13}"
              f"{statistics.median(run.seconds for run in runs):>9.2f}"
              f"{statistics.median(run.peak_rss for run in runs) / MB:>13,.0f}"
              f"{statistics.median(run.peak_pss for run in runs) / MB:>9,.0f}"
              f"{statistics.median(run.cpu_seconds for run in runs):>8.1f}"
              f"{max(run.processes for run in runs):>7}{max(run.load for run in runs):>6.1f}")  # fmt: skip
    return judge(workload, results, probes, workers)


def _median_or_dash(values: list[float | None]) -> str:
    known = [value for value in values if value is not None]
    return f"{statistics.median(known):.2f}" if known else "-"


def judge(workload: Workload, results: list[list[Run]], probes: Probes, workers: int) -> bool:
    """The targets; a throughput ratio is the median over rounds of the same round's ratio."""
    name, items, rounds = workload.name, workload.items, [{run.system: run for run in runs} for runs in results]
    if not results:  # --rounds 0: the first-prediction probes alone
        if not probes:
            return check(False, f"{name}: nothing was measured (no rounds, no probes)")
        return _first_prediction(name, POOL, [], [], probes)
    share = min(agreement(runs, items) for runs in results)
    text = f"the systems wrote the same predictions for {share:.1%} of the files (target >= {AGREEMENT:.0%})"
    verdicts = [check(share >= AGREEMENT, f"{name}: {text}")]
    if BATCHPOINT not in rounds[0]:
        return all(verdicts)
    ours = [runs[BATCHPOINT] for runs in rounds]
    for peer in (system for system in rounds[0] if system != BATCHPOINT):
        theirs = [runs[peer] for runs in rounds]
        ratios = [
            throughput(a, items, workers) / throughput(b, items, workers) for a, b in zip(ours, theirs, strict=True)
        ]
        ratio, target = statistics.median(ratios), TARGETS[peer]
        verdicts.append(
            check(ratio >= target, f"{name}: throughput batchpoint/{peer} {ratio:.2f} (target >= {target:g})")
        )
        if peer != LIMIT:
            verdicts.append(_first_prediction(name, peer, ours, theirs, probes if peer == POOL else []))
        if peer == RAY:
            rss, peer_rss = (statistics.median(run.peak_rss for run in runs) / MB for runs in (ours, theirs))
            verdicts.append(
                check(rss <= peer_rss, f"{name}: peak RSS batchpoint {rss:,.0f} MB <= Ray Data {peer_rss:,.0f} MB")
            )
    return all(verdicts)


def _first_prediction(name: str, peer: str, ours: list[Run], theirs: list[Run], probes: Probes) -> bool:
    """batchpoint's first prediction below the peer's: by the paired probes' median difference when there are
    probes, else by the rounds' medians."""
    if probes:
        difference = statistics.median(mine - peers for mine, peers in probes)
        first, peer_first = (statistics.median(pair[side] for pair in probes) for side in (0, 1))
        paired = f"medians of {len(probes)} paired probes, median difference {difference * 1000:+.0f} ms"
        return check(
            difference < 0, f"{name}: first prediction batchpoint {first:.3f} s < {peer} {peer_first:.3f} s ({paired})"
        )
    first, peer_first = _median_first(ours), _median_first(theirs)
    return check(first < peer_first, f"{name}: first prediction batchpoint {first:.2f} s < {peer} {peer_first:.2f} s")


def _median_first(runs: list[Run]) -> float:
    return statistics.median(float("inf") if run.first_prediction is None else run.first_prediction for run in runs)


def machine() -> str:
    import platform

    lines = Path("/proc/cpuinfo").read_text().splitlines()
    model = next(
        (line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), platform.processor()
    )
    return f"{platform.node()}: {os.cpu_count()} cores ({model}), Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__)
    parser.add_argument("--workload", choices=[TABULAR, IMAGES, "all"], default="all")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help=f"comma-separated, of: {', '.join(SYSTEMS)}")
    parser.add_argument(
        "--rounds", type=int, default=2, help="measured runs per system and workload (default 2; 0: the probes alone)"
    )
    parser.add_argument("--probes", type=int, default=PROBES, help=f"paired first-prediction probes (default {PROBES})")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="worker processes (default: cores)")
    parser.add_argument("--tabular-files", type=int, default=FILES[TABULAR])
    parser.add_argument("--image-files", type=int, default=FILES[IMAGES])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "batchpoint-workload-bench"
    parser.add_argument("--data", type=Path, default=cache, help=f"generated inputs and models (default {cache})")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_child(json.loads(args.child))))
        return 0
    systems = [system for system in SYSTEMS if system in args.systems.split(",")]
    workloads = [TABULAR, IMAGES] if args.workload == "all" else [args.workload]
    os.environ.update(THREAD_VARIABLES)
    print(f"{machine()}; load average {os.getloadavg()[0]:.1f} at the start", flush=True)
    met = True
    args.data.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="workload-bench-") as temporary:
        work = Path(temporary)
        with serving(work, args.data) as server:
            for name in workloads:
                workload = prepare(args.data, name, args.tabular_files if name == TABULAR else args.image_files)
                results, probes = run_workload(
                    workload, server, systems, args.rounds, args.workers, work / name, args.probes
                )
                met = report(workload, results, probes, args.workers) and met
    return exit_status(met, args.no_fail)


if __name__ == "__main__":
    sys.exit(main())
