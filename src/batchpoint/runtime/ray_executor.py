"""The Ray executor: a job's workers as long-lived actors spread over the nodes of a Ray cluster.

`instance_count` nodes (a SPREAD placement group, one bundle per node) each run `max_concurrency_per_instance`
actors; an actor imports the scoring script and calls `init()` once, then `run()` once per mini-batch. The
coordinator keeps what it keeps with local workers (the ledger, retries, the error threshold, the output): an
actor only runs tries and hands back the formatted rows and what the script printed.

Nothing is assumed shared between the server and the nodes: the code and the model travel as one archive in
Ray's object store (put once per job, fetched once per node), and each mini-batch's input files travel with
the task and are written to the actor's own folder before `run()` sees them. A node lost mid-job shows up as
its actors dying: their tries come back as `lost` (which costs no try) and new actors start on the nodes left.

Ray is an optional extra (`batchpoint[ray]`); this module is imported only when a compute runs on Ray.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import socket
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayError
from ray.util.placement_group import placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from batchpoint.runtime.environments.installers import InstallerName
from batchpoint.runtime.executor import (
    Executor,
    ExecutorUnavailableError,
    InitFailedError,
    Task,
    TaskDone,
    TaskFailed,
    TaskResult,
    TryTiming,
    WorkerName,
)
from batchpoint.runtime.layout import LogLayout, ProcessNames, append_line
from batchpoint.runtime.limits import Deadlines
from batchpoint.runtime.local import script_argv
from batchpoint.runtime.spec import SUMMARY_ONLY, JobSpec

CONNECT_SECONDS = 5.0
"""How long the cluster's address may take to answer before the job fails as unreachable."""
PLACEMENT_SECONDS = 60.0
"""How long the job's nodes may take to be reserved."""
CPUS_PER_WORKER = 1.0
CODE, MODEL = "code", "model"


class RayClusterError(ExecutorUnavailableError):
    """The Ray cluster cannot run the job (unreachable, or without room for its nodes); the message says why."""


def connect(address: str) -> None:
    """Join the cluster as a driver, once per server process; fail fast when its address does not answer."""
    if ray.is_initialized():
        return
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=CONNECT_SECONDS).close()
    except (OSError, ValueError) as error:
        raise RayClusterError(f"The Ray cluster at '{address}' is unreachable ({error}).") from None
    try:
        ray.init(address=address, namespace="batchpoint", log_to_driver=False, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, RayError) as error:
        raise RayClusterError(f"Could not join the Ray cluster at '{address}': {error}") from None


