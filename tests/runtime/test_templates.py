"""Warm worker templates (runtime/templates.py, Decision 23), with real processes: a worker forked from a template is
sandboxed exactly as a started one (the hostile script reaches nothing, of the server or of the template), sees its
own job's variables only (no job's secret ever enters the template), templates stop with their pool and with their
server, and a template that fails or is not ready leaves the workers to start cold."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from batchpoint.runtime.coordinator import run_job
from batchpoint.runtime.ledger import InMemoryLedger
from batchpoint.runtime.local import LocalProcessExecutor
from batchpoint.runtime.report import JobOutcome
from batchpoint.runtime.spec import JobSpec
from batchpoint.runtime.templates import TemplatePool, template_key
from tests.runtime.conftest import Kit, lines
from tests.sandboxing import assert_contained, hostile_job, laid_out, reports

FORKED = re.compile(r"forked from the template pid (\d+)")
SECRETS = """
    import os

    def run(mini_batch):
        with open("/proc/self/environ", "rb") as handle:
            environ = handle.read()
        secret = os.environ.get('JOB_SECRET')
        return [f"{os.path.basename(path)} {secret} {b'hunter2' in environ}" for path in mini_batch]
"""


@pytest.fixture
def pool() -> Iterator[TemplatePool]:
    pool = TemplatePool()
    yield pool
    pool.close()


def warm(pool: TemplatePool, timeout: float = 60.0) -> int:
    """The pid of the pool's template once it is ready to fork."""
    deadline = time.monotonic() + timeout
    while not (ready := pool.ready()):
        assert time.monotonic() < deadline, "no template became ready"
        time.sleep(0.1)
    [pid] = ready
    return pid


def parents(output: Path) -> list[int]:
    """The templates the job's workers were forked from, one per forked worker (its log says so)."""
    return [int(pid) for pid in FORKED.findall((output / "logs" / "sys" / "node" / "0" / "_main.txt").read_text())]


def job(kit: Kit, name: str, **settings: Any) -> JobSpec:
    return kit.spec(job_id=name, output_dir=kit.root / name, **settings)


def run(spec: JobSpec, pool: TemplatePool) -> JobOutcome:
    outcome = run_job(spec, InMemoryLedger(), LocalProcessExecutor(templates=pool))
    assert outcome.status == "Completed", outcome.message
    return outcome


def test_a_worker_forked_from_a_template_reaches_nothing_as_a_started_one(tmp_path: Path, pool: TemplatePool) -> None:
    """The hostile script in a forked worker: of the server (this process) and of the template (its parent, not
    sandboxed) it reads, signals and writes nothing, and it still scores its files."""
    targets, code = laid_out(tmp_path)
    run(hostile_job(targets, code), pool)  # started cold; teaches the template
    template = warm(pool)

    for name, server in (("server", os.getpid()), ("template", template)):
        output = Path(targets["output"]).parent.parent / name / "score"
        spec = hostile_job({**targets, "output": str(output), "server_pid": server}, code, mini_batch_size=4)
        run(spec, pool)

        assert parents(output) == [template]
        assert (output / "predictions.csv").read_text() == lines("f0.txt 1", "f1.txt 2", "f2.txt 3", "f3.txt 4")
        [report] = assert_contained(reports(output))
        assert report["uid"] == os.geteuid()


def test_a_forked_worker_sees_its_own_job_variables_and_the_template_none(kit: Kit, pool: TemplatePool) -> None:
    kit.inputs("f0.txt", "f1.txt")
    kit.script(SECRETS)
    run(job(kit, "teach"), pool)
    template = warm(pool)

    run(job(kit, "a", job_variables={"JOB_SECRET": "hunter2-a"}), pool)
    warm(pool)
    run(job(kit, "b", job_variables={"JOB_SECRET": "hunter2-b"}), pool)

    for name in ("a", "b"):
        assert parents(kit.root / name) == [template]
        assert (kit.root / name / "predictions.csv").read_text() == lines(
            f"f0.txt hunter2-{name} False", f"f1.txt hunter2-{name} False"
        )
    assert b"hunter2" not in Path(f"/proc/{template}/environ").read_bytes()
    assert memory_holds(template, b"f0.txt") is False  # not even a file name of a job
    assert memory_holds(template, b"boot.py template"), "the memory was not read"
    assert not memory_holds(template, b"hunter2"), "a job's secret reached the template"


