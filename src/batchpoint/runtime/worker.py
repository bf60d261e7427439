"""A worker process: imports the scoring script, calls `init()` once, `run()` per mini-batch, `shutdown()` at the end.

Started by the local executor as `python -m batchpoint.runtime.worker READ_FD WRITE_FD` with its environment
and private working folder already set, and stdout/stderr on the job's log files. It never writes the output
file: formatted rows go back to the coordinator, which commits them.

It runs in the deployment's own interpreter, which may be as old as Python 3.8 (`WORKER_MINIMUM` in
`environments/interpreters.py`): this module and what it imports (`protocol`, the scorers) use the standard library
only and nothing newer than 3.8 at run time (annotations are never evaluated: `from __future__ import annotations`),
and so does the `azureml_user` package it lets scripts import (`user_modules/`).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import faulthandler
import importlib.util
import io
import logging
import os
import signal
import sys
import threading
import time
import traceback
from multiprocessing.connection import Connection
from pathlib import Path
from types import ModuleType
from typing import IO, Any, NoReturn, cast

from batchpoint.runtime.protocol import DONE, ERROR, INIT_FAILED, READY, STOP, receive, send

LOG_LEVELS = {"Info": logging.INFO, "Warning": logging.WARNING, "Debug": logging.DEBUG}
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
EXIT_HANDLERS_SECONDS = 3.0
"""How long a leaving worker lets its exit handlers run (`leave`), well within the executor's grace."""
MAX_REAPING_ROUNDS = 1000
"""A bound on `stop_descendants`' rounds (each kills the worker's children; their own children come next)."""
PARENT_CHECK_SECONDS = 1.0
STACK_DUMP_SIGNAL = signal.SIGUSR1
"""The executor sends it before killing a worker that timed out, to learn where `run()` was stuck."""
USER_MODULES = Path(__file__).with_name("user_modules")
"""What Azure's runtime lets scoring scripts import (`azureml_user.parallel_run`), last on the worker's path."""

_traceback_file: IO[str] | None = None


def main(read_fd: int, write_fd: int) -> None:
    commands, replies = Connection(read_fd, writable=False), Connection(write_fd, readable=False)
    config, _ = receive(commands)
    imports = ImportRecorder.install() if config.get("teach") else None
    die_with_parent(config["parent_pid"])
    capture_tracebacks(config["traceback_file"])
    configure_process(config)
    script = initialize(config, replies, imports)
    serve(script, commands, replies, config["summary_only"], imports)
    call_shutdown(script)
    leave()


