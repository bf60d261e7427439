"""How every sandboxed process starts: `BASE_PYTHON -I -S boot.py worker READ_FD WRITE_FD` for a Python worker,
`python -I -S boot.py exec FILE -- COMMAND...` for anything else (a pipeline step, an environment build).

`-I -S`: no environment variable read, no site-packages, no `.pth` file, no `sitecustomize`: until the sandbox is
entered only the operator's interpreter, its standard library and batchpoint's own files (loaded from this file's
package by location, so that no other package comes with them) have run. The server starts it with a minimal
environment (`policy.BOOT_VARIABLES`), so nothing a deployment set (`LD_PRELOAD`, `PYTHONPATH`) acts before then.

`worker`: the first frame on READ_FD is `boot` {"policy", "environment", "venv"}: enter the sandbox (when the
policy is not null), take the job's environment, activate its virtual environment as `site` would have, then run
`batchpoint.runtime.worker`. `exec`: FILE holds {"policy", "environment"}: enter, then `execve` COMMAND with that
environment.

`template` (`BASE_PYTHON -I -S boot.py template SOCKET_FD`, `runtime/templates.py`, Decision 23): a warm process
of the server's own environment that forks workers, each of which then boots as a started one does. Unsandboxed,
so it runs nothing a deployment chose: the first message on SOCKET_FD (SOCK_SEQPACKET, one JSON message per packet)
is `template` {"environment", "venv", "server_pid", "spares"}, which holds no job's variable. It activates the
environment and imports `batchpoint.runtime.worker` and the sandbox's `confine`, then imports what `import` messages
name (public modules of its site-packages only) and answers `ready`. A `fork` {"cwd", "spares"} carries four descriptors
(the worker's command and reply pipe ends, its stdout, its stderr): a child closes everything else, takes its own
session and working folder and runs `worker` (reads `boot`, enters its sandbox, takes the job's environment); the
template answers `forked` {"pid"}, then `exited` {"pid", "returncode"} when it reaps it. The child is a spare forked
ahead when there is one (`_Spares`: up to "spares" of them, for the next job), else forked now. It exits when its
socket closes or the server is gone; its children die with it.

Standard library only, Python 3.8+. Nothing runs when this file is imported: multiprocessing's spawn children run it
again (as `__mp_main__`), inside the sandbox.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

ISOLATION_FLAGS = ("-I", "-S", "-E", "-s", "-P")


def _load_batchpoint() -> None:
    """batchpoint from the folder this file is in, without putting its parent (site-packages) on sys.path."""
    import importlib.util

    folder = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    spec = importlib.util.spec_from_file_location(
        "batchpoint", os.path.join(folder, "__init__.py"), submodule_search_locations=[folder]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["batchpoint"] = module
    spec.loader.exec_module(module)


def _enter(policy: dict[str, Any] | None) -> None:
    if policy is not None:
        from batchpoint.runtime.sandbox import confine

        confine.enter(policy)


def _activate(environment: dict[str, str], venv: str) -> None:
    """The job's environment, then what `site` does at start-up, now: the virtual environment (its `pyvenv.cfg`,
    read from `sys.executable`'s folder), site-packages and their `.pth` files; and the `PYTHON*` variables that
    matter to a worker (`-I` ignored them at start). A forked worker runs it too: a `.pth` hook may read the job's
    variables (coverage's `COVERAGE_PROCESS_START`)."""
    import site

    os.environ.clear()
    os.environ.update(environment)
    if venv:
        sys.executable = os.path.join(venv, "bin", "python")  # also what the script's subprocesses run
    sys.path[0:0] = [entry for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep) if entry]
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        sys.dont_write_bytecode = True
    if os.environ.get("PYTHONPYCACHEPREFIX") and hasattr(sys, "pycache_prefix"):
        sys.pycache_prefix = os.environ["PYTHONPYCACHEPREFIX"]
    site.main()
    _forget_isolation()


