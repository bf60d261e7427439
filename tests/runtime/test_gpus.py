"""GPUs for local workers (docs/runtime.md, "GPUs"): the machine's GPUs as `serve --gpus` names them (so that these
tests run without any), one per worker while there are enough, shared and said so when there are not; on Ray in
test_ray_executor.py, through `serve --gpus` in tests/jobs/test_gpus.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from batchpoint.runtime import gpus as gpus_module
from batchpoint.runtime.coordinator import run_job
from batchpoint.runtime.gpus import GpuPool, discover, driver_reads, parse_gpus
from tests.runtime.conftest import REPORTS_ITS_GPU, Kit

EVENT = re.compile(r"(process\d+) (started \(pid \d+(?:, GPU (\w+))?\)|exits with returncode)")


def gpus_in_use(logs: Path) -> list[dict[str, str]]:
    """From `sys/node/0/_main.txt`: the GPU of each process alive after each start or exit, in order."""
    alive: dict[str, str] = {}
    seen = []
    for line in (logs / "sys" / "node" / "0" / "_main.txt").read_text().splitlines():
        match = EVENT.search(line)
        assert match, line
        if match.group(2).startswith("started"):
            alive[match.group(1)] = match.group(3)
        else:
            alive.pop(match.group(1))
        seen.append(dict(alive))
    return seen


def test_each_worker_sees_a_gpu_of_its_own_and_a_released_one_is_reused(kit: Kit) -> None:
    kit.inputs(*[f"f{index:02d}.txt" for index in range(8)], "die-1.txt", "die-2.txt")
    kit.script(REPORTS_ITS_GPU)
    spec = kit.spec(mini_batch_size=1, max_concurrency_per_instance=2, max_retries=0)

    outcome = run_job(spec, kit.ledger, kit.executor(gpus=GpuPool(("0", "1"))))

    assert outcome.status == "Completed", outcome.message
    rows = [line.split() for line in (kit.predictions() or "").splitlines()]
    assert len(rows) == 8
    assert {gpu for _, _, gpu, _ in rows} <= {"0", "1"} and {count for *_, count in rows} == {"2"}
    timeline = gpus_in_use(kit.output_dir / "logs")
    # Both workers start with the first two mini-batches, each with its GPU; which of them scores the most files
    # is the machine's to decide (under load one may score all eight while the other is replaced).
    assert set().union(*(alive.values() for alive in timeline)) == {"0", "1"}, timeline
    # A worker that died was replaced while work was left: 4 starts, or 3 when one died on the job's last
    # mini-batch (under load a worker slow to start may reach its `die` file only after the other scored the rest).
    assert len(kit.log("sys/node/0/_main.txt").split(" started ")) - 1 in (3, 4)
    assert all(len(set(alive.values())) == len(alive) for alive in timeline), timeline  # never one GPU twice
    assert all(set(alive.values()) <= {"0", "1"} for alive in timeline)
    assert "shares GPU" not in kit.log("sys/master_role.txt")


def test_two_workers_on_one_gpu_share_it_and_the_job_log_says_how(kit: Kit) -> None:
    kit.inputs("a.txt", "b.txt", "c.txt", "d.txt")
    kit.script(REPORTS_ITS_GPU)
    spec = kit.spec(mini_batch_size=1, max_concurrency_per_instance=2)

    outcome = run_job(spec, kit.ledger, kit.executor(gpus=GpuPool(("0",))))

    assert outcome.status == "Completed", outcome.message
    assert {line.split()[2] for line in (kit.predictions() or "").splitlines()} == {"0"}
    role = kit.log("sys/master_role.txt")
    assert "process001 on node 0 (pid " in role
    assert "shares GPU 0 with 1 other worker(s): the server has 1 GPU(s) (0) for more workers than that" in role


ADDRESS = "0000:3b:00.0"
READS_THE_DRIVER = """
    import os

    DRIVER = [
        "proc/driver/nvidia/params",
        "proc/driver/nvidia/gpus/0000:3b:00.0/information",
        "sys/module/nvidia/version",
        "sys/bus/pci/devices/0000:3b:00.0/numa_node",
    ]

    def run(mini_batch):
        verdicts = []
        for path in DRIVER:
            try:
                with open(os.path.join(ROOT, path)) as handle:
                    handle.read()
                verdicts.append("read")
            except PermissionError:
                verdicts.append("denied")
        return [" ".join(verdicts)]
