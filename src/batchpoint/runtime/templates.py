"""Warm worker templates (Decision 23): a process per environment that has imported what the environment's workers
import, and forks workers on request, so that a worker of a heavy environment (pandas, scikit-learn, MLflow, torch)
starts in milliseconds instead of seconds of CPU.

- **Which jobs.** Only workers of the server's own environment (its interpreter and virtual environment, whose
  packages the operator installed), of a job whose variables set nothing the interpreter acts on at start
  (`PYTHON*`, `LD_*`): a template is not sandboxed, so it must run nothing a deployment chose. Other workers start
  as before (`spawn.start_worker`). One template per (interpreter, worker user, the job's thread-count variables,
  which libraries read when they are imported).
- **What it imports.** What the workers taught it: each worker of a job that may use a template lists, once its
  `init()` returned and again with its first mini-batch's answer (what `run()` imports lazily), the public modules
  of site-packages it has imported (`worker.py`), and the template imports
  those it finds in its own site-packages (`sandbox/boot.py`; nothing of the standard library, the job's code or
  anywhere else). The first workers of an environment start cold and teach it; later ones are forked.
- **No secret.** A template's environment is the sandbox's environment of no job (the operator's settings, the
  environment's activation, its own private folder; `JobSpec.environment_variables` only for the thread counts),
  never `JobSpec.job_variables` (the job's token). A forked worker gets its policy and its environment from the
  server, after the fork, on its own pipe (`spawn.boot_worker`), and enters its sandbox exactly as a started one.
- **Never slower.** A worker is forked only from a template that is ready (not starting, not importing); otherwise
  it starts cold at once. A template not ready within `READY_SECONDS` of its start or of an import is retired
  (stopped once its last forked worker has exited, since they die with it), and after `MAX_FAILURES` retirements
  its environment's workers always start cold.
- **Owned by the server.** The job runner's pool (`jobs/runner.py`) stops every template when the server stops; a
  template also exits within a second when its server has gone. Its command line names it (`boot.py template`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from batchpoint.runtime.sandbox.policy import virtual_environment
from batchpoint.runtime.spawn import StartedWorker, handle_of, private_temp_root, read_text, reply_pipe, start_boot

log = logging.getLogger(__name__)

READY_SECONDS = 10.0
"""How long a template may take to start or to import one batch of modules before it is retired."""
MAX_FAILURES = 2
"""Retirements of an environment's templates after which its workers always start cold."""
MAX_SPARES = os.cpu_count() or 1
"""The most spare children a template keeps forked ahead of the next job (`boot._Spares`)."""
IMPORT_BATCH = 200
"""Modules per `import` message (and per `READY_SECONDS`)."""
MAX_IMPORTS = 20_000
"""The most modules an environment's template learns (a worker of torch and pandas teaches about 2,000): the names
come from workers, whose scripts could make them up without end."""
IMPORT_VARIABLES = (
    "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS", "NUMEXPR_MAX_THREADS",
    "VECLIB_MAXIMUM_THREADS", "BLIS_NUM_THREADS",
)  # fmt: skip
"""A job's variables that libraries read when they are imported: a template has the job's values of them."""
COLD_PREFIXES = ("PYTHON", "LD_")
"""A job whose variables set one of these starts its workers cold (they act when an interpreter starts)."""

Environment = Callable[[Path], dict[str, str]]
"""The environment of a template whose private folder is the argument."""


@dataclass(frozen=True)
class TemplateKey:
    """Which workers one template serves."""

    python: str
    uid: int
    variables: tuple[tuple[str, str], ...]
    """The job's values of `IMPORT_VARIABLES`."""


def template_key(python: Path, uid: int, variables: Mapping[str, str]) -> TemplateKey | None:
    """The template a job's workers may be forked from; None when they must start cold."""
    if not is_server_environment(python) or any(name.startswith(COLD_PREFIXES) for name in variables):
        return None
    imported = tuple(sorted((name, value) for name, value in variables.items() if name in IMPORT_VARIABLES))
    return TemplateKey(str(Path(python).absolute()), uid, imported)


def is_server_environment(python: Path) -> bool:
    """`python` runs the server's own environment (its virtual environment, or its interpreter without one)."""
    own, theirs = virtual_environment(Path(sys.executable)), virtual_environment(Path(python))
    if own is not None or theirs is not None:
        return own is not None and theirs is not None and own.resolve() == theirs.resolve()
    return os.path.realpath(python) == os.path.realpath(sys.executable)


