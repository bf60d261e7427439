"""The resource use of a job's machine and worker processes, sampled into `logs/perf/<node>/` as Azure's resource
monitor does: when the workers start, then every `JobSpec.resource_monitor_seconds` (600 by default, as Azure's
`--resource_monitor_interval`; 0 turns it off).

`node_resource_usage.csv` has the columns Azure's ParallelRunStep tuning guide lists (psutil's meanings);
`processes_resource_usage.csv` is ours (Azure shows it only as a screenshot): one row per worker process. Both
are appended to in whole lines. The local workers of every node run on this machine, so each node's machine
row is the same machine's.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterable
from pathlib import Path

import psutil

from batchpoint.runtime.executor import WorkerName
from batchpoint.runtime.layout import LogLayout, timestamp

NODE_USAGE = "node_resource_usage.csv"
PROCESS_USAGE = "processes_resource_usage.csv"
NODE_COLUMNS = (
    "Utc Time", "Cpu Percent", "Memory Total (MB)", "Memory Available (MB)", "Memory Used (MB)",
    "Memory Used Percent", "Disk Io Read Count", "Disk Io Write Count", "Disk Io Read (MB)", "Disk Io Write (MB)",
    "Network Sent (MB)", "Network Recv (MB)", "# of TCP Connections", "# of UDP Connections",
)  # fmt: skip
PROCESS_COLUMNS = (
    "Utc Time", "Node Id", "Process", "Pid", "Cpu Percent", "Memory Rss (MB)", "Memory Percent", "Num Threads",
)  # fmt: skip
MB = 1024 * 1024
MISSING = "N/A"


class ResourceMonitor:
    def __init__(self, layout: LogLayout, interval_seconds: float) -> None:
        self._layout = layout
        self._interval = interval_seconds
        self._next = 0.0
        self._processes: dict[int, psutil.Process] = {}
        """Kept between samples: a process's CPU percent is measured since the sample before."""

    def sample_if_due(self, workers: Iterable[tuple[WorkerName, int]]) -> None:
        """Sample the machine and the `(worker, pid)` processes when the interval has passed."""
        now = time.monotonic()
        if self._interval <= 0 or now < self._next:
            return
        self._next = now + self._interval
        self.sample(list(workers))

    def sample(self, workers: list[tuple[WorkerName, int]]) -> None:
        stamp = timestamp()
        machine = _machine_row(stamp)
        by_node: dict[str, list[list[str]]] = {}
        for worker, pid in workers:
            by_node.setdefault(worker.node, []).append(self._process_row(stamp, worker, pid))
        self._processes = {pid: self._processes[pid] for _, pid in workers if pid in self._processes}
        for node, rows in by_node.items():
            folder = self._layout.perf(node)
            _append_rows(folder / NODE_USAGE, NODE_COLUMNS, [machine])
            _append_rows(folder / PROCESS_USAGE, PROCESS_COLUMNS, rows)

    def _process_row(self, stamp: str, worker: WorkerName, pid: int) -> list[str]:
        try:
            process = self._processes.setdefault(pid, psutil.Process(pid))
            with process.oneshot():
                cpu = process.cpu_percent()
                memory = process.memory_info().rss / MB
                share = process.memory_percent()
                threads = process.num_threads()
        except psutil.Error:  # it exited between the listing and the sample
            return [stamp, worker.node, worker.process, str(pid), MISSING, MISSING, MISSING, MISSING]
        return [
            stamp,
            worker.node,
            worker.process,
            str(pid),
            f"{cpu:.1f}",
            f"{memory:.1f}",
            f"{share:.1f}",
            str(threads),
        ]


def _machine_row(stamp: str) -> list[str]:
    memory = psutil.virtual_memory()
    disk = psutil.disk_io_counters()
    network = psutil.net_io_counters()
    return [
        stamp,
        f"{psutil.cpu_percent():.1f}",
        f"{memory.total / MB:.1f}",
        f"{memory.available / MB:.1f}",
        f"{memory.used / MB:.1f}",
        f"{memory.percent:.1f}",
        str(disk.read_count) if disk else MISSING,
        str(disk.write_count) if disk else MISSING,
        f"{disk.read_bytes / MB:.1f}" if disk else MISSING,
        f"{disk.write_bytes / MB:.1f}" if disk else MISSING,
        f"{network.bytes_sent / MB:.1f}",
        f"{network.bytes_recv / MB:.1f}",
        _connections("tcp"),
        _connections("udp"),
    ]


SOCKSTAT_FILES = ("/proc/net/sockstat", "/proc/net/sockstat6")
SOCKSTAT_COUNTS = {"tcp": ("TCP: inuse", "TCP6: inuse", "TCP: tw"), "udp": ("UDP: inuse", "UDP6: inuse")}
"""What adds up to each kind's sockets as psutil lists them: those in use, IPv4 and IPv6, and TCP's in TIME_WAIT."""


def _connections(kind: str) -> str:
    """How many `kind` (tcp, udp) sockets of IPv4 and IPv6 the machine has, as `psutil.net_connections` counts
    them, from the kernel's counters in `/proc/net/sockstat` and `sockstat6` (which leave out half-open incoming
    connections, SYN_RECV, that psutil lists: a burst of them is counted low). Not by listing them: psutil reads
    every process's descriptors (0.7 s of the coordinator's time on a machine of 200 processes), and even counting
    the lines of `/proc/net/tcp` made the kernel walk every bucket of its socket tables, 10 ms of CPU for 20 sockets
    at the start of each job, when its workers start (issue 26)."""
    counters = _sockstat()
    if counters:
        return str(sum(counters.get(name, 0) for name in SOCKSTAT_COUNTS[kind]))
    try:
        return str(len(psutil.net_connections(kind)))
    except psutil.Error:  # not allowed to list them on this system
        return MISSING


def _sockstat() -> dict[str, int]:
    """`{"TCP: inuse": 11, "TCP: tw": 5, "TCP6: inuse": 2, ...}`; empty when the files cannot be read."""
    counters: dict[str, int] = {}
    for path in SOCKSTAT_FILES:
        try:
            with open(path, encoding="ascii") as table:
                lines = table.read().splitlines()
        except OSError:
            continue
        for line in lines:
            protocol, _, fields = line.partition(": ")
            words = fields.split()  # name value name value ...
            pairs = zip(words[::2], words[1::2], strict=False)
            counters.update({f"{protocol}: {name}": int(value) for name, value in pairs if value.isdigit()})
    return counters


def _append_rows(path: Path, columns: tuple[str, ...], rows: list[list[str]]) -> None:
    """Append whole lines in one write, with the header first in a new file."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        writer.writerow(columns)
    writer.writerows(rows)
    with open(path, "a", encoding="utf-8", newline="") as file:
        file.write(buffer.getvalue())
