"""Workers enter their job's sandbox before anything of their environment runs (docs/security.md): a hostile
scoring script (tests/hostile_score.py) reaches nothing of the server's data directory, process or machine, as the
server's own uid without capabilities and as `nobody`, and still scores its own files; everyday scripts (pools of
processes, models behind the links batchpoint made) work as before."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchpoint.runtime import spawn
from batchpoint.runtime.coordinator import run_job
from batchpoint.runtime.ledger import InMemoryLedger
from batchpoint.runtime.local import LocalProcessExecutor
from batchpoint.runtime.sandbox.policy import WorkerSandbox, WorkerUser
from tests.runtime.conftest import Kit, lines
from tests.sandboxing import assert_contained, hostile_job, laid_out, reports

SYSTEM_PYTHON = "/usr/bin/python3"
"""An interpreter `nobody` can run (pyenv's are under /root, 0700, on the CI machine)."""
SCORES = ["f0.txt 1", "f1.txt 2", "f2.txt 3", "f3.txt 4"]
AZURE_LENGTH_JOB_NAME = "batchjob-2c5e3a8f-6d1b-4f0e-9a7c-1b2d3e4f5a6b"  # what an invoke names a job on Azure


def test_a_hostile_script_reaches_nothing_of_the_server_and_scores_its_own_files(tmp_path: Path) -> None:
    targets, code = laid_out(tmp_path)

    outcome = run_job(hostile_job(targets, code), InMemoryLedger(), LocalProcessExecutor())

    assert outcome.status == "Completed", outcome.message
    assert (Path(targets["output"]) / "predictions.csv").read_text() == lines(*SCORES)
    [report] = assert_contained(reports(Path(targets["output"])))
    assert report["uid"] == os.geteuid()


def test_without_the_sandbox_the_same_script_reaches_the_server(tmp_path: Path) -> None:
    """The probes do probe: unsandboxed (`--unsandboxed-workers`), they read the secrets, signal the server..."""
    targets, code = laid_out(tmp_path)

    outcome = run_job(hostile_job(targets, code), InMemoryLedger(), LocalProcessExecutor(sandbox=WorkerSandbox(abi=0)))

    assert outcome.status == "Completed", outcome.message
    [report] = reports(Path(targets["output"]))
    leaked = {name for verdict, name, _ in report["results"] if verdict == "LEAKED"}
    assert {"read the issuer's signing key", "read the SQLite database", "signal the server"} <= leaked
    assert "server variables in the environment" not in leaked  # the environment is a worker's, sandbox or not
    [probes] = Path(targets["output"]).glob("probes-*.json")
    written = Path(f"/tmp/pwned-{probes.stem.split('-')[1]}.txt")  # what it wrote into /tmp: the test's to remove
    assert "write into /tmp" in leaked and written.exists()
    written.unlink()


@pytest.fixture
def traversable(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder `nobody` can cross (pytest's are 0700), holding a copy of batchpoint that workers boot from: the
    checkout may be in a folder `nobody` cannot cross (a clone in /root or in `mktemp -d`), which a server refuses
    at start (`app/sandboxing.py unreachable`) but this test, running the runtime alone, would not."""
    root = Path(tempfile.mkdtemp(prefix="batchpoint-nobody-"))
    os.chmod(root, 0o755)
    package = Path(spawn.__file__).parent.parent
    copy = shutil.copytree(package, root / "batchpoint", ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(spawn, "BOOT_SCRIPT", copy / spawn.BOOT_SCRIPT.relative_to(package))
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs workers as another user")
def test_as_nobody_a_hostile_script_reaches_nothing_and_scores_its_own_files(traversable: Path) -> None:
    targets, code = laid_out(traversable)
    nobody = WorkerSandbox(user=WorkerUser.named("nobody"), read=(str(traversable / "batchpoint"),))

    outcome = run_job(
        hostile_job(targets, code), InMemoryLedger(), LocalProcessExecutor(python=SYSTEM_PYTHON, sandbox=nobody)
    )

    assert outcome.status == "Completed", outcome.message
    assert (Path(targets["output"]) / "predictions.csv").read_text() == lines(*SCORES)
    [report] = assert_contained(reports(Path(targets["output"])))
    assert report["uid"] == nobody.user.uid


def test_process_pools_of_every_start_method_work_inside(kit: Kit) -> None:
    """Spawn and forkserver children start the environment's interpreter without the boot's `-I -S`, run the boot
    file again as `__mp_main__`, and stay in the sandbox. The job has a name as long as Azure's (the forkserver's
    socket goes in the worker's TMPDIR, and a socket's path has at most 107 bytes)."""
    kit.inputs("a.txt")
    kit.script(
        """
        import multiprocessing, os

        def init():
            for method in ("spawn", "forkserver", "fork"):
                with multiprocessing.get_context(method).Pool(2) as pool:
                    assert pool.map(abs, [-1, -2]) == [1, 2], method

        def run(mini_batch):
            return [os.path.basename(path) for path in mini_batch]
        """
    )

    outcome = kit.run(job_id=AZURE_LENGTH_JOB_NAME)

    assert outcome.status == "Completed", outcome.message
    assert kit.predictions() == lines("a.txt")


def test_links_the_server_made_are_followed_and_links_a_user_placed_are_not(kit: Kit) -> None:
    """The model folder batchpoint makes in a job folder links to the registered model; a link in the code folder
    leads nowhere inside the sandbox, whatever it points to."""
    registered = kit.root / "storage" / "model"
    registered.mkdir(parents=True)
    (registered / "weights.txt").write_text("0.5")
    model_dir = kit.root / "jobs" / "job" / "model"
    model_dir.mkdir(parents=True)
    (model_dir / "model").symlink_to(registered)
    (kit.root / "secret.pem").write_text("the key")
    kit.inputs("a.txt")
    kit.script(
        """
        import os

        def run(mini_batch):
            weights = open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model", "weights.txt")).read()
            try:
                secret = open(os.path.join(os.path.dirname(__file__), "secret.pem")).read()
            except PermissionError:
                secret = "refused"
            return [f"{weights} {secret}"]
        """
    )
    (kit.code_dir / "secret.pem").symlink_to(kit.root / "secret.pem")
    sandbox = WorkerSandbox(server_links=(str(kit.root / "jobs"),))

    outcome = run_job(kit.spec(model_dir=model_dir), kit.ledger, LocalProcessExecutor(sandbox=sandbox))

    assert outcome.status == "Completed", outcome.message
    assert kit.predictions() == lines("0.5 refused")