def _forget_isolation() -> None:
    """multiprocessing's spawn and forkserver children are started with this interpreter's flags: without `-I -S`,
    so that they see the environment's packages (they inherit the sandbox anyway)."""
    import multiprocessing.util
    import subprocess

    flags = subprocess._args_from_interpreter_flags  # type: ignore[attr-defined]

    def without_isolation() -> list[str]:
        return [flag for flag in flags() if flag not in ISOLATION_FLAGS]

    subprocess._args_from_interpreter_flags = without_isolation  # type: ignore[attr-defined]
    multiprocessing.util._args_from_interpreter_flags = without_isolation  # type: ignore[attr-defined]


def run_worker(read_fd: int, write_fd: int) -> None:
    from multiprocessing.connection import Connection

    from batchpoint.runtime.protocol import BOOT, receive

    boot, _ = receive(Connection(os.dup(read_fd), writable=False))  # a copy: the worker reads `read_fd` next
    assert boot["kind"] == BOOT, boot["kind"]
    _enter(boot["policy"])
    _activate(boot["environment"], boot["venv"])
    from batchpoint.runtime import worker

    worker.main(read_fd, write_fd)


def run_command(file: str, command: list[str]) -> None:
    with open(file) as handle:
        launch = json.load(handle)
    _enter(launch["policy"])
    os.execve(command[0], command, launch["environment"])


def run_template(socket_fd: int) -> None:
    import select
    import signal
    import socket

    control = socket.socket(fileno=socket_fd)
    first, _ = _template_message(control)
    if first is None:
        return
    assert first["kind"] == "template", first["kind"]
    server_pid = int(first["server_pid"])
    _activate(first["environment"], first["venv"])
    from batchpoint.runtime import worker  # what every forked worker runs: imported once, here
    from batchpoint.runtime.sandbox import confine  # noqa: F401 - how it enters its sandbox (2 ms to import there)

    worker.import_user_modules()  # and EntryScript's module, which each worker would find past all of sys.path

    roots = _site_roots()
    wakeup_read, wakeup_write = os.pipe()
    os.set_blocking(wakeup_write, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wakeup_write)
    spares = _Spares()
    spares.keep(int(first.get("spares", 0)))
    _template_send(control, {"kind": "ready", "imported": []})
    spares.heard()
    while os.getppid() == server_pid:
        readable, _, _ = select.select([control.fileno(), wakeup_read], [], [], spares.seconds_to_next())
        if wakeup_read in readable:
            os.read(wakeup_read, 512)
        _reap(control, spares)
        if control.fileno() not in readable:
            if spares.seconds_to_next() == 0.0:
                spares.add()
            continue
        message, fds = _template_message(control)
        if message is None:
            return
        if message["kind"] == "import":
            spares.discard()  # they lack what it imports now
            _template_send(control, {"kind": "ready", "imported": _import_all(message["modules"], roots)})
        elif message["kind"] == "fork":
            pid = spares.hand_out(message["cwd"], fds) or _fork_worker(message["cwd"], fds)
            spares.workers.add(pid)
            for fd in fds:
                os.close(fd)
            _template_send(control, {"kind": "forked", "pid": pid})
            spares.keep(int(message.get("spares", 0)))
        del message, fds  # nothing of one job's message stays on the stack of the next spare
        spares.heard()


SPARE_QUIET_SECONDS = 0.5
"""How long a template hears nothing before it forks a spare: the server sends a new template its imports in
batches, each of which would discard the spares forked before it."""


