"""The Ray executor: a job's workers as long-lived actors spread over the nodes of a Ray cluster.

`instance_count` nodes (a SPREAD placement group, one bundle per node) each run `max_concurrency_per_instance`
actors. An actor runs batchpoint's worker (`runtime/worker.py`, the process local jobs run) as its child process,
under the interpreter of the deployment's environment as built on its node (Python 3.8 included, which Ray itself
cannot run), and relays the tries to it over the same pipes the local executor uses: the worker imports the
scoring script and calls `init()` once, then `run()` once per mini-batch. The coordinator keeps what it keeps with
local workers (the ledger, retries, the error threshold, the output): an actor only runs tries and hands back the
formatted rows and what the script printed. An actor's first call (`start`) returns once its worker's `init()`
has, with where it runs, so that `init()` and each `run()` are timed apart, as locally. An actor that has answered
it may hold a second mini-batch behind the one it runs (`queue`): Ray runs an actor's calls in order, so the next
mini-batch starts without a round trip through the coordinator.

What crosses the network (docs/scale-out.md): a task carries its mini-batch's file names, and the nodes read the
files themselves, in place on a path every node mounts (`shared_paths`) or from the remote storage the input is on
(`spec.remote_input`, through fsspec); only an input on the server's own disk travels with the tasks. The code and
the model are read in place when they are on a shared path, else they travel once per job as one archive in Ray's
object store, which each node fetches and unpacks once into a cache keyed by its contents. `Transfer` counts the
bytes the coordinator sends and receives. A node lost mid-job shows up as its actors dying, or as an actor that
outlived its worker by a moment saying so: their tries come back as `lost` (which costs no try) and new actors
start on the nodes left.

Ray is an optional extra (`batchpoint[ray]`); this module is imported only when a compute runs on Ray.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import io
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

import psutil
import ray
from ray.exceptions import (
    ActorUnavailableError,
    GetTimeoutError,
    ObjectLostError,
    ObjectStoreFullError,
    OutOfDiskError,
    RayError,
    RayTaskError,
    UnserializableException,
)
from ray.util.placement_group import placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from batchpoint.runtime import counters
from batchpoint.runtime.environments.cache import EnvironmentBuildError, EnvironmentCache
from batchpoint.runtime.environments.installers import InstallerName, InstallerUnavailable, choose_installer
from batchpoint.runtime.environments.interpreters import PythonFinder, PythonNotFound
from batchpoint.runtime.environments.spec import EnvironmentSpec
from batchpoint.runtime.executor import (
    DISK_FULL_ERRNOS,
    Executor,
    ExecutorUnavailableError,
    InitFailedError,
    Task,
    TaskDone,
    TaskEvent,
    TaskFailed,
    TaskReturned,
    TaskStarted,
    TransientFault,
    TryTiming,
    WorkerName,
)
from batchpoint.runtime.gpus import device_files, driver_reads, worker_environment
from batchpoint.runtime.inputs import is_within
from batchpoint.runtime.layout import STREAM_LOG, LogLayout, ProcessNames, append_line
from batchpoint.runtime.limits import Deadlines
from batchpoint.runtime.local import script_argv
from batchpoint.runtime.logs import StreamLog
from batchpoint.runtime.perf import MB
from batchpoint.runtime.protocol import CONFIG, DONE, INIT_FAILED, READY, RUN, STOP, encode
from batchpoint.runtime.replies import ProtocolError, ReplyPipe, reply, stopped_for
from batchpoint.runtime.sandbox.policy import WorkerSandbox
from batchpoint.runtime.spawn import StartedWorker, private_temp_root, read_text, start_worker, why_it_ended
from batchpoint.runtime.spec import SUMMARY_ONLY, JobSpec, RemoteFolder

CONNECT_SECONDS = 5.0
"""How long the cluster's address may take to answer before the job fails as unreachable."""
PLACEMENT_SECONDS = 60.0
"""How long the job's nodes may take to be reserved."""
SHUTDOWN_SECONDS = 10.0
"""How long idle workers may take to call `shutdown()` and exit when the job ends."""
CPUS_PER_WORKER = 1.0
FILES_KEPT_SECONDS = 7 * 24 * 3600.0
"""How long a node keeps a job's unpacked code and model after the last job that used them."""
NODE_GONE_SECONDS = 2.0
"""How long an actor whose worker was killed by SIGKILL or SIGTERM waits for its node's raylet to end before
calling it the worker's own end (the out-of-memory killer, say), which costs a try. A node going away takes its
processes together, in no set order: Ray's worker process kills its children when the raylet dies, and may still
answer; a worker killed a moment before the raylet is gone with its node too."""
RELAYED_BYTES = 4 * MB
"""The most of each of a worker's output files (what it printed, what it logged) an actor sends with one answer:
what a script writes is relayed through the coordinator's memory, and a script printing without end must not
exhaust the server's (docs/scale-out.md, "Progress and logs")."""
CODE, MODEL = "code", "model"
SHARED, REMOTE, SHIPPED = "shared", "remote", "shipped"
"""How the nodes read a job's inputs: in place on a shared path, from remote storage, or sent with each task."""


class RayClusterError(ExecutorUnavailableError):
    """The Ray cluster cannot run the job (unreachable, or without room for its nodes); the message says why."""


class NodeUnavailableError(ExecutorUnavailableError):
    """A node of the job cannot run its workers (no Python of the version the environment asks for, an
    environment that does not build there, a shared path it does not mount); the message names the node and what
    it lacks."""


class ActorFailedError(Exception):
    """batchpoint's own code in a worker's actor raised (not the scoring script, which answers an error; not a
    lost node, nor a full disk, which pauses the job): a bug, which fails the job, the actor's traceback in a note.
    Treated as a lost node, it sent the mini-batch back at no cost to fail the same way for ever
    (docs/scale-out.md, "When batchpoint itself fails on a node")."""

    def __init__(self, worker: WorkerName, when: str, cause: BaseException) -> None:
        """The actor of `worker` raised `cause` `when` ("while starting", say)."""
        super().__init__(
            f"The actor of the Ray worker {worker} failed {when} (batchpoint's own code on its node, not the "
            f"scoring script): {type(cause).__name__}: {_first_line(cause)}"
        )