def memory_holds(pid: int, needle: bytes) -> bool:
    """Whether any readable memory of `pid` holds `needle` (root reads any process's memory)."""
    found = False
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb") as memory:
        for line in maps:
            addresses, permissions = line.split()[:2]
            if not permissions.startswith("r"):
                continue
            start, end = (int(address, 16) for address in addresses.split("-"))
            try:
                memory.seek(start)
                found = found or needle in memory.read(end - start)
            except (OSError, ValueError, OverflowError):
                continue
    return found


def test_templates_stop_with_their_pool(kit: Kit, pool: TemplatePool) -> None:
    kit.inputs("f0.txt")
    kit.script(SECRETS)
    run(job(kit, "teach"), pool)
    template = warm(pool)

    pool.close()

    assert gone(template, 5.0)
    assert not pool.pids()


SERVER = """
    import sys, time, os
    from pathlib import Path
    from batchpoint.runtime.coordinator import run_job
    from batchpoint.runtime.ledger import InMemoryLedger
    from batchpoint.runtime.local import LocalProcessExecutor
    from batchpoint.runtime.spec import JobSpec
    from batchpoint.runtime.templates import TemplatePool

    root = Path(sys.argv[1])
    pool = TemplatePool()
    spec = JobSpec(job_id="j", input_paths=[root / "in"], output_dir=root / "out", code_dir=root / "code",
                   scoring_script="score.py")
    run_job(spec, InMemoryLedger(), LocalProcessExecutor(templates=pool))
    while not pool.ready():
        time.sleep(0.1)
    print(pool.ready()[0], flush=True)
    os._exit(0)  # no close(): a server killed
"""


def test_a_template_exits_when_its_server_has_gone(kit: Kit) -> None:
    kit.inputs("f0.txt")
    kit.script(SECRETS)
    server = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SERVER), str(kit.root)], capture_output=True, text=True, timeout=120
    )
    assert server.returncode == 0, server.stderr

    assert gone(int(server.stdout.split()[-1]), 5.0)


def gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return not Path(f"/proc/{pid}").exists()


def test_after_its_template_was_killed_a_job_starts_its_workers_cold(kit: Kit, pool: TemplatePool) -> None:
    kit.inputs("f0.txt", "f1.txt")
    kit.script(SECRETS)
    run(job(kit, "teach"), pool)
    template = warm(pool)
    os.kill(template, signal.SIGKILL)
    assert gone(template, 5.0)

    run(job(kit, "after", job_variables={"JOB_SECRET": "hunter2-x"}), pool)

    assert parents(kit.root / "after") == []
    assert (kit.root / "after" / "predictions.csv").read_text() == lines(
        "f0.txt hunter2-x False", "f1.txt hunter2-x False"
    )


def test_a_template_not_ready_in_time_is_stopped_and_the_workers_start_cold(kit: Kit) -> None:
    pool = TemplatePool(ready_seconds=0.001)
    try:
        kit.inputs("f0.txt", "f1.txt", "f2.txt")
        kit.script(SECRETS)
        for name in ("first", "second", "third"):
            run(job(kit, name, mini_batch_size=1), pool)
            assert parents(kit.root / name) == []
        assert pool.ready() == []
        deadline = time.monotonic() + 5.0
        while pool.pids() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pool.pids() == []
    finally:
        pool.close()


def test_only_jobs_of_the_servers_own_environment_without_interpreter_variables_get_a_template() -> None:
    server = Path(sys.executable)

    assert template_key(server, 0, {"OMP_NUM_THREADS": "1", "TOKEN": "x"}) is not None
    assert template_key(server, 0, {"OMP_NUM_THREADS": "1"}) != template_key(server, 0, {"OMP_NUM_THREADS": "2"})
    assert template_key(server, 0, {"PYTHONPATH": "/code"}) is None
    assert template_key(server, 0, {"LD_PRELOAD": "/x.so"}) is None
    assert template_key(Path("/usr/bin/python3"), 0, {}) is None


