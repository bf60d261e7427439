"""The Ray executor on a real three-node Ray cluster on this machine (two cores: each node declares two logical
CPUs, the workers use one each), shared with tests/sdk/test_ray_compute.py."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
import pytest

pytest.importorskip("ray")
import ray
from ray._private import ray_constants
from ray._private.node import Node
from ray.cluster_utils import Cluster
from ray.exceptions import ObjectLostError, OutOfDiskError

from batchpoint.cluster.faults import describe, is_transient
from batchpoint.runtime import ray_executor
from batchpoint.runtime.coordinator import run_job
from batchpoint.runtime.environments.interpreters import PythonNotFound
from batchpoint.runtime.environments.spec import EnvironmentSpec
from batchpoint.runtime.executor import (
    ExecutorUnavailableError,
    Task,
    TaskDone,
    TaskEvent,
    TaskFailed,
    TaskResult,
    TaskReturned,
    TaskStarted,
    TransientFault,
)
from batchpoint.runtime.layout import STREAM_LOG
from batchpoint.runtime.ledger import SUCCEEDED, InMemoryLedger
from batchpoint.runtime.local import LocalProcessExecutor
from batchpoint.runtime.ray_executor import ActorFailedError, NodeUnavailableError, RayExecutor, ScoringActor
from tests.azurite import ACCOUNT, KEY, Azurite, azurite  # noqa: F401 - azurite is a fixture
from tests.cluster.replicas import wait_until
from tests.conftest import RAY_NODE
from tests.pythons import PYTHONS
from tests.runtime.conftest import (
    ECHO,
    REPORTS_ITS_GPU,
    USES_ENTRY_SCRIPT,
    WRITES_INTO_ITS_PIPE,
    Kit,
    bad_reply_variables,
    check_entry_script_logs,
    committed_before_shutdown_ended,
    lines,
    ray_nodes,
)
from tests.sandboxing import PROBES, RAY_PROBES, assert_contained, hostile_job, laid_out, printed_reports

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


JOIN_AT_ONCE = """
import sys
import threading
from batchpoint.runtime.ray_executor import connect

errors = []

def join():
    try:
        connect(sys.argv[1])
    except BaseException as error:
        errors.append(repr(error))