def _raised_by_the_actor(error: RayError) -> BaseException:
    """What the actor's code raised (Ray carries it when it could send it over), else Ray's error itself."""
    cause = getattr(error, "cause", None) if isinstance(error, RayTaskError) else None
    return cause if isinstance(cause, BaseException) else error


def _traceback_of(error: RayError) -> str:
    """The traceback Ray sent of an exception raised on a node, without its terminal colours."""
    traceback = getattr(error, "traceback_str", None) or getattr(error, "original_stack_trace", None)
    return re.sub(r"\x1b\[[0-9;]*m", "", str(traceback or error))


def _out_of_space(error: BaseException) -> bool:
    """The node's disk (or Ray's object store on it) is full: a passing fault, which pauses the job."""
    if isinstance(error, OSError):
        return error.errno in DISK_FULL_ERRNOS
    return isinstance(error, OutOfDiskError | ObjectStoreFullError)


class _NodeLacks(Exception):
    """Raised on a node: what it lacks to run the job's workers."""


_JOINING = threading.Lock()
"""Held while this process joins the cluster: two jobs starting at once would both call `ray.init`, and the
second's fails (Ray asserts the process is not connected yet), failing its job."""


def connect(address: str) -> None:
    """Join the cluster as a driver, once per server process (whichever of its jobs starts first); fail fast when
    its address does not answer."""
    with _JOINING:
        if not ray.is_initialized():
            _join(address)


def _join(address: str) -> None:
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=CONNECT_SECONDS).close()
    except (OSError, ValueError) as error:
        raise RayClusterError(f"The Ray cluster at '{address}' is unreachable ({error}).") from None
    try:
        ray.init(address=address, namespace="batchpoint", log_to_driver=False, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, RayError) as error:
        raise RayClusterError(f"Could not join the Ray cluster at '{address}': {error}") from None


# --- on the nodes -------------------------------------------------------------------------------------------