class ForkedProcess:
    """A worker forked by a template: its template reaps it and reports how it exited."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.handle = handle_of(pid)
        """Taken as its template says it forked it: the template reaps it, and says so only after."""
        self.returncode: int | None = None
        self._ended = threading.Event()

    def ended(self, returncode: int) -> None:
        if self.returncode is None:
            self.returncode = returncode
        self._ended.set()

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._ended.wait(timeout):
            raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout or 0.0)
        assert self.returncode is not None
        return self.returncode


STARTING, READY, BUSY, FORKING, RETIRED = "starting", "ready", "busy", "forking", "retired"


@dataclass(eq=False)
class _Template:
    key: TemplateKey
    process: subprocess.Popen[bytes]
    control: socket.socket
    folder: Path
    state: str = STARTING
    deadline: float = 0.0
    pending: list[str] = field(default_factory=list)
    children: dict[int, ForkedProcess] = field(default_factory=dict)
    forked: queue.Queue[ForkedProcess | None] = field(default_factory=queue.Queue)
    reader: threading.Thread | None = None

    def send(self, message: dict[str, Any], fds: Iterable[int] = ()) -> None:
        socket.send_fds(self.control, [json.dumps(message).encode()], list(fds))


class TemplatePool:
    """The server's templates, by `TemplateKey`. Thread-safe: every job's coordinator uses it."""

    def __init__(self, ready_seconds: float = READY_SECONDS) -> None:
        self._ready_seconds = ready_seconds
        self._lock = threading.Lock()
        self._templates: dict[TemplateKey, _Template] = {}
        self._retired: list[_Template] = []
        self._known: dict[TemplateKey, dict[str, None]] = {}
        self._failures: Counter[TemplateKey] = Counter()
        self._closed = False

    def fork(self, key: TemplateKey, *, home: Path, stdout: Path, stderr: Path, workers: int) -> StartedWorker | None:
        """A worker forked from `key`'s template, working in `home/cwd`, not yet booted (`spawn.boot_worker`);
        None when there is no ready template (the caller starts one cold). `workers`: how many its job has; the
        template keeps as many spare children forked for the next job (at most `MAX_SPARES`)."""
        with self._lock:
            template = self._templates.get(key)
            if template is None or self._closed or not self._is_ready(template):
                return None
            template.state = FORKING
        command_read, command_write = os.pipe()
        reply_read, reply_write = reply_pipe()
        forked: ForkedProcess | None = None
        try:
            with open(stdout, "ab") as out, open(stderr, "ab") as err:
                fork = {"kind": "fork", "cwd": str(home / "cwd"), "spares": _spares(workers)}
                template.send(fork, [command_read, reply_write, out.fileno(), err.fileno()])
            forked = template.forked.get(timeout=self._ready_seconds)
        except (OSError, queue.Empty):
            forked = None
        finally:
            os.close(command_read)
            os.close(reply_write)
            with self._lock:
                if forked is None:
                    self._retire(template, "did not fork a worker")
                elif template.state == FORKING:  # not retired meanwhile (it exited, say)
                    template.state = READY
                    self._import_pending(template)
        if forked is None:
            os.close(command_write)
            os.close(reply_read)
            return None
        commands, replies = Connection(command_write, readable=False), Connection(reply_read, writable=False)
        return StartedWorker(forked, commands, replies, parent_pid=template.process.pid, handle=forked.handle)

    def learn(self, key: TemplateKey, modules: Iterable[str], environment: Environment, workers: int) -> None:
        """`key`'s workers import `modules`: its template imports them too, and starts if there is none (with spares
        for the next job's `workers`, as `fork` asks)."""
        with self._lock:
            if self._closed:
                return
            known = self._known.setdefault(key, {})
            new = [name for name in modules if name not in known][: max(0, MAX_IMPORTS - len(known))]
            known.update(dict.fromkeys(new))
            template = self._templates.get(key)
            if template is not None:
                self._is_ready(template)  # retires one past its deadline
                template = self._templates.get(key)
            if template is None:
                if self._failures[key] < MAX_FAILURES:
                    self._start(key, list(known), environment, _spares(workers))
                return
            template.pending.extend(new)
            if template.state == READY:
                self._import_pending(template)

    def pids(self) -> list[int]:
        """The templates' processes (retired ones too, until they have exited)."""
        with self._lock:
            return [template.process.pid for template in [*self._templates.values(), *self._retired]]

    def ready(self) -> list[int]:
        """The templates ready to fork a worker now."""
        with self._lock:
            return [template.process.pid for template in self._templates.values() if self._is_ready(template)]

    def close(self) -> None:
        """Stop every template (the server stops: its jobs' workers have stopped)."""
        with self._lock:
            self._closed = True
            templates = [*self._templates.values(), *self._retired]
            self._templates.clear()
            self._retired.clear()
        for template in templates:
            _kill(template)
        for template in templates:
            if template.reader is not None:
                template.reader.join(5.0)

    # --- under the lock ----------------------------------------------------------------------------------------

    def _is_ready(self, template: _Template) -> bool:
        if template.state in (STARTING, BUSY) and time.monotonic() > template.deadline:
            self._retire(template, f"was not ready within {self._ready_seconds:g} seconds")
        return template.state == READY

    def _start(self, key: TemplateKey, modules: list[str], environment: Environment, spares: int) -> None:
        folder = Path(tempfile.mkdtemp(prefix="t", dir=private_temp_root()))  # short: Decision 16
        for name in ("cwd", "home", "tmp"):
            (folder / name).mkdir(mode=0o700)
        variables = environment(folder)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        log_file, fds = folder / "stderr.txt", (theirs.fileno(),)
        try:
            process = start_boot(
                Path(key.python), ["template", str(fds[0])], fds, folder / "cwd", variables, log_file, log_file
            )
        except OSError as error:
            ours.close()
            shutil.rmtree(folder, ignore_errors=True)
            self._failures[key] += 1
            log.warning("a worker template could not start: %s", error)
            return
        finally:
            theirs.close()
        template = _Template(key, process, ours, folder, deadline=time.monotonic() + self._ready_seconds)
        template.pending = modules
        venv = virtual_environment(Path(key.python))
        with contextlib.suppress(OSError):  # a template that died at once closes its socket: its reader retires it
            template.send(
                {
                    "kind": "template",
                    "environment": variables,
                    "venv": str(venv or ""),
                    "server_pid": os.getpid(),
                    "spares": spares,
                }
            )
        template.reader = threading.Thread(target=self._read, args=(template,), name="batchpoint-template", daemon=True)
        template.reader.start()
        self._templates[key] = template

    def _import_pending(self, template: _Template) -> None:
        if not template.pending or template.state != READY:
            return
        batch, template.pending = template.pending[:IMPORT_BATCH], template.pending[IMPORT_BATCH:]
        template.state, template.deadline = BUSY, time.monotonic() + self._ready_seconds
        try:
            template.send({"kind": "import", "modules": batch})
        except OSError:
            self._retire(template, "has gone")

    def _retire(self, template: _Template, why: str) -> None:
        """No more forks from `template`; it is stopped once its forked workers (which die with it) have exited."""
        if template.state == RETIRED:
            return
        template.state = RETIRED
        if self._templates.get(template.key) is template:
            del self._templates[template.key]
        self._failures[template.key] += 1
        self._retired.append(template)
        errors = read_text(template.folder / "stderr.txt")[-2000:]
        log.warning("the worker template pid %s %s; its workers start cold.%s", template.process.pid, why,
                    f"\n{errors}" if errors else "")  # fmt: skip
        if not template.children:
            _kill(template)

    # --- the reader thread of each template --------------------------------------------------------------------

    def _read(self, template: _Template) -> None:
        while True:
            try:
                data = template.control.recv(1 << 16)
            except OSError:
                data = b""
            if not data:
                break
            message = json.loads(data)
            with self._lock:
                self._received(template, message)
        with self._lock:
            if template.state != RETIRED and not self._closed:
                self._retire(template, "exited")
            with contextlib.suppress(ValueError):
                self._retired.remove(template)
            children, template.children = list(template.children.values()), {}
        for child in children:
            child.ended(-signal.SIGKILL)  # a template's workers die with it
        template.forked.put(None)
        template.process.wait()
        template.control.close()
        shutil.rmtree(template.folder, ignore_errors=True)

    def _received(self, template: _Template, message: dict[str, Any]) -> None:
        kind = message["kind"]
        if kind == "ready":
            if template.state in (STARTING, BUSY) and time.monotonic() > template.deadline:
                self._retire(template, f"was not ready within {self._ready_seconds:g} seconds")
            elif template.state in (STARTING, BUSY):
                template.state = READY
                self._import_pending(template)
        elif kind == "forked":
            child = ForkedProcess(int(message["pid"]))
            template.children[child.pid] = child
            template.forked.put(child)
        elif kind == "exited":
            ended = template.children.pop(int(message["pid"]), None)
            if ended is not None:
                ended.ended(int(message["returncode"]))
            if template.state == RETIRED and not template.children:
                _kill(template)


def _spares(workers: int) -> int:
    """How many spares a template keeps for the next job of a job's `workers`."""
    return min(workers, MAX_SPARES)


def _kill(template: _Template) -> None:
    """Stop a template; its reader thread reaps it and removes its folder."""
    with contextlib.suppress(ProcessLookupError):
        template.process.kill()
    with contextlib.suppress(OSError):
        template.control.shutdown(socket.SHUT_RDWR)
