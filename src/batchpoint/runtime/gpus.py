"""The GPUs of the server's machine and which local worker uses which (docs/runtime.md, "GPUs"; Decision 22).

As on an Azure GPU node, each worker process sees one GPU of its own through `CUDA_VISIBLE_DEVICES`, and
`AZ_BATCHAI_GPU_COUNT_FOUND` says how many the machine has. A worker that stops gives its GPU back, and the next
worker to start takes the lowest free one. When more workers run than there are GPUs, a worker shares the GPU that
the fewest others use, and the job's `sys/master_role.txt` says so.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

CUDA_VISIBLE_DEVICES = "CUDA_VISIBLE_DEVICES"
GPU_COUNT_FOUND = "AZ_BATCHAI_GPU_COUNT_FOUND"
"""How many GPUs the worker's node has, as Azure ML sets it on its nodes."""
SMI_SECONDS = 10.0
_SMI_LINE = re.compile(r"GPU (\d+):")
DRIVER_DEVICES = (
    "/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia-modeset", "/dev/nvidia-caps",
)  # fmt: skip
"""The driver's device files (`/dev/nvidia-caps`: the capabilities a MIG slice of a GPU is opened with)."""
DRIVER_ROOT = Path("/")
"""Where the driver's state is read (a test lays out a GPU machine's under a folder of its own)."""
DRIVER_STATE = ("proc/driver/nvidia", "sys/module/nvidia", "sys/bus/pci/devices")
"""What CUDA and NVML read of the driver's state, below DRIVER_ROOT: its parameters, version, capabilities and each
GPU's information (`/proc/driver/nvidia`), the kernel module's version (`/sys/module/nvidia`) and the list of PCI
devices (each GPU's own folder, which its entry there links to, is added by `driver_reads`)."""
NO_DEVICES = ("", "-1", "NoDevFiles", "none")
"""`CUDA_VISIBLE_DEVICES` values that hide every GPU."""


def parse_gpus(text: str) -> tuple[str, ...]:
    """`0,1` as `serve --gpus` and `CUDA_VISIBLE_DEVICES` spell a list of GPUs (indices or UUIDs)."""
    if text.strip() in NO_DEVICES:
        return ()
    return tuple(part.strip() for part in text.split(",") if part.strip())


def discover(environ: Mapping[str, str] = os.environ) -> tuple[str, ...]:
    """The GPUs of this machine: those `nvidia-smi -L` lists, else the server's own `CUDA_VISIBLE_DEVICES`, else
    none. `serve --gpus` names them instead."""
    listed = _nvidia_smi()
    if listed:
        return listed
    return parse_gpus(environ.get(CUDA_VISIBLE_DEVICES, ""))


def _nvidia_smi() -> tuple[str, ...]:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return ()
    try:
        listed = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=SMI_SECONDS, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ()
    return tuple(match.group(1) for line in listed.stdout.splitlines() if (match := _SMI_LINE.match(line.strip())))


def worker_environment(gpus: Sequence[str], found: int) -> dict[str, str]:
    """What a worker that uses `gpus` of a node that has `found` is told, as Azure tells a worker of a GPU node."""
    count = {GPU_COUNT_FOUND: str(found)}
    return {**count, CUDA_VISIBLE_DEVICES: ",".join(gpus)} if gpus else count


def device_files(gpus: Sequence[str]) -> list[str]:
    """The device files a worker that uses `gpus` opens (the driver's own and its GPUs'), those that exist."""
    if not gpus:
        return []
    own = [f"/dev/nvidia{gpu}" for gpu in gpus if gpu.isdigit()]
    if len(own) < len(gpus):  # named by UUID: which device file is which is the driver's to say
        own = sorted(map(str, Path("/dev").glob("nvidia[0-9]*")))
    return [path for path in (*DRIVER_DEVICES, *own) if os.path.exists(path)]


def driver_reads(gpus: Sequence[str]) -> list[str]:
    """What a worker that uses `gpus` reads of the driver's state, besides its device files: DRIVER_STATE, and the
    PCI folder of each GPU the driver lists (`/sys/devices/pci.../<address>`: Landlock checks the path a link
    resolves to), those that exist. Nothing for a worker without a GPU."""
    if not gpus:
        return []
    found = [DRIVER_ROOT / path for path in DRIVER_STATE]
    listed = DRIVER_ROOT / "proc/driver/nvidia/gpus"
    addresses = sorted(os.listdir(listed)) if listed.is_dir() else []
    found += [Path(os.path.realpath(DRIVER_ROOT / "sys/bus/pci/devices" / address)) for address in addresses]
    return [str(path) for path in found if path.exists()]


def describe_gpus(gpus: Sequence[str]) -> str:
    """The server banner's line on its GPUs."""
    if not gpus:
        return "GPUs: none (serve --gpus 0,1,... names them)"
    return f"GPUs: {', '.join(gpus)}, one per local worker (CUDA_VISIBLE_DEVICES)"


@dataclass(frozen=True)
class GpuLease:
    """The GPU a worker uses, and how many other workers used it when the worker took it."""

    gpu: str
    others: int


class GpuPool:
    """The server's GPUs, shared by the local workers of every job it runs (thread-safe)."""

    def __init__(self, gpus: Sequence[str] = ()) -> None:
        self.gpus = tuple(gpus)
        self._users = dict.fromkeys(self.gpus, 0)
        self._lock = threading.Lock()

    def take(self) -> GpuLease | None:
        """The lowest GPU no worker uses, else the one the fewest use; None when the machine has none."""
        with self._lock:
            if not self.gpus:
                return None
            gpu = min(self.gpus, key=lambda name: self._users[name])  # min keeps the first of equals: the lowest
            self._users[gpu] += 1
            return GpuLease(gpu, self._users[gpu] - 1)

    def release(self, lease: GpuLease | None) -> None:
        if lease is not None:
            with self._lock:
                self._users[lease.gpu] -= 1

    def environment(self, lease: GpuLease | None) -> dict[str, str]:
        """What a worker holding `lease` is told."""
        return worker_environment(() if lease is None else (lease.gpu,), len(self.gpus))

    def sharing(self, worker: str, lease: GpuLease) -> str:
        """The job log's line for a worker that shares its GPU."""
        return (
            f"{worker} shares GPU {lease.gpu} with {lease.others} other worker(s): the server has "
            f"{len(self.gpus)} GPU(s) ({', '.join(self.gpus)}) for more workers than that, so workers that share a "
            "GPU share its memory and its compute (CUDA_VISIBLE_DEVICES is the same for them)."
        )