class ScoringActor:
    """One worker slot: batchpoint's worker process as this actor's child, `run()` relayed to it per mini-batch.

    A node that cannot run the worker (see `NodeUnavailableError`) answers every call with what it lacks."""

    def __init__(self, config: dict[str, Any], archive: list[Any], agent_name: str, entry_script_log: str) -> None:
        """`archive` holds the object reference of the job's code and model archive (none when both are on a
        shared path), in a list so that Ray does not fetch it unless this node has not unpacked it yet.
        `agent_name` is the worker's process name, `entry_script_log` the name of its `EntryScript` log file."""
        self._config = config
        self._raylet = _raylet()
        self._node = f"{socket.gethostname()}, Ray node {ray.get_runtime_context().get_node_id()[:8]}"
        self._sandbox = WorkerSandbox.on_node(config["sandbox"], hide=(_ray_sockets(),))
        self._home = _actor_home()
        self._log = self._home / "worker.log"
        self._agent_name = agent_name
        self._entry_script_log = self._home / "entry_script_log" / entry_script_log
        self._logs = (_Tail(self._log), _Tail(self._entry_script_log))
        self._gpus = tuple(str(gpu) for gpu in ray.get_gpu_ids())
        """The GPUs Ray gave this actor (it asked for `RayExecutor`'s `gpus_per_worker`)."""
        self._worker: StartedWorker | None = None
        self._ready = False
        self._problem: str | None = None
        """What the node lacks, or why the worker's start failed: `start` and `run` answer it."""
        self._ended_as = "unavailable"
        try:
            code, model = _node_files(config, archive)
            python = _node_python(config["environment"], config["installer"], self._sandbox)
            self._inputs = _NodeInputs(config["inputs"], self._home / "inputs")
        except _NodeLacks as lack:
            self._problem = f"The Ray node {self._node} {lack}"
            return
        self._start_worker(code, model, python)

    def _start_worker(self, code: Path, model: Path | None, python: Path | None) -> None:
        """The worker, in the sandbox of this node: it reads the job's code, model and inputs on this node and
        writes its output folder; its private folder is `worker/` (the actor keeps its log and the inputs)."""
        output = self._home / "output"
        logs = self._entry_script_log.parent
        for folder in (output, logs):
            folder.mkdir()
            self._sandbox.share(folder)
        self._sandbox.prepare_home(self._worker_home)
        job_python = python or Path(sys.executable)
        models = [model] if model is not None else []
        folders = [*models, self._inputs.root]
        first_inputs = self._inputs.first_inputs  # a shared rerun's: its links lead there, as far as it may read
        linked = models if self._inputs.rerun else folders
        reads: list[Path | str] = [code, *folders, *first_inputs, *self._sandbox.links_of(linked)]
        policy = self._sandbox.policy(
            python=job_python,
            read=[*reads, *driver_reads(self._gpus)],
            read_write=[output, logs],
            scratch=self._worker_home,
            devices=device_files(self._gpus),
        )
        defined = {"AZUREML_BI_OUTPUT_PATH": str(output), **worker_environment(self._gpus, _node_gpus())}
        defined |= {"AZUREML_MODEL_DIR": str(model)} if model else {}
        variables = {name: value for name, value in self._config["variables"].items() if name != "AZUREML_MODEL_DIR"}
        environment = self._sandbox.environment(
            python=job_python, home=self._worker_home, variables=variables, defined=defined
        )
        self._worker = start_worker(
            python=job_python,
            home=self._worker_home,
            policy=policy,
            environment=environment,
            stdout=self._log,
            stderr=self._log,
        )
        self._replies = ReplyPipe(self._worker.replies)
        worker = self._config["worker"]
        script = code / worker["script"]
        entry_script = {
            "log_file": str(self._entry_script_log),
            "agent_name": self._agent_name,
            "output_dir": str(output),
        }
        message = {**worker, "parent_pid": os.getpid(), "script": str(script), "code_dir": str(code)}
        self._worker.commands.send_bytes(
            encode(CONFIG, **message, traceback_file=str(self._traceback), entry_script=entry_script)
        )

    @property
    def _worker_home(self) -> Path:
        return self._home / "worker"

    @property
    def _traceback(self) -> Path:
        return self._worker_home / "traceback.txt"

    def node(self) -> str:
        pid = f"pid {self._worker.process.pid} on " if self._worker is not None else ""
        gpus = f", GPU {','.join(self._gpus)}" if self._gpus else ""
        return f"{pid}{self._node}{gpus}"

    def start(self) -> tuple[str, str, WorkerLogs, str]:
        """The actor's first call: ``("ready", "", logs, where)`` once the worker's `init()` returned, else
        ``("init", traceback, logs, where)``, ``("lost", why, logs, where)`` (the worker went with this node) or
        ``("unavailable", what the node lacks, logs, where)``. A call of its own, so that the executor times `init()`
        apart from `run()`; a `run` after a failed start answers what the start did."""
        if self._problem is not None:
            return "unavailable", self._problem, WorkerLogs(), self.node()
        try:
            self._await_ready()
        except _WorkerEnded as ended:
            self._problem = ended.why
            self._ended_as = ended.kind
            return ended.kind, ended.why, self._take_logs(), self.node()
        return "ready", "", self._take_logs(), self.node()

    def run(
        self, index: int, names: list[str], contents: list[bytes | None] | None
    ) -> tuple[str, Any, WorkerLogs, dict[str, float]]:
        """``("done", (returned, rows), logs, timing)``, ``("error", traceback, logs, timing)``, ``("init",
        traceback, logs, {})``, ``("died", why, logs, {})``, ``("lost", why, logs, {})`` (the worker went with
        this node) or ``("unavailable", what the node lacks, logs, {})``; timing has the fields of
        `executor.TryTiming`."""
        if self._problem is not None:
            return self._ended_as, self._problem, WorkerLogs(), {}
        assert self._worker is not None
        try:
            if not self._ready:
                self._await_ready()
            try:
                files = self._inputs.fetch(index, names, contents)
            except Exception as error:
                if _out_of_space(error):
                    raise  # not the files': the job pauses (`RayExecutor._actor_raised`)
                error_text = f"Could not read the mini-batch's input files: {type(error).__name__}: {error}"
                return "error", error_text, WorkerLogs(), {}
            self._worker.commands.send_bytes(encode(RUN, index=index, files=files))
            message, payload = reply(self._replies.next_frame(), ready=True, index=index)
        except _WorkerEnded as ended:
            return ended.kind, ended.why, self._take_logs(), {}
        except (EOFError, OSError):
            gone = self._ended("died", f"while running mini-batch {index}")
            return gone.kind, gone.why, self._take_logs(), {}
        except ProtocolError as error:
            return "died", self._stop_for(error, f"while running mini-batch {index}"), self._take_logs(), {}
        finally:
            self._inputs.clean(index)
        if message["kind"] == DONE:
            return "done", (message["returned"], payload), self._take_logs(), message["timing"]
        return "error", message["error"], self._take_logs(), message["timing"]

    def _await_ready(self) -> None:
        assert self._worker is not None
        try:
            message, _ = reply(self._replies.next_frame(), ready=False)
        except (EOFError, OSError):
            raise self._ended("init", "during init()") from None
        except ProtocolError as error:
            raise _WorkerEnded("init", self._stop_for(error, "during init()")) from None
        if message["kind"] == INIT_FAILED:
            raise _WorkerEnded("init", message["error"])
        assert message["kind"] == READY
        self._ready = True

    def _stop_for(self, error: ProtocolError, when: str) -> str:
        """The worker sent what is not a reply: it is stopped, as one that crashed; why, for the try's error."""
        assert self._worker is not None
        self._worker.kill()
        return stopped_for("The worker", error, when)

    def _ended(self, kind: str, when: str) -> _WorkerEnded:
        """Why the worker is gone (`kind`: it died in `init()` or in `run()`): how it exited, and the Python stacks
        of a crash; `lost` when it was killed as this node went away."""
        assert self._worker is not None
        returncode = self._worker.process.wait()
        if -returncode in (signal.SIGKILL, signal.SIGTERM) and self._node_going_away():
            name = signal.Signals(-returncode).name
            return _WorkerEnded("lost", f"its raylet ended, and its worker was killed by signal {name} {when}")
        output = f"its stdout and stderr ({self._agent_name}.stdout.txt in logs/user/stdout)"
        crash = read_text(self._traceback)
        return _WorkerEnded(kind, why_it_ended("The worker", returncode, when, crash, self._log, output))

    def _node_going_away(self) -> bool:
        """Whether this node's raylet has ended, or ends within NODE_GONE_SECONDS."""
        if self._raylet is None:
            return False
        deadline = time.monotonic() + NODE_GONE_SECONDS
        while not _has_ended(self._raylet):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def shutdown(self) -> WorkerLogs:
        """Let the worker call the script's `shutdown()` and exit; returns what it printed and logged."""
        if self._worker is not None:
            with contextlib.suppress(OSError):
                self._worker.commands.send_bytes(encode(STOP))
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._worker.process.wait(SHUTDOWN_SECONDS)
        logs = self._take_logs()
        shutil.rmtree(self._home, ignore_errors=True)
        return logs

    def _take_logs(self) -> WorkerLogs:
        """What the worker printed, and logged with `EntryScript().logger`, since the last call."""
        printed, logged = self._logs
        return WorkerLogs(printed.take(), logged.take())


RemoteScoringActor = ray.remote(ScoringActor)
"""ScoringActor as Ray's actor class (a call, not a decorator: type checkers keep a decorated class's own type)."""


class WorkerLogs(NamedTuple):
    """What a worker on a node wrote since the actor last answered, for the job's logs on the server."""

    printed: str = ""
    """Its stdout and stderr: `user/stdout/<node>/<process>.stdout.txt`."""
    entry_script: str = ""
    """Its `EntryScript().logger` lines: `user/entry_script_log/<node>/<process>.log.txt`."""

    @property
    def size(self) -> int:
        return len(self.printed.encode()) + len(self.entry_script.encode())


