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

Standard library only, Python 3.8+. Nothing runs when this file is imported: multiprocessing's spawn children run it
again (as `__mp_main__`), inside the sandbox.
"""

from __future__ import annotations

import json
import os
import sys
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
    matter to a worker (`-I` ignored them at start)."""
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


def main(argv: list[str]) -> None:
    _load_batchpoint()
    if argv[:1] == ["worker"] and len(argv) == 3:
        run_worker(int(argv[1]), int(argv[2]))
    elif argv[:1] == ["exec"] and len(argv) > 3 and argv[2] == "--":
        run_command(argv[1], argv[3:])
    else:
        sys.exit("usage: python -I -S boot.py worker READ_FD WRITE_FD | exec FILE -- COMMAND [ARGUMENT...]")


if __name__ == "__main__":
    main(sys.argv[1:])