class _Spares:
    """Children forked ahead of the next job, each waiting on a socket of its own for a worker's descriptors and
    folder: a worker is then one message away instead of a fork of the whole template (20 ms of its CPU with torch
    imported) after the job asked. Up to `target` (the workers of the job that started the template, then of the
    last that forked one), forked only while no worker forked here is alive (a job's workers have the cores; they
    exit when it ends) and the template is quiet, and discarded when it imports more (they would lack it)."""

    def __init__(self) -> None:
        self.quiet_from = 0.0
        self.target = 0
        self.waiting: list[tuple[int, Any]] = []
        """(pid, the template's end of its socket) of each spare not handed out yet."""
        self.workers: set[int] = set()
        """The workers forked here (from a spare or at once) that have not exited."""

    def seconds_to_next(self) -> float:
        """How long until the next spare is due (0: now); 1 s when none is wanted."""
        if self.workers or len(self.waiting) >= self.target:
            return 1.0
        return max(0.0, self.quiet_from - time.monotonic())

    def heard(self) -> None:
        self.quiet_from = time.monotonic() + SPARE_QUIET_SECONDS

    def add(self) -> None:
        """Fork one more spare; one that cannot be forked now (no process or descriptor left) waits a quiet period."""
        import socket

        template = os.getpid()
        try:
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        except OSError:
            self.heard()
            return
        try:
            pid = _fork_child(lambda: _wait_as_spare(theirs, template))
        except OSError:
            ours.close()
            self.heard()
            return
        finally:
            theirs.close()
        self.waiting.append((pid, ours))

    def keep(self, target: int) -> None:
        """Keep `target` spares from now on: those beyond it are let go."""
        self.target = target
        self._let_go(len(self.waiting) - target)

    def hand_out(self, cwd: str, fds: list[int]) -> int | None:
        """The pid of a spare that goes on as the worker of `fds` in `cwd`; None when there is none."""
        while self.waiting:
            pid, control = self.waiting.pop()
            try:
                alive = os.waitpid(pid, os.WNOHANG) == (0, 0)
                if alive:
                    _template_send(control, {"cwd": cwd}, fds)
            except OSError:
                alive = False
            control.close()
            if alive:
                return pid
        return None

    def discard(self) -> None:
        """Let every waiting spare go (they lack what the template imports now); as many are forked again."""
        self._let_go(len(self.waiting))

    def _let_go(self, count: int) -> None:
        for _ in range(max(0, count)):
            self.waiting.pop()[1].close()  # it reads the end of its socket and exits

    def exited(self, pid: int) -> bool:
        """Whether `pid`, which has exited, was a worker (the server's news) rather than a spare."""
        if pid in self.workers:
            self.workers.discard(pid)
            return True
        for spare in [spare for spare in self.waiting if spare[0] == pid]:  # killed (the OOM killer, say)
            self.waiting.remove(spare)
            spare[1].close()
            self.target = max(0, self.target - 1)  # not forked again at once: the next job's fork asks again
        return False


def _wait_as_spare(control: Any, template: int) -> None:
    """A spare: detached from its template at once, then waits for a worker's descriptors and folder (or the end of
    its socket: it exits) and goes on as that worker."""
    _detach(keep=(control.fileno(),), parent=template)
    message, fds = _template_message(control)
    if message is None:
        os._exit(0)  # discarded: nothing of the template's to run on the way out
    control.close()
    _take_streams(message["cwd"], fds)
    run_worker(fds[0], fds[1])


def _template_message(control: Any) -> tuple[Any, list[int]]:
    """The next message and the descriptors it carries; None when the server closed the socket."""
    import array
    import socket

    fds = array.array("i")
    try:
        data, ancillary, _, _ = control.recvmsg(1 << 20, socket.CMSG_SPACE(8 * fds.itemsize))
    except ConnectionError:
        return None, []
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
    if not data:
        for fd in fds:
            os.close(fd)
        return None, []
    return json.loads(data), list(fds)


def _template_send(control: Any, message: dict[str, Any], fds: Sequence[int] = ()) -> None:
    """One message, with `fds` (SCM_RIGHTS) when there are any."""
    import array
    import socket

    rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
    control.sendmsg([json.dumps(message).encode()], rights)


def _site_roots() -> list[str]:
    """Where the modules a template may import live: the environment's site-packages, never the standard library
    (whose `antigravity` opens a browser) nor any other folder."""
    import site

    return [os.path.realpath(folder) + os.sep for folder in site.getsitepackages()]