"""
"""What CUDA and NVML read of the driver's state (`ROOT`: where the test laid it out)."""


def gpu_machine(root: Path) -> Path:
    """The driver's state of a machine with one GPU, as Linux lays it out (its PCI entry links to its folder)."""
    for path in (
        "proc/driver/nvidia/params",
        f"proc/driver/nvidia/gpus/{ADDRESS}/information",
        "sys/module/nvidia/version",
    ):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text("driver state\n")
    device = root / "sys/devices/pci0000:3a" / ADDRESS
    device.mkdir(parents=True)
    (device / "numa_node").write_text("0\n")
    (root / "sys/bus/pci/devices").mkdir(parents=True)
    (root / "sys/bus/pci/devices" / ADDRESS).symlink_to(f"../../../devices/pci0000:3a/{ADDRESS}")
    return root


@pytest.mark.parametrize(("gpus", "verdict"), [(("0",), "read"), ((), "denied")])
def test_a_gpu_worker_may_read_the_drivers_state_and_no_other_worker_may(
    kit: Kit, monkeypatch: pytest.MonkeyPatch, gpus: tuple[str, ...], verdict: str
) -> None:
    """CUDA inside the sandbox reads /proc/driver/nvidia and parts of /sys: a worker holding a GPU may, exactly
    those paths (`driver_reads`); a worker without one reads none of them."""
    machine = gpu_machine(kit.root / "machine")
    monkeypatch.setattr(gpus_module, "DRIVER_ROOT", machine)
    kit.inputs("a.txt")
    kit.script(f"ROOT = {str(machine)!r}", READS_THE_DRIVER)

    outcome = run_job(kit.spec(), kit.ledger, kit.executor(gpus=GpuPool(gpus)))

    assert outcome.status == "Completed", outcome.message
    assert (kit.predictions() or "").split() == [verdict] * 4
    expected = [
        f"{machine}/proc/driver/nvidia",
        f"{machine}/sys/module/nvidia",
        f"{machine}/sys/bus/pci/devices",
        f"{machine}/sys/devices/pci0000:3a/{ADDRESS}",
    ]
    assert driver_reads(gpus) == (expected if gpus else [])


def test_without_gpus_workers_are_told_there_are_none(kit: Kit) -> None:
    kit.inputs("a.txt")
    kit.script(REPORTS_ITS_GPU)

    outcome = kit.run()

    assert outcome.status == "Completed", outcome.message
    assert (kit.predictions() or "").split()[3] == "0"


@pytest.mark.parametrize(
    ("text", "gpus"), [("0,1", ("0", "1")), (" 2 , 3 ", ("2", "3")), ("", ()), ("-1", ()), ("GPU-ab12", ("GPU-ab12",))]
)
def test_gpu_lists_are_read_as_cuda_spells_them(text: str, gpus: tuple[str, ...]) -> None:
    assert parse_gpus(text) == gpus


def test_without_nvidia_smi_the_servers_cuda_visible_devices_names_the_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    assert discover({"CUDA_VISIBLE_DEVICES": "1,3"}) == ("1", "3")
    assert discover({}) == ()


def test_the_pool_hands_out_the_lowest_free_gpu_then_the_least_shared() -> None:
    pool = GpuPool(("0", "1"))
    first, second = pool.take(), pool.take()
    pool.release(first)
    again, third, fourth = pool.take(), pool.take(), pool.take()
    assert [lease.gpu for lease in (first, second, again, third, fourth) if lease] == ["0", "1", "0", "0", "1"]
    assert third is not None and third.others == 1
