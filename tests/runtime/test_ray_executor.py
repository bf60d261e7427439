"""The Ray executor on a real three-node Ray cluster on this machine (two cores: each node declares two logical
CPUs, the workers use one each), shared with tests/sdk/test_ray_compute.py."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("ray")
from ray.cluster_utils import Cluster

from batchpoint.runtime.coordinator import run_job
from batchpoint.runtime.executor import ExecutorUnavailableError
from batchpoint.runtime.ledger import SUCCEEDED, InMemoryLedger
from batchpoint.runtime.local import LocalProcessExecutor
from batchpoint.runtime.ray_executor import RayExecutor, runtime_env
from tests.conftest import RAY_NODE
from tests.runtime.conftest import ECHO, Kit, ray_nodes

SLOW_ECHO = """
    import os
    import time

    def init():
        global started
        started = time.time()
        print("init on", os.getpid())

    def run(mini_batch):
        time.sleep(0.1)
        return [os.path.basename(path) + " " + open(path).read() for path in mini_batch]
"""


def test_an_unreachable_cluster_fails_fast_with_its_address(kit: Kit) -> None:
    kit.inputs("a.txt")
    kit.script(ECHO)
    started = time.monotonic()
    with pytest.raises(ExecutorUnavailableError, match="127.0.0.1:9"):
        run_job(kit.spec(), kit.ledger, RayExecutor("127.0.0.1:9"))
    assert time.monotonic() - started < 30


def worker_nodes(kit: Kit) -> set[str]:
    """The nodes the job's workers ran on, as its worker logs name them."""
    return ray_nodes(kit.output_dir / "logs")


def test_two_nodes_with_two_workers_each_give_the_local_executors_output(ray_cluster: Cluster, tmp_path: Path) -> None:
    local, remote = Kit(tmp_path / "local"), Kit(tmp_path / "ray")
    for kit in (local, remote):
        kit.root.mkdir()
        kit.inputs(*[f"f{index:05d}.txt" for index in range(2000)])
        kit.script(ECHO)
    settings = {"instance_count": 2, "max_concurrency_per_instance": 2, "mini_batch_size": 10}

    on_local = run_job(local.spec(**settings), local.ledger, LocalProcessExecutor())
    on_ray = run_job(remote.spec(**settings), remote.ledger, RayExecutor(ray_cluster.address))

    assert on_local.status == on_ray.status == "Completed", on_ray.message
    assert remote.predictions() == local.predictions()
    assert len(remote.predictions().splitlines()) == 2000
    assert len(worker_nodes(remote)) == 2


def test_a_node_lost_mid_job_loses_and_repeats_no_row_and_spends_no_retry(ray_cluster: Cluster, kit: Kit) -> None:
    kit.inputs(*[f"f{index:05d}.txt" for index in range(600)])
    kit.script(SLOW_ECHO)
    spec = kit.spec(instance_count=2, max_concurrency_per_instance=2, mini_batch_size=5, max_retries=0)
    killed: list[str] = []

    def kill_a_busy_node() -> None:
        log = kit.output_dir / "logs" / "user" / "stdout"
        while not killed:
            time.sleep(0.2)
            busy = worker_nodes(kit) if log.exists() else set()
            victims = [node for node in ray_cluster.worker_nodes if node.node_id[:8] + ")" in busy]
            if victims and len(kit.ledger.mini_batches("job") or []) and _done(kit.ledger) > 10:
                ray_cluster.remove_node(victims[0], allow_graceful=False)
                killed.append(victims[0].node_id)

    killer = threading.Thread(target=kill_a_busy_node, daemon=True)
    killer.start()
    outcome = run_job(spec, kit.ledger, RayExecutor(ray_cluster.address))
    killer.join(timeout=5)

    assert killed, f"the job ended before a node could be killed (nodes {worker_nodes(kit)}, done {_done(kit.ledger)})"
    assert outcome.status == "Completed", outcome.message
    assert kit.predictions() == "".join(f"f{index:05d}.txt f{index:05d}\n" for index in range(600))
    assert set(kit.tries()) == {1}
    assert "was lost" in (kit.output_dir / "logs" / "user_logs" / "std_log.txt").read_text()
    ray_cluster.add_node(**RAY_NODE)  # back to three nodes for the tests (and the module) that follow
    ray_cluster.wait_for_nodes()


def _done(ledger: InMemoryLedger) -> int:
    return sum(1 for batch in ledger.mini_batches("job") or [] if batch.status == SUCCEEDED)


def test_an_init_that_fails_everywhere_fails_the_job_with_its_traceback(ray_cluster: Cluster, kit: Kit) -> None:
    kit.inputs("a.txt", "b.txt")
    kit.script("""
        def init():
            raise RuntimeError("no model here")

        def run(mini_batch):
            return mini_batch
    """)
    outcome = run_job(kit.spec(max_retries=1), kit.ledger, RayExecutor(ray_cluster.address))
    assert outcome.status == "Failed"
    assert "RuntimeError: no model here" in outcome.message
    assert set(kit.tries()) == {0}


def test_the_nodes_install_requirements_with_the_servers_installer() -> None:
    assert runtime_env([], "uv") is None
    assert runtime_env(["six"], "pip") == {"pip": {"packages": ["six"]}}
    assert runtime_env(["six"], "uv") == {"uv": {"packages": ["six"], "uv_pip_install_options": []}}


def test_the_environments_requirements_are_installed_on_the_nodes(ray_cluster: Cluster, kit: Kit) -> None:
    kit.inputs("a.txt", "b.txt", "c.txt")
    kit.script("""
        import os
        import six

        def run(mini_batch):
            return [f"{os.path.basename(path)} six {six.__version__}" for path in mini_batch]
    """)
    outcome = run_job(kit.spec(), kit.ledger, RayExecutor(ray_cluster.address, requirements=("six",), installer="uv"))
    assert outcome.status == "Completed", outcome.message
    assert kit.predictions().splitlines()[0].startswith("a.txt six 1.")