def _import_all(names: list[str], roots: list[str]) -> list[str]:
    """Import each of `names` that is a public module of the site-packages `roots` (what a worker said it had
    imported: a hint, checked here); returns those imported."""
    import importlib
    import importlib.util

    imported = []
    for name in names:
        parts = name.split(".")
        if any(not part.isidentifier() or part.startswith("_") for part in parts):
            continue
        try:
            found = importlib.util.find_spec(parts[0])
            origin = found.origin if found is not None else None
            if found is not None and found.submodule_search_locations:
                origin = list(found.submodule_search_locations)[0]
            if origin is None or not any(os.path.realpath(origin).startswith(root) for root in roots):
                continue
            importlib.import_module(name)
        except BaseException as error:  # noqa: BLE001 - a module that fails here is imported by the worker itself
            print(f"template: {name} not imported: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
            continue
        imported.append(name)
    return imported


def _fork_worker(cwd: str, fds: list[int]) -> int:
    """A child that goes on as a started worker: its four descriptors are READ_FD, WRITE_FD, stdout and stderr."""
    template = os.getpid()

    def become_worker() -> None:
        _detach(keep=tuple(fds), parent=template)
        _take_streams(cwd, fds)
        run_worker(fds[0], fds[1])

    return _fork_child(become_worker)


def _fork_child(body: Callable[[], None]) -> int:
    """Fork a child that runs `body` and exits as a started worker would: with its exit code, after `atexit`."""
    import gc

    sys.stdout.flush()
    sys.stderr.flush()
    gc.freeze()  # the child's collections then skip what it inherited: a full one touched every object, 0.3 s
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        body()
        code = 0
    except SystemExit as ended:
        code = ended.code if isinstance(ended.code, int) else (0 if ended.code is None else 1)
        if ended.code is not None and not isinstance(ended.code, int):
            print(ended.code, file=sys.stderr)
    except BaseException:  # noqa: BLE001 - as an uncaught exception ends a started worker
        import traceback

        traceback.print_exc()
    finally:
        import atexit

        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 - a closed stream: nothing left to write
                pass
        os._exit(code)


def _detach(keep: tuple[int, ...], parent: int) -> None:
    """What `subprocess.Popen` does for a started worker, in a forked child: its own session, no descriptor of the
    template's but `keep` and the standard streams, default signal handling; and it dies with its template."""
    import ctypes
    import signal

    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the template died before that
        os._exit(1)
    os.setsid()
    for fd in os.listdir("/proc/self/fd"):
        if int(fd) not in (0, 1, 2, *keep):
            try:
                os.close(int(fd))
            except OSError:
                pass


def _take_streams(cwd: str, fds: list[int]) -> None:
    """A worker's standard streams (nothing to read; its stdout and stderr, `fds[2:]`) and working folder."""
    _, _, stdout, stderr = fds
    null = os.open(os.devnull, os.O_RDONLY)
    for fd, number in ((null, 0), (stdout, 1), (stderr, 2)):
        os.dup2(fd, number)
        if fd > 2:
            os.close(fd)
    os.chdir(cwd)


def _reap(control: Any, spares: _Spares) -> None:
    """Report each worker that has exited (`returncode` as `subprocess` gives it)."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        if not spares.exited(pid):
            continue
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        try:
            _template_send(control, {"kind": "exited", "pid": pid, "returncode": code})
        except OSError:
            pass


def main(argv: list[str]) -> None:
    _load_batchpoint()
    if argv[:1] == ["worker"] and len(argv) == 3:
        run_worker(int(argv[1]), int(argv[2]))
    elif argv[:1] == ["exec"] and len(argv) > 3 and argv[2] == "--":
        run_command(argv[1], argv[3:])
    elif argv[:1] == ["template"] and len(argv) == 2:
        run_template(int(argv[1]))
    else:
        sys.exit("usage: python -I -S boot.py worker READ_FD WRITE_FD | exec FILE -- COMMAND... | template SOCKET_FD")


if __name__ == "__main__":
    main(sys.argv[1:])