class ScoringActor:
    """One worker: the scoring script imported and initialized once, `run()` per mini-batch."""

    def __init__(self, config: dict[str, Any], files: bytes) -> None:
        self._config = config
        self._script: Any = None
        self._init_error: str | None = None
        self._log = io.StringIO()
        self._node = (
            f"pid {os.getpid()} on {socket.gethostname()}, Ray node {ray.get_runtime_context().get_node_id()[:8]}"
        )
        root = Path(tempfile.mkdtemp(prefix="batchpoint-worker-"))
        self._inputs = root / "inputs"
        with tarfile.open(fileobj=io.BytesIO(files)) as archive:
            archive.extractall(root, filter="data")
        for name in config["unset"]:
            os.environ.pop(name, None)
        os.environ.update(config["environment"])
        os.environ["AZUREML_MODEL_DIR"] = str(root / MODEL)
        os.environ["AZUREML_BI_OUTPUT_PATH"] = tempfile.mkdtemp(prefix="batchpoint-output-")
        script = root / CODE / config["script"]
        with self._captured():
            self._init_error = self._initialize(script)

    def _initialize(self, script: Path) -> str | None:
        from batchpoint.runtime.worker import LOG_FORMAT, LOG_LEVELS, load_script, user_traceback

        logging.basicConfig(
            level=LOG_LEVELS[self._config["logging_level"]], format=LOG_FORMAT, stream=self._log, force=True
        )
        sys.argv = list(self._config["argv"])
        sys.path.insert(0, str(script.parent))
        try:
            self._script = load_script(script)
            init = getattr(self._script, "init", None)
            if callable(init):
                init()
        except BaseException as error:  # noqa: BLE001 - the script's failure, whatever it is, is the job's information
            return user_traceback(error)
        return None

    def node(self) -> str:
        return self._node

    def run(self, index: int, names: list[str], contents: list[bytes]) -> tuple[str, Any, str, dict[str, float]]:
        """``("done", (returned, rows), log, timing)``, ``("error", traceback, log, timing)`` or ``("init",
        traceback, log, {})``; timing has the fields of `executor.TryTiming`."""
        if self._init_error is not None:
            return "init", self._init_error, self._take_log(), {}
        from batchpoint.runtime.worker import score

        files = self._write_inputs(index, names, contents)
        with self._captured():
            kind, value, timing = score(self._script, files, self._config["summary_only"])
        shutil.rmtree(self._inputs / str(index), ignore_errors=True)
        return kind, value, self._take_log(), timing

    def shutdown(self) -> str:
        from batchpoint.runtime.worker import call_shutdown

        with self._captured():
            if self._script is not None:
                call_shutdown(self._script)
        return self._take_log()

    def _write_inputs(self, index: int, names: list[str], contents: list[bytes]) -> list[str]:
        """The mini-batch's files under their own names; in a folder per position only when names repeat."""
        folder = self._inputs / str(index)
        folder.mkdir(parents=True, exist_ok=True)
        distinct = len(set(names)) == len(names)
        paths = []
        for position, (name, content) in enumerate(zip(names, contents, strict=True)):
            target = folder / name if distinct else folder / str(position) / name
            target.parent.mkdir(exist_ok=True)
            target.write_bytes(content)
            paths.append(str(target))
        return paths

    @contextlib.contextmanager
    def _captured(self) -> Any:
        with contextlib.redirect_stdout(self._log), contextlib.redirect_stderr(self._log):
            yield

    def _take_log(self) -> str:
        text = self._log.getvalue()
        self._log.seek(0)
        self._log.truncate()
        return text


RemoteScoringActor = ray.remote(ScoringActor)
"""ScoringActor as Ray's actor class (a call, not a decorator: type checkers keep a decorated class's own type)."""


@dataclass
class _Slot:
    index: int
    node: str
    actor: Any = None
    name: WorkerName | None = None
    task: Task | None = None
    ref: Any = None
    init_failures: int = 0
    answered: bool = False
    """The actor has answered once: it started, and its name says where it runs."""


def runtime_env(requirements: Sequence[str], installer: InstallerName) -> dict[str, Any] | None:
    """Ray's runtime environment that installs `requirements` on a node.

    With uv, Ray's `uv` plugin installs them in about a third of the time pip takes, and from uv's cache: Ray's
    default for it, `--no-cache`, would download every package again for each new environment."""
    if not requirements:
        return None
    if installer == "uv":
        return {"uv": {"packages": list(requirements), "uv_pip_install_options": []}}
    return {"pip": {"packages": list(requirements)}}