threads = [threading.Thread(target=join) for _ in range(3)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(errors)
"""


def test_jobs_starting_at_once_in_a_fresh_server_process_all_join_the_cluster(ray_cluster: Cluster) -> None:
    """The first Ray jobs of a server process start on threads of their own: each joins (one `ray.init`)."""
    joined = subprocess.run(
        [sys.executable, "-c", JOIN_AT_ONCE, ray_cluster.address], capture_output=True, text=True, timeout=120
    )
    assert joined.returncode == 0, joined.stderr
    assert joined.stdout.strip().splitlines()[-1] == "[]", joined.stdout


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


def test_entry_script_logs_of_a_node_land_in_the_jobs_entry_script_log(ray_cluster: Cluster, kit: Kit) -> None:
    kit.inputs("a.txt", "b.txt", "c.txt")
    kit.script(USES_ENTRY_SCRIPT)

    outcome = run_job(kit.spec(mini_batch_size=1), kit.ledger, RayExecutor(ray_cluster.address))

    assert outcome.status == "Completed", outcome.message
    assert kit.predictions() == lines(*["True True 1"] * 3)
    check_entry_script_logs(kit.output_dir / "logs", 3)


def test_the_output_is_in_place_before_the_actors_shut_down(ray_cluster: Cluster, kit: Kit) -> None:
    executor = RayExecutor(ray_cluster.address, sandbox=kit.sandbox())
    assert committed_before_shutdown_ended(kit, executor) == [True, True]


def test_actors_of_a_gpu_job_each_use_the_gpu_ray_gives_them(ray_cluster: Cluster, kit: Kit) -> None:
    kit.inputs(*[f"f{index}.txt" for index in range(6)])
    kit.script(REPORTS_ITS_GPU)
    gpu_node = ray_cluster.add_node(num_cpus=2, num_gpus=2)  # the only node that declares GPUs
    try:
        spec = kit.spec(mini_batch_size=1, max_concurrency_per_instance=2)
        outcome = run_job(spec, kit.ledger, RayExecutor(ray_cluster.address, gpus_per_worker=1))
    finally:
        ray_cluster.remove_node(gpu_node)

    assert outcome.status == "Completed", outcome.message
    rows = [line.split() for line in (kit.predictions() or "").splitlines()]
    gpu_of = {pid: gpu for _, pid, gpu, _ in rows}
    assert len(gpu_of) == 2 and sorted(gpu_of.values()) == ["0", "1"]
    assert {count for *_, count in rows} == {"2"}


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


WAITS_IN_RUN = """
    import os
    import time

    def run(mini_batch):
        for path in mini_batch:
            if os.path.basename(path).startswith("wait"):
                with open(os.path.join(os.environ["MARKERS"], os.path.basename(path)), "w") as marker:
                    marker.write(str(os.getpid()))
                time.sleep(300)
        return [os.path.basename(path) for path in mini_batch]
"""


def test_a_worker_killed_just_before_its_nodes_raylet_is_lost_with_the_node_and_costs_no_try(
    ray_cluster: Cluster, kit: Kit
) -> None:
    """A node going away takes its processes together, in no set order, and its actor may outlive its worker by
    a moment and answer (a soak saw Ray's worker process kill its children as the raylet died, then answer that
    its worker was killed by SIGKILL, which spent a try). Here the worker is killed first and its node 0.3 s
    later: the try comes back lost, which costs none, whether the actor answers or dies first."""
    kit.inputs("warm0.txt", "warm1.txt", "wait0.txt", "wait1.txt")
    kit.script(WAITS_IN_RUN)
    executor = RayExecutor(ray_cluster.address, sandbox=kit.sandbox())
    # two of the three nodes (spread): one at least is not the head
    executor.start(kit.spec(instance_count=2, max_concurrency_per_instance=1, mini_batch_size=1, timeout_seconds=600))
    victim: Node | None = None
    try:
        for index in range(2):  # each actor answers once: it is known to have started, as mid-job
            executor.submit(Task(index, (str(kit.input_dir / f"warm{index}.txt"),)))
        warmed = _results(executor, 2)
        assert [result.index for result in warmed if isinstance(result, TaskDone)] == [0, 1], warmed
        for index in range(2):
            executor.submit(Task(2 + index, (str(kit.input_dir / f"wait{index}.txt"),)))
        index, worker, victim = _a_worker_on_a_worker_node(ray_cluster, kit)
        os.kill(worker, signal.SIGKILL)
        time.sleep(0.3)
        ray_cluster.remove_node(victim, allow_graceful=False)
        results = _results(executor, 1)
    finally:
        executor.stop(graceful=False)
        if victim is not None:
            ray_cluster.add_node(**RAY_NODE)  # back to three nodes for the tests that follow
            ray_cluster.wait_for_nodes()

    [lost] = results
    assert isinstance(lost, TaskFailed) and (lost.index, lost.kind) == (index, "lost"), lost
    assert "was lost" in lost.error


def _results(executor: RayExecutor, count: int) -> list[TaskResult]:
    """The next `count` results of `executor`'s tries (within 60 s), by mini-batch."""
    results = [event for event in _events(executor, count) if isinstance(event, TaskDone | TaskFailed)]
    return sorted(results, key=lambda result: result.index)


def _a_worker_on_a_worker_node(ray_cluster: Cluster, kit: Kit) -> tuple[int, int, Node]:
    """A `wait` mini-batch running on a node the test may remove (not the head): its index, its worker's pid and
    the node. A worker's parent is its actor, whose parent is its node's raylet."""
    raylets = {node.all_processes[ray_constants.PROCESS_TYPE_RAYLET][0].process.pid: node
               for node in ray_cluster.worker_nodes}  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for index in range(2):
            marker = kit.markers / f"wait{index}.txt"
            pid = marker.read_text().strip() if marker.exists() else ""
            if pid.isdigit():
                actor = psutil.Process(int(pid)).parent()
                if actor is not None and actor.ppid() in raylets:
                    return 2 + index, int(pid), raylets[actor.ppid()]
        time.sleep(0.2)
    raise AssertionError("no mini-batch started on a worker node within 120 s")


WAITS_IN_INIT = """
    import os
    import time

    def init():
        with open(os.path.join(os.environ["MARKERS"], "init.txt"), "w") as marker:
            marker.write(str(os.getpid()))
        time.sleep(300)

    def run(mini_batch):
        return [os.path.basename(path) for path in mini_batch]
"""


def test_a_node_lost_during_init_loses_the_try_and_counts_no_init_failure(ray_cluster: Cluster, kit: Kit) -> None:
    """An actor whose node goes away during the script's `init()` is lost with the node, as during a mini-batch:
    its try comes back `lost` and its slot keeps its init tries (here one: before, the loss counted as a failed
    `init()` and gave the slot up). Ray answers such a try that the actor died with its node or, before it has
    declared the node dead, that the actor is unavailable. The node is the only one with a GPU, so that the job's
    one actor starts there."""
    kit.inputs("a.txt")
    kit.script(WAITS_IN_INIT)
    node = ray_cluster.add_node(**RAY_NODE, num_gpus=1)
    executor = RayExecutor(ray_cluster.address, sandbox=kit.sandbox(), gpus_per_worker=1)
    executor.start(kit.spec(max_retries=0))  # one node, one actor, one init try
    try:
        executor.submit(Task(0, (str(kit.input_dir / "a.txt"),)))
        marker = kit.markers / "init.txt"
        deadline = time.monotonic() + 120
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert marker.exists(), "init() did not start within 120 s"
        ray_cluster.remove_node(node, allow_graceful=False)
        results = _results(executor, 1)
        usable = executor.idle_slots()
    finally:
        executor.stop(graceful=False)
        if node in ray_cluster.worker_nodes:
            ray_cluster.remove_node(node)

    [lost] = results
    assert isinstance(lost, TaskFailed) and lost.kind == "lost", lost
    assert usable == 1


KILLED_ON_BOOM = """
    import os
    import signal

    def run(mini_batch):
        if any(os.path.basename(path) == "boom.txt" for path in mini_batch):
            os.kill(os.getpid(), signal.SIGKILL)  # as the out-of-memory killer does
        return [os.path.basename(path) for path in mini_batch]
"""


def test_a_worker_killed_by_sigkill_on_a_node_that_stays_spends_its_try(ray_cluster: Cluster, kit: Kit) -> None:
    """The out-of-memory killer's SIGKILL, its node's raylet alive: the try is spent (PROCESS_EXITED), as
    locally, and is not taken for a try lost with its node."""
    kit.inputs("a.txt", "boom.txt")
    kit.script(KILLED_ON_BOOM)

    outcome = run_job(kit.spec(mini_batch_size=1, max_retries=1), kit.ledger, RayExecutor(ray_cluster.address))

    kit.check(outcome, "Completed", 1, [1, 2], lines("a.txt"))
    assert "PROCESS_EXITED" in kit.log("job_error.txt")
    assert "was killed by signal SIGKILL" in kit.log("job_error.txt")
    assert "was lost" not in kit.log("user_logs/std_log.txt")


def test_an_answer_that_came_before_its_actor_died_counts(ray_cluster: Cluster, kit: Kit) -> None:
    """The actor says where it runs with its `start` answer, so nothing is asked of it after its first mini-batch:
    an answer already given counts even when the actor dies right after it (it used to be lost and run again)."""
    kit.inputs("a.txt")
    kit.script(ECHO)
    executor = RayExecutor(ray_cluster.address)
    executor.start(kit.spec(instance_count=1, max_concurrency_per_instance=1))
    try:
        executor.submit(Task(0, (str(kit.input_dir / "a.txt"),)))
        slot = executor._slots[0]  # test-only: the one worker's actor and its try
        ray.wait([slot.ref], timeout=60)
        ray.kill(slot.actor)
        results = _results(executor, 1)
    finally:
        executor.stop(graceful=False)

    assert [(type(result), result.index) for result in results] == [(TaskDone, 0)]


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
    started = kit.log("sys/node/0/_main.txt")
    assert "process000 started (pid " in started and "Ray node" in started  # where the failing worker ran


def test_the_environments_requirements_are_installed_on_the_nodes(ray_cluster: Cluster, kit: Kit) -> None:
    kit.inputs("a.txt", "b.txt", "c.txt")
    kit.script("""
        import os
        import six

        def run(mini_batch):
            return [f"{os.path.basename(path)} six {six.__version__}" for path in mini_batch]
    """)
    environment = EnvironmentSpec(("six",), source="a test")
    outcome = run_job(kit.spec(), kit.ledger, RayExecutor(ray_cluster.address, environment, installer="uv"))
    assert outcome.status == "Completed", outcome.message
    assert kit.predictions().splitlines()[0].startswith("a.txt six 1.")


REPORTS_ITS_PYTHON = """
    import os, sys

    def init():
        print("init on", sys.version_info[:2])

    def run(mini_batch):
        return ["%d.%d %s" % (sys.version_info[0], sys.version_info[1], os.path.basename(p)) for p in mini_batch]
"""


def test_an_environment_pinning_python_3_8_runs_its_workers_on_python_3_8(ray_cluster: Cluster, kit: Kit) -> None:
    try:
        PYTHONS.choose("3.8")
    except PythonNotFound:
        pytest.skip("no Python 3.8 on this machine")
    kit.inputs("a.txt", "b.txt", "c.txt", "d.txt")
    kit.script(REPORTS_ITS_PYTHON)
    environment = EnvironmentSpec((), "3.8", source="environment 'py38'")

    outcome = run_job(kit.spec(instance_count=2), kit.ledger, RayExecutor(ray_cluster.address, environment))

    assert outcome.status == "Completed", outcome.message
    assert kit.predictions() == lines("3.8 a.txt", "3.8 b.txt", "3.8 c.txt", "3.8 d.txt")
    assert "init on (3, 8)" in kit.log("user/stdout/0/process000.stdout.txt")
    assert len(worker_nodes(kit)) == 2


def test_a_node_without_the_python_asked_for_fails_the_job_at_once(ray_cluster: Cluster, kit: Kit) -> None:
    kit.inputs("a.txt")
    kit.script(ECHO)
    environment = EnvironmentSpec((), "3.5", source="environment 'ancient'")
    started = time.monotonic()
    with pytest.raises(NodeUnavailableError) as failure:
        run_job(kit.spec(max_retries=3), kit.ledger, RayExecutor(ray_cluster.address, environment))
    assert time.monotonic() - started < 30
    message = str(failure.value)
    assert message.startswith("The Ray node ") and "has no Python 3.5, which the environment asks for" in message
    assert "environment 'ancient'" in message and "it has 3.11" in message


REPORTS_SIZES = """
    import os

    def run(mini_batch):
        return [os.path.basename(path) + " " + str(os.path.getsize(path)) for path in mini_batch]
"""
FILE_BYTES = 8192


def sized_rows(count: int) -> str:
    return lines(*(f"f{index:05d}.bin {FILE_BYTES}" for index in range(count)))


def check_transfer(executor: RayExecutor, kit: Kit, files: int) -> None:
    """What passed through the coordinator (names, rows, logs, the actors' settings, the code) stays under 1% of
    the input, and the job's log says how much it was."""
    moved = executor.transfer.to_nodes + executor.transfer.from_nodes
    assert moved < 0.01 * files * FILE_BYTES, executor.transfer
    assert f"Coordinator transfer: {executor.transfer.to_nodes:,} bytes to the nodes" in kit.log(STREAM_LOG)


IN_PLACE = """
    import os

    def run(mini_batch):
        return [os.path.relpath(path, os.environ["INPUTS"]) + " " + str(os.path.getsize(path)) for path in mini_batch]
"""


def test_a_2000_file_job_on_a_shared_path_moves_under_1_percent_of_its_input_through_the_coordinator(
    ray_cluster: Cluster, kit: Kit
) -> None:
    """The three nodes read the files and the code in place (run() gets the input files themselves); the
    coordinator sends the files' names and gets the rows back."""
    kit.input_dir.mkdir()
    for index in range(2000):
        (kit.input_dir / f"f{index:05d}.bin").write_bytes(bytes([index % 251]) * FILE_BYTES)
    kit.script(IN_PLACE)
    executor = RayExecutor(ray_cluster.address, shared_paths=[kit.root])
    spec = kit.spec(instance_count=3, mini_batch_size=20, environment_variables={"INPUTS": str(kit.input_dir)})

    outcome = run_job(spec, kit.ledger, executor)

    assert outcome.status == "Completed", outcome.message
    assert kit.predictions() == sized_rows(2000)
    assert len(worker_nodes(kit)) == 3
    assert f"the nodes read them in place under the shared path {kit.input_dir}" in kit.log(STREAM_LOG)
    check_transfer(executor, kit, 2000)


def test_the_nodes_read_a_blob_input_themselves(ray_cluster: Cluster, azurite: Azurite, kit: Kit) -> None:
    """The coordinator lists the container and sends file names; each node downloads its mini-batches' blobs,
    and nothing is copied to the coordinator's disk."""
    import adlfs

    container = f"c{uuid.uuid4().hex}"
    connection = (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
        f"BlobEndpoint=http://{azurite.endpoint}/{ACCOUNT};"
    )
    options = {"account_name": ACCOUNT, "connection_string": connection}
    blobs = adlfs.AzureBlobFileSystem(**options)
    blobs.mkdir(container)
    blobs.pipe({f"{container}/in/f{index:05d}.bin": bytes([index % 251]) * FILE_BYTES for index in range(200)})
    blobs.pipe({f"{container}/in/.hidden": b"skipped"})
    kit.script(REPORTS_SIZES)
    remote = {"uri": "azureml://datastores/blobs/paths/in", "protocol": "abfs", "path": f"{container}/in",
              "storage_options": options}  # fmt: skip
    spec = kit.spec(input_paths=[kit.root / "copy"], remote_input=remote, instance_count=2, mini_batch_size=20)
    executor = RayExecutor(ray_cluster.address)

    outcome = run_job(spec, kit.ledger, executor)

    assert outcome.status == "Completed", outcome.message
    assert kit.predictions() == sized_rows(200)
    assert not (kit.root / "copy").exists()
    assert f"Inputs: the nodes read them from {remote['uri']}." in kit.log(STREAM_LOG)
    check_transfer(executor, kit, 200)


def test_a_hostile_script_on_a_node_reaches_nothing_of_the_server_nor_of_the_cluster(
    ray_cluster: Cluster, tmp_path: Path
) -> None:
    """The worker an actor runs is sandboxed on its node too, and the cluster is out of its reach: Ray's sockets
    are hidden, its GCS port is not among the ports it may connect to, its logs are not readable."""
    targets, code = laid_out(tmp_path)
    node = ray_cluster.head_node  # the nodes on this machine share its session folder
    targets |= {
        "server_pid": os.getpid(),  # the coordinator: the "server" on this machine
        "ray_sockets": [str(path) for path in Path(node.get_sockets_dir_path()).iterdir()],
        "gcs_address": ray_cluster.address,
        "ray_logs": str(Path(node.get_session_dir_path()) / "logs"),
    }
    assert targets["ray_sockets"], "the nodes' sockets (raylets', object stores') are there to probe"
    spec = hostile_job(targets, code, mini_batch_size=4)

    outcome = run_job(spec, InMemoryLedger(), RayExecutor(ray_cluster.address))

    assert outcome.status == "Completed", outcome.message
    assert (Path(targets["output"]) / "predictions.csv").read_text() == lines(
        "f0.txt 1", "f1.txt 2", "f2.txt 3", "f3.txt 4"
    )
    [report] = assert_contained(printed_reports(Path(targets["output"]) / "logs"), probes=PROBES + RAY_PROBES)
    assert report["uid"] == os.geteuid()


WAITS_FOR_THE_GATE = """
    import os
    import time

    def run(mini_batch):
        for path in mini_batch:
            name = os.path.basename(path)
            gate_open = os.path.exists(os.path.join(os.environ["MARKERS"], "open"))
            with open(os.path.join(os.environ["MARKERS"], "started-" + name), "w") as marker:
                marker.write("after the gate opened" if gate_open else "before the gate opened")
            if name.startswith("gate"):
                while not os.path.exists(os.path.join(os.environ["MARKERS"], "open")):
                    time.sleep(0.01)
            if name.startswith("slow"):
                time.sleep(300)
        return [os.path.basename(path) for path in mini_batch]
"""
"""run() marks each file it starts (saying whether the gate was open then); a `gate` file waits until the test
opens the gate, a `slow` one 300 s."""


def _started_actor(ray_cluster: Cluster, kit: Kit, **settings: Any) -> RayExecutor:
    """An executor of one actor that has answered once (its first task, `warm.txt`, done)."""
    kit.script(WAITS_FOR_THE_GATE)
    executor = RayExecutor(ray_cluster.address, sandbox=kit.sandbox())
    spec = kit.spec(instance_count=1, max_concurrency_per_instance=1, mini_batch_size=1, **settings)
    executor.start(spec)
    executor.submit(Task(0, (str(kit.input_dir / "warm.txt"),)))
    assert [(type(event), event.index) for event in _events(executor, 1)] == [(TaskDone, 0)]
    return executor


def _events(executor: RayExecutor, results: int) -> list[TaskEvent]:
    """What `executor` reports until `results` tries have ended (within 60 s), in its order."""
    events: list[TaskEvent] = []
    deadline = time.monotonic() + 60
    while sum(isinstance(event, TaskDone | TaskFailed) for event in events) < results:
        assert time.monotonic() < deadline, events
        events += executor.poll(1)
    return events


def test_an_actor_starts_its_queued_mini_batch_as_its_running_one_returns(ray_cluster: Cluster, kit: Kit) -> None:
    """The next mini-batch waits behind the running one on its actor, not for a round trip through the
    coordinator: it starts while the coordinator is not even asking."""
    kit.inputs("warm.txt", "gate.txt", "next.txt")
    executor = _started_actor(ray_cluster, kit)
    try:
        name = executor.submit(Task(1, (str(kit.input_dir / "gate.txt"),)))
        assert executor.queue_slots() == 1
        executor.queue(Task(2, (str(kit.input_dir / "next.txt"),)))
        assert executor.queue_slots() == 0
        wait_until(lambda: (kit.markers / "started-gate.txt").exists(), 60, "the gated mini-batch")
        (kit.markers / "open").touch()
        wait_until(lambda: (kit.markers / "started-next.txt").exists(), 60, "the queued mini-batch, unasked")
        events = _events(executor, 2)
    finally:
        executor.stop(graceful=False)

    assert [(type(event), event.index) for event in events] == [(TaskDone, 1), (TaskStarted, 2), (TaskDone, 2)]
    assert events[1] == TaskStarted(2, name)
    assert (kit.markers / "started-next.txt").read_text() == "after the gate opened"  # behind the gated one


def test_a_mini_batch_queued_behind_a_try_that_times_out_comes_back_unbegun(ray_cluster: Cluster, kit: Kit) -> None:
    """The running try is stopped at its own time limit (its actor started long before: no start-up time added)
    and the one queued behind it goes back as it was, costing no try."""
    kit.inputs("warm.txt", "slow.txt", "next.txt")
    executor = _started_actor(ray_cluster, kit, timeout_seconds=2, init_timeout_seconds=600)
    try:
        executor.submit(Task(1, (str(kit.input_dir / "slow.txt"),)))
        executor.queue(Task(2, (str(kit.input_dir / "next.txt"),)))
        events = _events(executor, 1)
    finally:
        executor.stop(graceful=False)

    assert [(type(event), event.index) for event in events] == [(TaskFailed, 1), (TaskReturned, 2)]
    assert isinstance(events[0], TaskFailed) and events[0].kind == "timeout"
    assert not (kit.markers / "started-next.txt").exists()


def test_a_try_that_answered_in_time_is_not_stopped_as_timed_out_when_its_deadline_is_checked_late(
    ray_cluster: Cluster, kit: Kit
) -> None:
    """The answer came before the deadline, but after the poll's wait returned: the deadline check collects it
    (a timeout would stop the call queued behind it mid-run and report it unbegun)."""
    kit.inputs("warm.txt", "quick.txt")
    executor = _started_actor(ray_cluster, kit, timeout_seconds=1)
    try:
        executor.submit(Task(1, (str(kit.input_dir / "quick.txt"),)))
        wait_until(lambda: (kit.markers / "started-quick.txt").exists(), 60, "the quick mini-batch")
        time.sleep(1.5)  # past its deadline, unpolled
        executor._stop_expired()  # test-only: the deadline check of a poll whose wait returned just before
        events = executor.poll(0)
    finally:
        executor.stop(graceful=False)

    assert [(type(event), event.index) for event in events] == [(TaskDone, 1)], events


@pytest.mark.parametrize("bad", ["not json", "ready again"])
def test_a_script_that_writes_into_its_workers_pipe_on_a_node_costs_its_try_and_the_job_goes_on(
    ray_cluster: Cluster, kit: Kit, bad: str
) -> None:
    """Its actor stops the worker as one that crashed. Before, the actor's own call failed: on the worker's first
    mini-batch, as a worker that could not start (the job failed); later, as a lost node (the mini-batch went back at
    no cost, again and again)."""
    kit.inputs("a.txt", "b.txt")
    kit.script(WRITES_INTO_ITS_PIPE)
    spec = kit.spec(mini_batch_size=1, max_retries=0, environment_variables=bad_reply_variables(kit, bad, "run"))

    outcome = run_job(spec, kit.ledger, RayExecutor(ray_cluster.address, sandbox=kit.sandbox()))

    kit.check(outcome, "Completed", 1, [1, 1], lines("b.txt"))
    assert "wrote into the pipe batchpoint reads its answers from" in kit.log("job_error.txt")


def test_a_script_printing_without_end_on_a_node_has_4_mb_of_it_relayed_per_answer(
    ray_cluster: Cluster, kit: Kit
) -> None:
    """What a worker prints on a node goes through the coordinator's memory: 12 MB printed in one run() come as the
    first 4 MB and a line saying how much was left, so that a script printing gigabytes cannot exhaust the
    server's memory. Before, all of it came, however much."""
    kit.inputs("a.txt")
    kit.script("""
        import sys

        def run(mini_batch):
            sys.stdout.write("0123456789abcdef" * (12 << 16))
            return mini_batch
    """)

    outcome = run_job(kit.spec(instance_count=1), kit.ledger, RayExecutor(ray_cluster.address))

    assert outcome.status == "Completed", outcome.message
    printed = kit.log("user/stdout/0/process000.stdout.txt")
    assert "0123456789abcdef" * 1000 in printed
    assert len(printed) < 4.1 * (1 << 20)
    assert "more bytes of this output were left on the node, past the 4 MB one answer relays]" in printed


Fault = BaseException | type[BaseException]
"""What a failing actor raises: an exception, or a class of them, raised (made) on the node."""
BUG = RuntimeError("a bug of batchpoint's")
FULL_DISK = OSError(errno.ENOSPC, "No space left on device")
LOST_OBJECT = ObjectLostError("00" * 28, None, "")


@pytest.mark.parametrize(("method", "when"), [("run", "while running mini-batch 0"), ("start", "while starting")])
def test_a_bug_in_batchpoints_own_actor_code_fails_the_job_with_the_actors_traceback(
    ray_cluster: Cluster, kit: Kit, monkeypatch: pytest.MonkeyPatch, method: str, when: str
) -> None:
    """Neither the script's failure nor a lost node: read as a lost node in `run`, the mini-batch went back at no
    cost to a new actor that failed the same way, for ever (in `start`, as a failed init()). The run stops, and
    the job fails (it is no passing fault), its message naming the error, the server's log the actor's traceback."""
    with pytest.raises(ActorFailedError, match=f"failed {when}") as raised:
        _run_on_a_failing_actor(ray_cluster, kit, monkeypatch, method, BUG)

    assert not is_transient(raised.value)
    assert describe(raised.value).startswith("ActorFailedError: The actor of the Ray worker process000")
    assert "RuntimeError: a bug of batchpoint's" in str(raised.value)
    (note,) = raised.value.__notes__
    assert note.startswith("The actor's traceback, on its node:\nray::")
    assert f"in {method}\n    raise fault\nRuntimeError: a bug of batchpoint's" in note and "\x1b[" not in note
    assert raised.value.__cause__ is None


def test_a_link_in_the_input_to_a_file_elsewhere_is_not_read_for_a_node(
    ray_cluster: Cluster, kit: Kit, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Inputs on the server's own disk are read by the coordinator, with the server's rights, and sent to the nodes:
    a link a user placed in the input, to a file elsewhere, was read and handed to the script, which a local
    worker's sandbox refuses. Now its try fails saying so, and the file is not read."""
    secret = tmp_path_factory.mktemp("elsewhere") / "signing.key"
    secret.write_text("the server's secret")
    kit.inputs("a.txt")
    (kit.input_dir / "leak.txt").symlink_to(secret)
    kit.script("""
        def run(mini_batch):
            return [open(path).read() for path in mini_batch]
    """)

    outcome = run_job(kit.spec(mini_batch_size=1, max_retries=0), kit.ledger, RayExecutor(ray_cluster.address))

    assert outcome.status == "Completed" and outcome.counts.items_failed == 1, outcome.message
    assert "the server's secret" not in (kit.predictions() or "")
    assert "'leak.txt' leads outside the job's input (a link): it was not read" in kit.log("job_error.txt")


class _HoldsALock(Exception):
    """An exception Ray cannot send back from the node: it puts a plain RayError in its place."""

    def __init__(self) -> None:
        super().__init__("a bug whose exception holds a lock")
        self.lock = threading.Lock()


def test_an_exception_ray_cannot_send_back_is_a_bug_too(
    ray_cluster: Cluster, kit: Kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, Ray's stand-in for it read as an object Ray had lost: the worker lost at no cost, for ever."""
    with pytest.raises(ActorFailedError, match="failed while running mini-batch 0"):
        _run_on_a_failing_actor(ray_cluster, kit, monkeypatch, "run", _HoldsALock)


@pytest.mark.parametrize("fault", [FULL_DISK, OutOfDiskError("the node's disk is over its limit")], ids=repr)
def test_a_full_disk_on_a_node_pauses_the_job(
    ray_cluster: Cluster, kit: Kit, monkeypatch: pytest.MonkeyPatch, fault: Exception
) -> None:
    """The actor's own disk full (fetching the mini-batch's files, say) or Ray's on its node (storing the answer):
    a passing fault, which pauses the job (`cluster/faults.py`) until there is room, naming the node."""
    with pytest.raises(TransientFault) as raised:
        _run_on_a_failing_actor(ray_cluster, kit, monkeypatch, "run", fault)

    assert is_transient(raised.value)
    assert describe(raised.value).startswith("the node of the Ray worker process000")
    assert f"is out of space ({type(fault).__name__}: " in describe(raised.value)


def test_a_call_ray_could_not_give_its_arguments_loses_the_worker_at_no_cost(
    ray_cluster: Cluster, kit: Kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An object lost with its owner or node, which Ray reports as the call's error: the mini-batch goes back."""
    events = _run_on_a_failing_actor(ray_cluster, kit, monkeypatch, "run", LOST_OBJECT)

    assert [(type(event), getattr(event, "kind", None)) for event in events] == [(TaskFailed, "lost")]
    assert "Ray could not run its call" in str(events[0])


def _run_on_a_failing_actor(
    ray_cluster: Cluster, kit: Kit, monkeypatch: pytest.MonkeyPatch, method: str, fault: Fault
) -> list[TaskEvent]:
    """One mini-batch on one actor whose `method` raises `fault`: the executor's events until it has ended."""
    kit.inputs("a.txt")
    kit.script(ECHO)
    monkeypatch.setattr(ray_executor, "RemoteScoringActor", _failing_actor(method, fault))
    executor = RayExecutor(ray_cluster.address, sandbox=kit.sandbox())
    executor.start(kit.spec(instance_count=1, max_concurrency_per_instance=1))
    try:
        executor.submit(Task(0, (str(kit.input_dir / "a.txt"),)))
        return _events(executor, 1)
    finally:
        executor.stop(graceful=False)


def _failing_actor(method: str, fault: Fault) -> Any:
    """batchpoint's actor class, with `fault` raised by its own code in each call of `method` (a class defined here,
    which Ray sends to the nodes by value)."""

    class FailsToStart(ScoringActor):
        def start(self) -> Any:
            raise fault

    class FailsToRun(ScoringActor):
        def run(self, index: int, names: list[str], contents: list[bytes] | None) -> Any:
            raise fault

    return ray.remote(FailsToStart if method == "start" else FailsToRun)


def test_an_init_past_its_time_limit_on_a_node_is_a_failed_init_that_costs_no_try(
    ray_cluster: Cluster, kit: Kit
) -> None:
    """As locally: the actor's `start` call, which returns when `init()` has, is timed apart from `run()`. Before,
    one call held both, and past both limits added it was charged as a timed-out try."""
    kit.inputs("a.txt")
    kit.script("""
        import time

        def init():
            time.sleep(300)

        def run(mini_batch):
            return mini_batch
    """)
    spec = kit.spec(max_retries=0, timeout_seconds=30, init_timeout_seconds=2)

    started = time.monotonic()
    outcome = run_job(spec, kit.ledger, RayExecutor(ray_cluster.address))

    assert outcome.status == "Failed"
    assert "did not start and return from init() within 2 seconds" in outcome.message
    assert kit.tries() == [0]
    assert time.monotonic() - started < 30