class _Tail:
    """What a file a worker appends to gained since the last `take()`: at most `RELAYED_BYTES` of it, then a line
    saying how much more was left on the node."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._offset = 0

    def take(self) -> str:
        try:
            with open(self._path, "rb") as log:
                end = log.seek(0, os.SEEK_END)
                log.seek(self._offset)
                data = log.read(RELAYED_BYTES)
        except OSError:
            return ""
        left = end - self._offset - len(data)
        self._offset = max(end, self._offset + len(data))
        text = data.decode("utf-8", errors="replace")
        if left > 0:
            text += f"\n[batchpoint: {left:,} more bytes of this output were left on the node, past the "
            text += f"{RELAYED_BYTES // MB} MB one answer relays]\n"
        return text


class _WorkerEnded(Exception):
    def __init__(self, kind: str, why: str) -> None:
        super().__init__(why)
        self.kind, self.why = kind, why


class _NodeInputs:
    """Where a task's file names are read from on this node (`_inputs_config` describes it)."""

    def __init__(self, config: dict[str, Any], folder: Path) -> None:
        self._kind = config["kind"]
        self._root = config.get("root", "")
        self._first_inputs: list[str] = config.get("first_inputs", [])
        self._rerun = bool(config.get("rerun"))
        self._folder = folder
        self._filesystem: Any = None
        if self._kind == SHARED and not os.path.isdir(self._root):
            raise _NodeLacks(f"cannot see the shared path '{self._root}' (it mounts no such folder).")
        if self._kind == REMOTE:
            self._filesystem = RemoteFolder(**config["remote"]).filesystem()
        if self._kind != SHARED:
            folder.mkdir(exist_ok=True)  # before the worker's sandbox names it

    @property
    def root(self) -> Path:
        """What the worker reads its inputs from: the shared folder, or this actor's copies."""
        return Path(self._root) if self._kind == SHARED else self._folder

    @property
    def first_inputs(self) -> list[str]:
        """A rerun's on a shared path: the inputs of the job it reruns, where its links lead."""
        return list(self._first_inputs)

    @property
    def rerun(self) -> bool:
        """A rerun's on a shared path: its links are not followed (`first_inputs` is what it may read)."""
        return self._rerun

    def fetch(self, index: int, names: list[str], contents: list[bytes | None] | None) -> list[str]:
        """The paths `run()` gets: the shared files themselves, else copies in this mini-batch's own folder."""
        if self._kind == SHARED:
            return [os.path.join(self._root, name) for name in names]
        folder = self._folder / str(index)
        local = [str(folder / name) for name in names]
        for path in local:
            os.makedirs(os.path.dirname(path), exist_ok=True)
        if self._kind == REMOTE:
            self._filesystem.get([f"{self._root}/{name}" for name in names], local)
        else:
            assert contents is not None
            for name, path, content in zip(names, local, contents, strict=True):
                if content is None:
                    raise PermissionError(f"'{name}' leads outside the job's input (a link): it was not read")
                Path(path).write_bytes(content)
        return local

    def clean(self, index: int) -> None:
        if self._kind != SHARED:
            shutil.rmtree(self._folder / str(index), ignore_errors=True)


def _node_root() -> Path:
    """This node's folder for batchpoint: workers' private folders, unpacked job files, built environments."""
    root = private_temp_root() / "ray-node"
    root.mkdir(exist_ok=True)
    return root


def _node_files(config: dict[str, Any], archive: list[Any]) -> tuple[Path, Path | None]:
    """The job's code and model folders on this node: in place on a shared path, else unpacked from the job's
    archive once per node (and per archive contents: a later job with the same code and model finds them)."""
    unpacked = _node_root() / "files" / str(config["archive_digest"])
    if config["archived"]:
        if not unpacked.is_dir():
            _unpack(unpacked, archive)
        os.utime(unpacked)  # in use: kept for FILES_KEPT_SECONDS more

    def place(name: str, path: str) -> Path:
        return unpacked / name if name in config["archived"] else Path(path)

    return place(CODE, config["code"]), place(MODEL, config["model"]) if config["model"] else None


def _unpack(folder: Path, archive: list[Any]) -> None:
    """Unpack the job's archive into `folder` (one actor of the node does; the others wait for it), and remove
    the archives no job used for FILES_KEPT_SECONDS."""
    folder.parent.mkdir(exist_ok=True)
    with _node_lock(folder.with_suffix(".lock")):
        if folder.is_dir():
            return
        partial = folder.with_suffix(".partial")
        shutil.rmtree(partial, ignore_errors=True)
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(ray.get(archive[0])))) as files:
            files.extractall(partial, filter="data")
        partial.rename(folder)
    for old in folder.parent.iterdir():
        if old.is_dir() and old.suffix == "" and time.time() - old.stat().st_mtime > FILES_KEPT_SECONDS:
            with _node_lock(old.with_suffix(".lock")):
                shutil.rmtree(old, ignore_errors=True)


def _node_python(environment: dict[str, Any] | None, installer: InstallerName, sandbox: WorkerSandbox) -> Path | None:
    """The interpreter of the job's environment as built on this node (once per node: the node's environment
    cache is shared by its actors and jobs); None runs the worker on this actor's own interpreter."""
    if environment is None:
        return None
    spec = EnvironmentSpec(tuple(environment["requirements"]), environment["python"], source=environment["source"])
    finder = PythonFinder()
    try:
        spec = spec.built_with(finder.choose(spec.python))
    except PythonNotFound:
        found = ", ".join(interpreter.describe() for interpreter in finder.all()) or "none"
        raise _NodeLacks(
            f"has no Python {spec.python}, which the environment asks for ({spec.source or 'the deployment'}); it "
            f"has {found}. Install it on every node of the cluster (`uv python install {spec.python}` or "
            f"`pyenv install {spec.python}`)."
        ) from None
    cache = EnvironmentCache(_node_root() / "environments", installer=choose_installer(installer), sandbox=sandbox)
    try:
        return cache.ensure(spec).python
    except (EnvironmentBuildError, InstallerUnavailable) as error:
        raise _NodeLacks(f"could not build the environment ({spec.source or 'the deployment'}): {error}") from None


def _node_gpus() -> int:
    """How many GPUs this node declares to Ray."""
    node = ray.get_runtime_context().get_node_id()
    return next((int(found["Resources"].get("GPU", 0)) for found in ray.nodes() if found["NodeID"] == node), 0)


def _ray_sockets() -> str:
    """The folder of this node's Ray sockets (the raylet's, the object store's): a worker of the node's uid could
    connect to them (Landlock does not stop a unix socket's connect), so it does not see them."""
    node = ray._private.worker.global_worker.node
    assert node is not None, "an actor runs on a node"
    return str(node.get_sockets_dir_path())


def _raylet() -> psutil.Process | None:
    """This node's raylet, which started this actor's process (and names itself in its RAY_RAYLET_PID)."""
    try:
        return psutil.Process(int(os.environ.get("RAY_RAYLET_PID") or os.getppid()))
    except (psutil.Error, ValueError):
        return None