def die_with_parent(parent_pid: int) -> None:
    """Make sure this worker cannot outlive the server: an orphan must not keep running the script.

    On Linux the kernel kills us when the parent goes (PR_SET_PDEATHSIG); everywhere, a thread also watches
    `os.getppid()`, and the first check covers a parent that died before the signal was armed. On Linux the worker
    also adopts what its script's processes leave orphaned (PR_SET_CHILD_SUBREAPER): a process the script started in
    a session of its own, or as a daemon, stays its descendant, which `stop_descendants` and the executor stop."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="batchpoint-parent-watch", daemon=True).start()


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(PARENT_CHECK_SECONDS)
    os._exit(1)


def capture_tracebacks(path: str) -> None:
    """Python stacks of a crash (segfault, abort) or of a stack-dump request go to `path` for the executor."""
    global _traceback_file
    _traceback_file = open(path, "w", encoding="utf-8")
    faulthandler.enable(file=_traceback_file, all_threads=True)
    faulthandler.register(STACK_DUMP_SIGNAL, file=_traceback_file, all_threads=True)


def configure_process(config: dict[str, Any]) -> None:
    """Logging at the deployment's level into stdout (line-buffered, so a killed worker's log is complete),
    the driver-style arguments on `sys.argv`, and the code folder importable."""
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)
    logging.basicConfig(level=LOG_LEVELS[config["logging_level"]], format=LOG_FORMAT, stream=sys.stdout)
    sys.argv = list(config["argv"])
    script = Path(config["script"])
    for folder in dict.fromkeys([str(script.parent), config["code_dir"]]):
        if folder:
            sys.path.insert(0, folder)
    configure_entry_script(config)


def configure_entry_script(config: dict[str, Any]) -> None:
    """`azureml_user.parallel_run.EntryScript` for the script: what `config["entry_script"]` says of this process
    (Decision 20)."""
    parallel_run = import_user_modules()
    argv = config["argv"]
    driver = {argv[at].lstrip("-"): argv[at + 1] for at in range(1, len(argv) - 1, 2) if argv[at].startswith("--")}
    parallel_run._configure(**config["entry_script"], logging_level=LOG_LEVELS[config["logging_level"]], config=driver)


def import_user_modules() -> ModuleType:
    """batchpoint's `azureml_user.parallel_run`, found ahead of any other (a stand-in for it in the code folder, as
    Azure's samples give to run scripts locally, lacks what the job's logs need: Decision 20); its folder stays last on
    `sys.path` for the processes the script starts. A warm template imports it for its workers (1.5 ms each)."""
    folder = str(USER_MODULES)
    if folder not in sys.path:
        sys.path.append(folder)
    sys.path.insert(0, folder)
    try:
        from azureml_user import parallel_run  # type: ignore[import-not-found]  # on the path just now
    finally:
        del sys.path[0]
    return cast("ModuleType", parallel_run)


def initialize(config: dict[str, Any], replies: Connection, imports: ImportRecorder | None) -> ModuleType:
    """Import the script and call its `init()`, then say so, with the modules imported until then when the worker
    teaches its template (`imports`); on failure report it and exit (the executor starts another)."""
    try:
        script = load_script(Path(config["script"]))
        init = getattr(script, "init", None)
        if callable(init):
            init()
    except BaseException as error:  # noqa: BLE001 - whatever the script raises (SystemExit too) fails its init
        send(replies, INIT_FAILED, error=user_traceback(error))
        stop_descendants()
        _exit_now(1)
    send(replies, READY, modules=imports.lesson() if imports is not None else [])
    return script


class ImportRecorder:
    """The modules this worker imports, as they are imported (first on `sys.meta_path`, it sees each import and
    leaves it to the next finder): what it teaches a warm template of its environment (`templates.py`).

    Recorded rather than read from `sys.modules`: a worker forked from a template of torch has thousands, and
    touching each name copied a page of the template (17 ms before its first mini-batch)."""

    def __init__(self) -> None:
        self._names: list[str] = []

    @classmethod
    def install(cls) -> ImportRecorder:
        recorder = cls()
        sys.meta_path.insert(0, recorder)  # a finder is anything with find_spec
        return recorder

    def uninstall(self) -> None:
        sys.meta_path.remove(self)

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        self._names.append(name)

    def lesson(self) -> list[str]:
        """The public modules of site-packages imported since the last lesson, in the order of their imports."""
        names, self._names = self._names, []
        return [name for name in dict.fromkeys(names) if _is_public_site_package(name)]


def _is_public_site_package(name: str) -> bool:
    # From the module's namespace: getattr() would call a lazy module's __getattr__, which may import.
    file = (getattr(sys.modules.get(name), "__dict__", None) or {}).get("__file__") or ""
    return ("site-packages" in file or "dist-packages" in file) and not any(
        part.startswith("_") for part in name.split(".")
    )


def load_script(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"The scoring script {path} cannot be imported (it must be a .py file).")
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    if not callable(getattr(module, "run", None)):
        raise AttributeError(f"The scoring script {path} defines no run(mini_batch) function.")
    return module


def serve(
    script: ModuleType, commands: Connection, replies: Connection, summary_only: bool, imports: ImportRecorder | None
) -> None:
    """Run mini-batches until told to stop. A worker that teaches its template (`imports`) lists with its first
    answer the modules it has imported since it was ready: those `run()` imports on its first call (MLflow's and
    scikit-learn's lazy imports, Pillow's image plugins), which the next workers then have."""
    while True:
        try:
            message, _ = receive(commands)
        except EOFError:
            return
        if message["kind"] == STOP:
            return
        run_mini_batch(script, message["index"], message["files"], summary_only, replies, imports)
        if imports is not None:
            imports.uninstall()
            imports = None


def run_mini_batch(
    script: ModuleType,
    index: int,
    files: list[str],
    summary_only: bool,
    replies: Connection,
    imports: ImportRecorder | None = None,
) -> None:
    kind, value, timing = score(script, files, summary_only)
    lesson: dict[str, Any] = {} if imports is None else {"modules": imports.lesson()}
    if kind == DONE:
        returned, rows = value
        send(replies, DONE, rows, index=index, returned=returned, timing=timing, **lesson)
    else:
        send(replies, ERROR, index=index, error=value, timing=timing, **lesson)


def score(script: ModuleType, files: list[str], summary_only: bool) -> tuple[str, Any, dict[str, float]]:
    """Call `run()` and format its result: `(DONE, (returned, rows), timing)` or `(ERROR, error text, timing)`,
    where timing has the fields of `executor.TryTiming` (the whole try, `run()` alone, and this process's CPU)."""
    started, clock, cpu = time.time(), time.monotonic(), time.process_time()

    def timing(run_seconds: float) -> dict[str, float]:
        elapsed = time.monotonic() - clock
        return {"started": started, "elapsed": elapsed, "process_seconds": time.process_time() - cpu,
                "run_seconds": run_seconds}  # fmt: skip

    try:
        result = script.run(files)
    except BaseException as error:  # noqa: BLE001 - the script's failure, whatever it is (SystemExit included)
        return ERROR, user_traceback(error), timing(time.monotonic() - clock)
    run_seconds = time.monotonic() - clock
    try:
        formatted = format_result(result, summary_only)
    except Exception as error:  # noqa: BLE001 - a result that cannot be written fails this try, not the worker
        return ERROR, "".join(traceback.format_exception_only(type(error), error)), timing(run_seconds)
    return DONE, formatted, timing(run_seconds)


def format_result(result: object, summary_only: bool) -> tuple[int, bytes]:
    """Decision 8: a list gives one `str(element)` per line; a DataFrame gives space-delimited rows without
    header or index. Returns the number of rows and, unless summary_only, the encoded rows."""
    if isinstance(result, list):
        return len(result), b"" if summary_only else _encode("".join(_lines(result)))
    if _is_dataframe(result):
        frame: Any = result
        return len(frame), b"" if summary_only else _encode(_space_delimited(frame))
    raise TypeError(f"run() returned {type(result).__name__}; it must return a list or a pandas DataFrame.")


def _lines(rows: list[object]) -> list[str]:
    """`str(row)` and a newline per row, joined without a Python step per row (thousands per mini-batch)."""
    return ["\n".join(map(str, rows)), "\n"] if rows else []


def _space_delimited(frame: Any) -> str:
    try:
        return str(frame.to_csv(sep=" ", header=False, index=False, lineterminator="\n"))
    except TypeError:  # pandas before 1.5 (older Pythons' environments) spells it line_terminator
        return str(frame.to_csv(sep=" ", header=False, index=False, line_terminator="\n"))


def _is_dataframe(result: object) -> bool:
    # A script that returns a DataFrame has imported pandas; the worker itself never imports it.
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(result, pandas.DataFrame)


def _encode(text: str) -> bytes:
    # surrogateescape gives back undecodable bytes of file names unchanged.
    return text.encode("utf-8", "surrogateescape")


def user_traceback(error: BaseException) -> str:
    """The traceback without this module's own frame at the top."""
    tb = error.__traceback__.tb_next if error.__traceback__ else None
    return "".join(traceback.format_exception(type(error), error, tb))


def call_shutdown(script: ModuleType) -> None:
    shutdown = getattr(script, "shutdown", None)
    if not callable(shutdown):
        return
    try:
        shutdown()
    except BaseException:  # noqa: BLE001 - a failing shutdown() is logged; the worker exits anyway
        traceback.print_exc()


def leave() -> NoReturn:
    """End the worker once its script's `shutdown()` has returned: its exit handlers run first (logging's flush, the
    script's own, multiprocessing's, which ends a Pool the script left open: killed first, a Pool worker holding its
    queue's lock hung that handler), for at most `EXIT_HANDLERS_SECONDS` (multiprocessing's joins a Process the
    script left running, which may never end); then what the script left running is killed, and the worker exits
    without waiting for the script's threads (one started in `init()` without `daemon=True` held every job's end
    for the executor's 10 s of grace). A worker forked from a template left without waiting for them already. Files
    the script left open unflushed are not flushed (the interpreter's end is skipped)."""
    try:
        handlers = threading.Thread(target=atexit._run_exitfuncs, name="batchpoint-exit-handlers", daemon=True)
        handlers.start()  # RuntimeError at a task limit (a script that left many threads or processes)
        handlers.join(EXIT_HANDLERS_SECONDS)
    finally:
        stop_descendants()
        _exit_now(0)


def stop_descendants() -> None:
    """Kill what the script started and left running, as the job ends: each child of this worker, round after
    round, since the children of a killed one are this worker's next (it adopts orphans). Without it, a process the
    script started in a session of its own outlived the job (killing the worker's session missed it)."""
    for _ in range(MAX_REAPING_ROUNDS):
        children = children_of("self")
        if not children:
            return
        for pid in children:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        for pid in children:
            with contextlib.suppress(OSError):
                os.waitpid(pid, 0)


def children_of(pid: int | str) -> list[int]:
    """The children of process `pid` ("self": this one; of each of its threads), from /proc, whose only entry the
    sandbox lets a worker read is its own. Empty where there is no /proc, or no such process."""
    pids: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{task}/children") as children:
                pids += [int(child) for child in children.read().split()]
    return pids


def _exit_now(code: int) -> NoReturn:
    """Exit without waiting for threads the script may have started."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