def test_what_run_imports_on_its_first_call_is_imported_by_the_template_for_the_next_workers(
    kit: Kit, pool: TemplatePool
) -> None:
    kit.inputs("f0.txt")
    kit.script("""
        import os
        import sys

        def run(mini_batch):
            had = "idna" in sys.modules
            import idna  # a public module of the server's site-packages that nothing imports before run()
            return [f"{os.path.basename(path)} {had}" for path in mini_batch]
    """)
    run(job(kit, "teach"), pool)
    assert (kit.root / "teach" / "predictions.csv").read_text() == lines("f0.txt False")
    template = warm(pool)

    run(job(kit, "taught"), pool)

    assert parents(kit.root / "taught") == [template]
    assert (kit.root / "taught" / "predictions.csv").read_text() == lines("f0.txt True")


class RecordingPool(TemplatePool):
    """A pool that keeps what each worker listed."""

    def __init__(self) -> None:
        super().__init__()
        self.lessons: list[list[str]] = []

    def learn(self, key: Any, modules: Iterable[str], environment: Any, workers: int) -> None:
        self.lessons.append(list(modules))
        super().learn(key, modules, environment, workers)


def test_a_forked_worker_lists_only_what_its_template_lacks(kit: Kit) -> None:
    """Listing the thousands of modules a template of torch has cost a forked worker 17 ms before its first
    mini-batch; it lists only those it imported itself."""
    kit.inputs("f0.txt")
    kit.script("""
        import os

        def run(mini_batch):
            import idna  # a public module of the server's site-packages that nothing imports before run()
            return [os.path.basename(path) for path in mini_batch]
    """)
    pool = RecordingPool()
    try:
        run(job(kit, "teach"), pool)
        assert any("idna" in lesson for lesson in pool.lessons), "the cold worker taught what run() imported"
        warm(pool)
        pool.lessons.clear()

        run(job(kit, "taught"), pool)
    finally:
        pool.close()
    assert pool.lessons and not any(pool.lessons), f"a forked worker listed its template's modules: {pool.lessons}"


WORKER_PID = re.compile(r"\(pid (\d+), forked from the template pid \d+")
LAZY = """
    import os
    import sys

    def run(mini_batch):
        had = "idna" in sys.modules
        if os.environ.get("IMPORT_IDNA"):
            import idna  # a public module of the server's site-packages that nothing imports before run()
        return [f"{os.path.basename(path)} {had}" for path in mini_batch]
"""


def test_a_template_keeps_spare_workers_forked_for_the_next_job_and_none_that_lacks_what_it_imported_since(
    kit: Kit, pool: TemplatePool
) -> None:
    """Once a job's workers have exited, its template forks as many spares for the next job, which takes them (no
    fork of the whole template after it asked); a spare killed while it waits is forgotten; a spare forked before
    the template imported more is not handed out; spares stop with their template."""
    kit.inputs("f0.txt", "f1.txt")
    kit.script(LAZY)
    two = {"mini_batch_size": 1, "max_concurrency_per_instance": 2}
    run(job(kit, "teach", **two), pool)
    template = warm(pool)
    run(job(kit, "pair", **two), pool)
    spares = children(template, 2)
    killed = spares.pop()
    os.kill(killed, signal.SIGKILL)  # as the OOM killer may: the template forgets it and is still ready
    assert gone(killed, 5.0)

    one = {"mini_batch_size": 1, "max_concurrency_per_instance": 1}
    run(job(kit, "lazy", job_variables={"IMPORT_IDNA": "1"}, **one), pool)
    [lazy] = worker_pids(kit.root / "lazy")
    assert lazy in spares
    assert warm(pool) == template  # it imported idna, which the lazy worker taught it
    run(job(kit, "after", **one), pool)

    assert (kit.root / "after" / "predictions.csv").read_text() == lines("f0.txt True", "f1.txt True")
    assert not set(worker_pids(kit.root / "after")) & spares, "a spare that lacks idna was handed out"
    left = children(template, 1)
    pool.close()
    assert all(gone(pid, 5.0) for pid in left)


def worker_pids(output: Path) -> list[int]:
    return [int(pid) for pid in WORKER_PID.findall((output / "logs" / "sys" / "node" / "0" / "_main.txt").read_text())]


def children(pid: int, count: int, timeout: float = 10.0) -> set[int]:
    """The pids of `pid`'s children once it has `count` of them."""
    deadline = time.monotonic() + timeout
    while len(found := {child.pid for child in psutil.Process(pid).children()}) != count:
        assert time.monotonic() < deadline, f"the template has {len(found)} children, not {count}"
        time.sleep(0.05)
    return found