def _has_ended(process: psutil.Process) -> bool:
    """Whether `process` is gone (a zombie is: it has ended, not yet reaped by its parent)."""
    try:
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:
        return False


def _actor_home() -> Path:
    """This actor's private folder on its node, named after its pid. The folders of actors that are gone (they
    are killed when their run() times out or their job ends) are removed first."""
    homes = _node_root() / "workers"
    homes.mkdir(exist_ok=True)
    for home in homes.iterdir():
        if not home.name.isdigit() or not psutil.pid_exists(int(home.name)):
            shutil.rmtree(home, ignore_errors=True)
    home = homes / str(os.getpid())
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir()
    return home


@contextlib.contextmanager
def _node_lock(path: Path) -> Iterator[None]:
    """Held by one process of this node at a time."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --- on the coordinator -------------------------------------------------------------------------------------


@dataclass
class Transfer:
    """Bytes that passed through the coordinator for one job: `to_nodes` (the actors' settings, the job's
    archive once per node, and every task: its file names, or the files themselves when the nodes cannot read
    them) and `from_nodes` (every answer: rows, tracebacks, what the script printed). Ray's own framing of
    each message (a few hundred bytes) is not counted."""

    to_nodes: int = 0
    from_nodes: int = 0

    def sent(self, size: int) -> None:
        self.to_nodes += size
        counters.COORDINATOR_BYTES_TO_NODES.inc(size)

    def received(self, size: int) -> None:
        self.from_nodes += size
        counters.COORDINATOR_BYTES_FROM_NODES.inc(size)


@dataclass
class _Slot:
    index: int
    node: str
    actor: Any = None
    name: WorkerName | None = None
    task: Task | None = None
    ref: Any = None
    queued: Task | None = None
    """A task sent behind the running one: the actor starts it as that one returns (Ray runs an actor's calls in
    order), without a round trip through the coordinator."""
    queued_ref: Any = None
    start_ref: Any = None
    """The actor's `start` call, until it answers."""
    init_failures: int = 0
    answered: bool = False
    """The actor answered its `start`: its worker's `init()` returned, and its name says where it runs."""