class RayExecutor(Executor):
    """Runs a job's tries on actors of the Ray cluster at `address` (see the module's docstring)."""

    def __init__(self, address: str, requirements: Sequence[str] = (), installer: InstallerName = "pip") -> None:
        """`requirements` are the deployment environment's pip requirements: each node installs them once (Ray
        caches the environment by its contents) into a virtual environment on top of the cluster's Python, with
        `installer`, the one the server builds local environments with."""
        self._address = address
        self._runtime_env = runtime_env(requirements, installer)
        self._slots: list[_Slot] = []
        self._deadlines: Deadlines[int] = Deadlines()
        self._finished: list[TaskResult] = []
        self._group: Any = None
        self._files: Any = None
        self._last_init_error = ""
        self._last_init_details = ""

    def start(self, spec: JobSpec) -> None:
        if spec.script_path is None:
            raise ValueError("The Ray executor needs a scoring script.")
        self._spec = spec
        connect(self._address)
        self._files = ray.put(_job_files(spec))
        self._config = _actor_config(spec)
        self._layout = LogLayout(spec.logs_dir)
        self._names = ProcessNames(self._layout)
        self._group = self._reserve_nodes(spec)
        self._slots = [
            _Slot(index, str(index // spec.max_concurrency_per_instance)) for index in range(spec.worker_count)
        ]
        for slot in self._slots:
            self._start_actor(slot)

    def idle_slots(self) -> int:
        return sum(1 for slot in self._slots if slot.task is None and self._usable(slot))

    def submit(self, task: Task) -> WorkerName:
        slot = next(slot for slot in self._slots if slot.task is None and self._usable(slot))
        if slot.actor is None:
            self._start_actor(slot)
        names = [os.path.basename(path) for path in task.files]
        contents = [Path(path).read_bytes() for path in task.files]
        slot.task, slot.ref = task, slot.actor.run.remote(task.index, names, contents)
        self._deadlines.arm(slot.index, time.monotonic() + self._spec.timeout_seconds + self._spec.init_timeout_seconds)
        assert slot.name is not None
        return slot.name

    def poll(self, timeout: float) -> list[TaskResult]:
        if not any(self._usable(slot) for slot in self._slots):
            raise InitFailedError.on_every_worker(
                self._spec.init_tries, len(self._slots), self._last_init_error, self._last_init_details
            )
        busy = {slot.ref: slot for slot in self._slots if slot.ref is not None}
        if busy and not self._finished:
            ready, _ = ray.wait(list(busy), num_returns=1, timeout=timeout)
            if ready:
                ready, _ = ray.wait(list(busy), num_returns=len(busy), timeout=0)
            for ref in ready:
                self._collect(busy[ref], ref)
        elif not self._finished:
            time.sleep(timeout)
        self._stop_expired()
        finished, self._finished = self._finished, []
        return finished

    def stop(self, graceful: bool = True) -> None:
        idle = [slot for slot in self._slots if slot.actor is not None and slot.task is None] if graceful else []
        with contextlib.suppress(RayError, GetTimeoutError):
            logs = ray.get([slot.actor.shutdown.remote() for slot in idle], timeout=10)
            for slot, text in zip(idle, logs, strict=True):
                self._append_log(slot, text)
        for slot in self._slots:
            self._retire(slot, "exits: the job's run ended")
        if self._group is not None:
            remove_placement_group(self._group)
            self._group = None
        self._files = None
        self._finished.clear()

    # --- actors -----------------------------------------------------------------------------------------

    def _reserve_nodes(self, spec: JobSpec) -> Any:
        bundle = {"CPU": CPUS_PER_WORKER * spec.max_concurrency_per_instance}
        group = placement_group([dict(bundle) for _ in range(spec.instance_count)], strategy="SPREAD")
        try:
            ray.get(group.ready(), timeout=PLACEMENT_SECONDS)
        except GetTimeoutError:
            remove_placement_group(group)
            raise RayClusterError(
                f"The Ray cluster at '{self._address}' has no room for {spec.instance_count} node(s) of "
                f"{bundle['CPU']:g} CPU(s) each (instance_count x max_concurrency_per_instance workers of "
                f"{CPUS_PER_WORKER:g} CPU)."
            ) from None
        return group

    def _start_actor(self, slot: _Slot) -> None:
        """An actor on its slot's node of the job's placement group. When that node died, Ray moves the
        group's bundle to a node with room, and the replacement actor starts there."""
        slot.actor = RemoteScoringActor.options(
            num_cpus=CPUS_PER_WORKER,
            runtime_env=self._runtime_env,
            scheduling_strategy=PlacementGroupSchedulingStrategy(self._group, int(slot.node)),
        ).remote(self._config, self._files)
        slot.name = self._names.new(slot.node)
        slot.answered = False

    def _collect(self, slot: _Slot, ref: Any) -> None:
        task = slot.task
        assert task is not None
        try:
            kind, value, text, timing = ray.get(ref)
        except RayError as error:  # the actor, its node or the object holding its result is gone
            if not slot.answered:  # it never ran a mini-batch: it could not start, which counts like a failed init()
                self._init_failed(slot, task, f"The Ray worker {slot.name} could not start: {error}")
            else:
                self._lose(
                    slot, f"The Ray worker {slot.name} was lost (its node or process died): {_first_line(error)}"
                )
            return
        self._name_after_node(slot)
        self._append_log(slot, text)
        slot.task = slot.ref = None
        self._deadlines.disarm(slot.index)
        assert slot.name is not None
        if kind == "done":
            returned, rows = value
            slot.init_failures = 0
            self._finished.append(TaskDone(task.index, slot.name, returned, rows, TryTiming(**timing)))
        elif kind == "error":
            slot.init_failures = 0
            self._finished.append(TaskFailed(task.index, slot.name, "exception", value, TryTiming(**timing)))
        else:
            self._init_failed(slot, task, value)

    def _init_failed(self, slot: _Slot, task: Task, error: str) -> None:
        assert slot.name is not None
        slot.init_failures += 1
        self._last_init_error = error
        self._last_init_details = self._layout.relative(self._layout.error(slot.name))
        self._finished.append(TaskFailed(task.index, slot.name, "init", error))
        self._deadlines.disarm(slot.index)
        self._retire(slot, "exits: its init() failed")

    def _lose(self, slot: _Slot, message: str) -> None:
        task = slot.task
        assert task is not None and slot.name is not None
        self._finished.append(TaskFailed(task.index, slot.name, "lost", message))
        self._deadlines.disarm(slot.index)
        self._retire(slot, "was lost with its node or process")

    def _stop_expired(self) -> None:
        for index in self._deadlines.expired(time.monotonic()):
            slot = self._slots[index]
            if slot.task is None:
                continue
            seconds = self._spec.timeout_seconds
            assert slot.name is not None
            self._finished.append(
                TaskFailed(
                    slot.task.index, slot.name, "timeout", f"run() did not return within {seconds:g} s on {slot.name}."
                )
            )
            self._retire(slot, f"was stopped: run() took longer than {seconds:g} s")

    def _retire(self, slot: _Slot, why: str) -> None:
        if slot.actor is not None:
            with contextlib.suppress(RayError):
                ray.kill(slot.actor)
            assert slot.name is not None
            append_line(self._layout.node_main(slot.node), f"{slot.name.process} {why}.")
        slot.actor = slot.task = slot.ref = None

    def _usable(self, slot: _Slot) -> bool:
        return slot.init_failures < self._spec.init_tries

    def _name_after_node(self, slot: _Slot) -> None:
        """Workers are named after where they run once it is known, so the job's logs show where each ran."""
        if not slot.answered:
            assert slot.name is not None
            slot.name = replace(slot.name, detail=ray.get(slot.actor.node.remote()))
            slot.answered = True
            append_line(self._layout.node_main(slot.node), f"{slot.name.process} started ({slot.name.detail}).")
            self._append_log(slot, f"Worker {slot.name}\n")

    def _append_log(self, slot: _Slot, text: str) -> None:
        if text and slot.name is not None:
            with open(self._layout.stdout(slot.name), "a", encoding="utf-8") as log:
                log.write(text)


def _job_files(spec: JobSpec) -> bytes:
    """The job's code and model as one archive, put in Ray's object store once and fetched by each node."""
    assert spec.script_path is not None
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1, dereference=True) as archive:
        archive.add(spec.code_dir if spec.code_dir else spec.script_path.parent, CODE)
        archive.add(
            spec.model_dir if spec.model_dir is not None else spec.script_path.parent,
            MODEL,
            recursive=spec.model_dir is not None,
        )
    return buffer.getvalue()


def _actor_config(spec: JobSpec) -> dict[str, Any]:
    assert spec.script_path is not None
    code = spec.code_dir if spec.code_dir else spec.script_path.parent
    return {
        "script": str(spec.script_path.relative_to(code.absolute())),
        "logging_level": spec.logging_level,
        "summary_only": spec.output_action == SUMMARY_ONLY,
        "argv": script_argv(spec),
        "environment": dict(spec.environment_variables),
        "unset": list(spec.unset_variables),
    }


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