class RayExecutor(Executor):
    """Runs a job's tries on actors of the Ray cluster at `address` (see the module's docstring)."""

    workers_on_this_machine = False

    def __init__(
        self,
        address: str,
        environment: EnvironmentSpec | None = None,
        installer: InstallerName = "pip",
        shared_paths: Sequence[Path] = (),
        sandbox: WorkerSandbox | None = None,
        gpus_per_worker: int = 0,
    ) -> None:
        """`environment` is the deployment's: each node builds it once, on the Python it asks for, with
        `installer` (the one the server builds local environments with). `shared_paths` are folders every node
        of the cluster mounts at the same path: inputs, code and models under them are read there in place.
        `sandbox`: the server's settings of the sandbox each node's workers and builds enter (docs/security.md).
        `gpus_per_worker`: the GPUs each actor asks Ray for (a compute of a GPU size asks 1); its worker uses
        those Ray gives it."""
        self._address = address
        self._gpus_per_worker = gpus_per_worker
        self._sandbox = sandbox or WorkerSandbox()
        self._environment = environment
        self._installer = installer
        self._shared = [Path(os.path.realpath(path)) for path in shared_paths]
        self._slots: list[_Slot] = []
        self._deadlines: Deadlines[int] = Deadlines()
        self._finished: list[TaskEvent] = []
        self._group: Any = None
        self._archive: list[Any] = []
        self._last_init_error = ""
        self._last_init_details = ""
        self.transfer = Transfer()

    def start(self, spec: JobSpec) -> None:
        if spec.script_path is None:
            raise ValueError("The Ray executor needs a scoring script.")
        self._spec = spec
        connect(self._address)
        self.transfer = Transfer()
        self._layout = LogLayout(spec.logs_dir)
        self._names = ProcessNames(self._layout)
        names_root, self._inputs = self._inputs_config(spec)
        self._readable = [os.path.realpath(root) for root in spec.input_roots or spec.input_paths]
        """Where the files the coordinator reads for the nodes must lie (`_shipped`): the job's inputs, a rerun's
        first job's; resolved once, not per mini-batch."""
        self._relative = _relative_names(names_root)
        self._config = self._actor_config(spec)
        self._stream_log(f"Inputs: {_describe_inputs(self._inputs, spec)}")
        self._group = self._reserve_nodes(spec)
        self._slots = [
            _Slot(index, str(index // spec.max_concurrency_per_instance)) for index in range(spec.worker_count)
        ]
        for slot in self._slots:
            self._start_actor(slot)

    def idle_slots(self) -> int:
        return sum(1 for slot in self._slots if slot.task is None and self._usable(slot))

    def submit(self, task: Task) -> WorkerName:
        idle = [slot for slot in self._slots if slot.task is None and self._usable(slot)]
        slot = min(idle, key=lambda slot: (not slot.answered, slot.actor is None))  # a started actor first
        if slot.actor is None:
            self._start_actor(slot)
        slot.task, slot.ref = task, self._call(slot, task)
        if slot.answered:  # else its init() deadline runs, and this one's starts when it has answered
            self._arm(slot)
        assert slot.name is not None
        return slot.name

    def queue_slots(self) -> int:
        return sum(1 for slot in self._slots if _can_queue(slot))

    def queue(self, task: Task) -> None:
        slot = next(slot for slot in self._slots if _can_queue(slot))
        slot.queued, slot.queued_ref = task, self._call(slot, task)

    def _call(self, slot: _Slot, task: Task) -> Any:
        """Send the task to the slot's actor; its result's reference."""
        names = [self._relative(path) for path in task.files]
        contents = self._shipped(task.files) if self._inputs["kind"] == SHIPPED else None
        self.transfer.sent(sum(len(name.encode(errors="surrogateescape")) for name in names) + _size(contents))
        return slot.actor.run.remote(task.index, names, contents)

    def _shipped(self, files: Sequence[str]) -> list[bytes | None]:
        """The files' contents, read here with the server's rights, so only of those that lead inside the job's
        inputs (`_readable`), as a worker's sandbox would read them; None for any other (a link a user placed in
        the input, to a file elsewhere): its node fails the try saying so."""
        return [_read_inside(path, self._readable) for path in files]

    def poll(self, timeout: float) -> list[TaskEvent]:
        if not any(self._usable(slot) for slot in self._slots):
            raise InitFailedError.on_every_worker(
                self._spec.init_tries, len(self._slots), self._last_init_error, self._last_init_details
            )
        starting = {slot.start_ref: slot for slot in self._slots if slot.start_ref is not None}
        running = {slot.ref: slot for slot in self._slots if slot.ref is not None and slot.start_ref is None}
        busy = [*starting, *running]
        if busy and not self._finished:
            ready, _ = ray.wait(busy, num_returns=1, timeout=timeout)
            if ready:
                ready, _ = ray.wait(busy, num_returns=len(busy), timeout=0)
            for ref in ready:
                if ref in starting:
                    self._started(starting[ref])
                else:
                    self._collect(running[ref], ref)
        elif not self._finished:
            time.sleep(timeout)
        self._stop_expired()
        finished, self._finished = self._finished, []
        return finished

    def stop(self, graceful: bool = True) -> None:
        idle = [slot for slot in self._slots if slot.answered and slot.actor is not None and slot.task is None]
        idle = idle if graceful else []
        with contextlib.suppress(RayError, GetTimeoutError):
            logs = ray.get([slot.actor.shutdown.remote() for slot in idle], timeout=SHUTDOWN_SECONDS + 5)
            for slot, written in zip(idle, logs, strict=True):
                self.transfer.received(written.size)
                self._append_logs(slot, written)
        for slot in self._slots:
            self._retire(slot, "exits: the job's run ended")
        if self._group is not None:
            remove_placement_group(self._group)
            self._group = None
            self._stream_log(
                f"Coordinator transfer: {self.transfer.to_nodes:,} bytes to the nodes, "
                f"{self.transfer.from_nodes:,} bytes from them."
            )
        self._archive = []
        self._finished.clear()

    # --- what the nodes get -----------------------------------------------------------------------------

    def _inputs_config(self, spec: JobSpec) -> tuple[str, dict[str, Any]]:
        """How the nodes read the inputs: from the remote storage they are on, in place under a shared path, or
        (an input on the server's own disk) sent with each task. Returns the folder the tasks' file names are
        relative to, and what the nodes are told (their `root` is that folder as they see it)."""
        remote = spec.remote_input
        if remote is not None:
            path = remote.path.rstrip("/")
            root = path if remote.filesystem().isdir(path) else path.rpartition("/")[0]
            return str(spec.input_paths[0].absolute()), {"kind": REMOTE, "root": root, "remote": asdict(remote)}
        folder = _common_folder(spec.input_paths)
        shared = self._shared_path(Path(folder))
        if shared is not None:
            if not spec.input_roots:
                return folder, {"kind": SHARED, "root": shared}
            first = [os.path.realpath(root) for root in spec.input_roots]  # Landlock follows no link under them
            shared_first = [real for real in first if any(Path(real).is_relative_to(root) for root in self._shared)]
            return folder, {"kind": SHARED, "root": shared, "rerun": True, "first_inputs": shared_first}
        return folder, {"kind": SHIPPED, "folder": folder}

    def _actor_config(self, spec: JobSpec) -> dict[str, Any]:
        """What every actor gets: the worker's settings, where the code, model and inputs are, the environment.
        The code and the model go in one archive, put in the object store once, unless they are shared."""
        assert spec.script_path is not None
        code = (spec.code_dir or spec.script_path.parent).absolute()
        model = spec.model_dir.absolute() if spec.model_dir is not None else None
        places = {CODE: self._shared_path(code), MODEL: self._shared_path(model) if model is not None else None}
        archived = {name: folder for name, folder in ((CODE, code), (MODEL, model)) if folder and not places[name]}
        digest = None
        if archived:
            archive, digest = _job_archive(archived)
            self._archive = [ray.put(archive)]
            self.transfer.sent(len(archive) * spec.instance_count)
        return {
            "worker": {
                "script": str(spec.script_path.relative_to(code)),
                "logging_level": spec.logging_level,
                "summary_only": spec.output_action == SUMMARY_ONLY,
                "argv": script_argv(spec),
            },
            "variables": {**spec.job_variables, **spec.environment_variables},
            "sandbox": self._sandbox.for_nodes(),
            "code": places[CODE],
            "model": places[MODEL] or (MODEL if model is not None else None),
            "archived": sorted(archived),
            "archive_digest": digest,
            "inputs": self._inputs,
            "environment": _environment_config(self._environment),
            "installer": self._installer,
        }

    def _shared_path(self, path: Path) -> str | None:
        """Where every node sees `path`: its real path, when that and the targets of the links directly in it are
        under a shared path; None when the nodes may not see it."""
        real = os.path.realpath(path)
        targets = [real, *(os.path.realpath(link) for link in _links(path))]
        shared = all(any(Path(target).is_relative_to(root) for root in self._shared) for target in targets)
        return real if shared else None

    # --- actors -----------------------------------------------------------------------------------------

    def _reserve_nodes(self, spec: JobSpec) -> Any:
        bundle = {"CPU": CPUS_PER_WORKER * spec.max_concurrency_per_instance}
        if self._gpus_per_worker:
            bundle["GPU"] = self._gpus_per_worker * spec.max_concurrency_per_instance
        group = placement_group([dict(bundle) for _ in range(spec.instance_count)], strategy="SPREAD")
        try:
            ray.get(group.ready(), timeout=PLACEMENT_SECONDS)
        except GetTimeoutError:
            remove_placement_group(group)
            raise RayClusterError(
                f"The Ray cluster at '{self._address}' has no room for {spec.instance_count} node(s) of "
                f"{bundle['CPU']:g} CPU(s){_and_gpus(bundle)} each (instance_count x max_concurrency_per_instance "
                f"workers of {CPUS_PER_WORKER:g} CPU{_and_gpus({'GPU': self._gpus_per_worker})})."
            ) from None
        return group

    def _start_actor(self, slot: _Slot) -> None:
        """An actor on its slot's node of the job's placement group. When that node died, Ray moves the
        group's bundle to a node with room, and the replacement actor starts there."""
        slot.name = self._names.new(slot.node)
        slot.answered = False
        log_name = self._layout.entry_script_log(slot.name).name
        slot.actor = RemoteScoringActor.options(
            num_cpus=CPUS_PER_WORKER,
            num_gpus=self._gpus_per_worker,
            scheduling_strategy=PlacementGroupSchedulingStrategy(self._group, int(slot.node)),
        ).remote(self._config, self._archive, slot.name.process, log_name)
        self.transfer.sent(len(json.dumps(self._config)))
        slot.start_ref = slot.actor.start.remote()
        self._deadlines.arm(slot.index, time.monotonic() + self._spec.init_timeout_seconds)

    def _started(self, slot: _Slot) -> None:
        """The slot's actor answered its `start`: its worker is ready, named after where it runs, and its task's time
        limit starts; or it could not start (a failed `init()`, which costs the task no try), or went with its node."""
        ref, slot.start_ref = slot.start_ref, None
        try:
            kind, value, logs, where = ray.get(ref)
        except (RayTaskError, UnserializableException) as error:
            self._actor_raised(slot, "while starting", error)
            return
        except RayError as error:  # the actor or its node is gone, or the actor could not be created
            if _gone_with_its_node(error):
                self._lose(slot, f"(its node or process died): {_first_line(error)}")
            else:
                self._init_failed(slot, f"The Ray worker {slot.name} could not start: {error}")
            return
        if kind == "unavailable":
            raise NodeUnavailableError(value)
        self.transfer.received(logs.size + len(value.encode()) + len(where.encode()))
        assert slot.name is not None
        slot.name = replace(slot.name, detail=where)  # the job's logs say where each worker ran
        append_line(self._layout.node_main(slot.node), f"{slot.name.process} started ({slot.name.detail}).")
        self._append_logs(slot, WorkerLogs(f"Worker {slot.name}\n"))
        self._append_logs(slot, logs)
        if kind == "lost":
            self._lose(slot, f"with its node: {value}.")
        elif kind != "ready":
            self._init_failed(slot, value)
        else:
            slot.answered, slot.init_failures = True, 0
            self._deadlines.disarm(slot.index)
            if slot.task is not None:
                self._arm(slot)

    def _arm(self, slot: _Slot) -> None:
        self._deadlines.arm(slot.index, time.monotonic() + self._spec.timeout_seconds)

    def _collect(self, slot: _Slot, ref: Any) -> None:
        task = slot.task
        assert task is not None
        try:
            kind, value, logs, timing = ray.get(ref)
        except (RayTaskError, UnserializableException) as error:
            self._actor_raised(slot, f"while running mini-batch {task.index}", error)
            return
        except RayError as error:  # the actor, its node or the object holding its result is gone
            self._lose(slot, f"(its node or process died): {_first_line(error)}")
            return
        if kind == "unavailable":
            raise NodeUnavailableError(value)
        self.transfer.received(logs.size + (len(value[1]) if kind == "done" else len(value.encode())))
        self._append_logs(slot, logs)
        if kind == "lost":
            self._lose(slot, f"with its node: {value}.")
            return
        slot.task = slot.ref = None
        self._deadlines.disarm(slot.index)
        assert slot.name is not None
        if kind == "done":
            returned, rows = value
            self._finished.append(TaskDone(task.index, slot.name, returned, rows, TryTiming(**timing)))
            self._start_queued(slot)
        elif kind == "error":
            self._finished.append(
                TaskFailed(task.index, slot.name, "exception", value, TryTiming(**timing) if timing else None)
            )
            self._start_queued(slot)
        else:  # "died" (a run is collected only after its actor's start answered "ready")
            self._finished.append(TaskFailed(task.index, slot.name, "died", f"{slot.name}: {value}"))
            self._retire(slot, "exits: its worker process died")

    def _start_queued(self, slot: _Slot) -> None:
        """The actor went on to its queued task as it answered the one before: its time limit starts now."""
        if slot.queued is None:
            return
        assert slot.name is not None
        slot.task, slot.ref, slot.queued, slot.queued_ref = slot.queued, slot.queued_ref, None, None
        self._arm(slot)
        self._finished.append(TaskStarted(slot.task.index, slot.name))

    def _actor_raised(self, slot: _Slot, when: str, error: RayError) -> None:
        """batchpoint's code in the slot's actor raised (`error` is what Ray says of it, `when`: "while starting",
        say). Its node out of space pauses the job (TransientFault); Ray unable to give the call what it needs (an
        object lost with its owner or node) loses the slot, at no cost; anything else is a bug (ActorFailedError),
        an exception Ray could not send back too (a plain RayError in its place, or UnserializableException)."""
        assert slot.name is not None
        cause = _raised_by_the_actor(error)
        if _out_of_space(cause):
            name = f"{type(cause).__name__}: {_first_line(cause)}"
            raise TransientFault(f"the node of the Ray worker {slot.name} is out of space ({name})") from cause
        if isinstance(cause, ObjectLostError):  # and what derives from it: its owner died, its fetch timed out, ...
            self._lose(slot, f"(Ray could not run its call): {_first_line(cause)}")
            return
        failed = ActorFailedError(slot.name, when, cause)
        failed.add_note(f"The actor's traceback, on its node:\n{_traceback_of(error)}")
        raise failed from None

    def _init_failed(self, slot: _Slot, error: str) -> None:
        """The worker could not start: its task, if it was given one, goes back costing no try (as an `init`
        failure, which the coordinator logs; without one, its node's log says why)."""
        assert slot.name is not None
        slot.init_failures += 1
        self._last_init_error = error
        if slot.task is not None:
            self._last_init_details = self._layout.relative(self._layout.error(slot.name))
            self._finished.append(TaskFailed(slot.task.index, slot.name, "init", error))
        else:
            self._last_init_details = self._layout.relative(self._layout.node_main(slot.node))
            append_line(self._layout.node_main(slot.node), f"{slot.name.process} could not start: {error}")
        self._deadlines.disarm(slot.index)
        self._retire(slot, "exits: its init() failed")

    def _lose(self, slot: _Slot, why: str) -> None:
        """The worker is gone (its node or process died), with its try if it had one: the mini-batch goes back,
        costing no try. `why` follows "The Ray worker NAME was lost"."""
        assert slot.name is not None
        message = f"The Ray worker {slot.name} was lost {why}"
        if slot.task is not None:
            self._finished.append(TaskFailed(slot.task.index, slot.name, "lost", message))
        else:
            append_line(self._layout.node_main(slot.node), message)
        self._deadlines.disarm(slot.index)
        self._retire(slot, "was lost with its node or process")

    def _stop_expired(self) -> None:
        for index in self._deadlines.expired(time.monotonic()):
            slot = self._slots[index]
            if slot.start_ref is not None:
                self._stop_starting(slot)
                continue
            if slot.task is None:
                continue
            if ray.wait([slot.ref], timeout=0)[0]:  # it answered in time, after this poll's wait: not a timeout
                self._collect(slot, slot.ref)  # (the call queued behind it has started)
                continue
            seconds = self._spec.timeout_seconds
            assert slot.name is not None
            error = f"run() did not return within {seconds:g} s on {slot.name}."
            self._finished.append(TaskFailed(slot.task.index, slot.name, "timeout", error))
            self._retire(slot, f"was stopped: run() took longer than {seconds:g} s")

    def _stop_starting(self, slot: _Slot) -> None:
        """The actor did not answer its `start` within the init() time limit: a failed `init()`, as locally."""
        if ray.wait([slot.start_ref], timeout=0)[0]:  # it answered in time, after this poll's wait
            self._started(slot)
            return
        seconds = self._spec.init_timeout_seconds
        self._init_failed(
            slot,
            f"The Ray worker {slot.name} did not start and return from init() within {seconds:g} seconds (its "
            "actor's placement, the environment on its node and init() itself); it was stopped.",
        )

    def _retire(self, slot: _Slot, why: str) -> None:
        """Kill the slot's actor; a task queued behind its last one goes back, never begun."""
        if slot.actor is not None:
            with contextlib.suppress(RayError):
                ray.kill(slot.actor)
            assert slot.name is not None
            append_line(self._layout.node_main(slot.node), f"{slot.name.process} {why}.")
        if slot.queued is not None:
            self._finished.append(TaskReturned(slot.queued.index))
        slot.actor = slot.task = slot.ref = slot.queued = slot.queued_ref = slot.start_ref = None
        slot.answered = False

    def _usable(self, slot: _Slot) -> bool:
        return slot.init_failures < self._spec.init_tries

    def _append_logs(self, slot: _Slot, logs: WorkerLogs) -> None:
        if slot.name is None:
            return
        for text, path in ((logs.printed, self._layout.stdout(slot.name)),
                           (logs.entry_script, self._layout.entry_script_log(slot.name))):  # fmt: skip
            if text:
                path.parent.mkdir(parents=True, exist_ok=True)
                with open(path, "a", encoding="utf-8") as log:
                    log.write(text)

    def _stream_log(self, line: str) -> None:
        StreamLog(self._spec.logs_dir / STREAM_LOG).write(line)


def _can_queue(slot: _Slot) -> bool:
    """Only an actor that has answered its `start` gets a queued task: one still starting may fail its `init()` or
    lack what the job needs, which hands back its task at no cost, with no second one to hand back with it."""
    return slot.answered and slot.task is not None and slot.queued is None


def _gone_with_its_node(error: RayError) -> bool:
    """Whether the actor `error` is about went with its node: Ray has declared dead the node it ran on (its table
    of actors names the node), or the actor cannot be reached and no raylet reported its death (one that lives
    reports a worker's death at once). False when Ray cannot tell, the actor never reached a node, say."""
    if isinstance(error, ActorUnavailableError):
        return True
    actor_id = getattr(error, "actor_id", None)
    if not actor_id:
        return False
    try:
        node_id = ray._private.state.actors(actor_id=actor_id)["Address"]["NodeID"]
        return any(node["NodeID"] == node_id and not node["Alive"] for node in ray.nodes())
    except (RayError, ConnectionError, KeyError, TypeError):
        return False


def _and_gpus(resources: dict[str, float]) -> str:
    return f" and {resources['GPU']:g} GPU(s)" if resources.get("GPU") else ""


def _job_archive(folders: dict[str, Path]) -> tuple[bytes, str]:
    """The folders as one compressed archive, each under its name, and its contents' digest: the same files give
    the same digest, so a node unpacks them once for every job that uses them."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", dereference=True) as archive:
        for name, folder in sorted(folders.items()):
            archive.add(folder, name)
    data = buffer.getvalue()
    return gzip.compress(data, compresslevel=1, mtime=0), hashlib.sha256(data).hexdigest()[:32]


def _environment_config(environment: EnvironmentSpec | None) -> dict[str, Any] | None:
    if environment is None:
        return None
    return {"requirements": list(environment.requirements), "python": environment.python,
            "source": environment.source}  # fmt: skip


def _common_folder(paths: Sequence[Path]) -> str:
    """The folder the input paths have in common (a file's own folder for a file)."""
    folders = [str(path.absolute()) if path.is_dir() else str(path.absolute().parent) for path in paths]
    return os.path.commonpath(folders) if folders else "/"


def _relative_names(root: str) -> Callable[[str], str]:
    """A task's file names: relative to `root`, which the nodes know."""
    prefix = root.rstrip(os.sep) + os.sep

    def relative(path: str) -> str:
        return path[len(prefix) :] if path.startswith(prefix) else os.path.relpath(path, root)

    return relative


def _links(path: Path) -> list[Path]:
    """The symbolic links directly in `path`: a job's model folder holds one to the registered model when the job
    was planned before Decision 17 or the model is on another file system."""
    if not path.is_dir():
        return [path] if path.is_symlink() else []
    return [child for child in path.iterdir() if child.is_symlink()]


def _describe_inputs(inputs: dict[str, Any], spec: JobSpec) -> str:
    if inputs["kind"] == REMOTE:
        return f"the nodes read them from {spec.remote_input and spec.remote_input.uri}."
    if inputs["kind"] == SHARED:
        return f"the nodes read them in place under the shared path {inputs['root']}."
    return (
        f"sent to the nodes with each mini-batch ({inputs['folder']} is on no shared path the nodes mount; see "
        "`batchpoint serve --ray-shared-path`)."
    )


def _read_inside(path: str, roots: list[str]) -> bytes | None:
    """The file's contents when the file it opens (not a path checked before: a user could swap the file for a link
    in between) lies in one of `roots`; else None."""
    descriptor = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        opened = os.readlink(f"/proc/self/fd/{descriptor}")
        if not any(is_within(opened, root) for root in roots):
            return None
        with os.fdopen(descriptor, "rb", closefd=False) as file:
            return file.read()
    finally:
        os.close(descriptor)


def _size(contents: list[bytes | None] | None) -> int:
    return sum(len(content) for content in contents if content is not None) if contents else 0


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
