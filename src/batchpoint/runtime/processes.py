"""Processes known by more than their pid: a pid alone may belong to another process by the time it is used
(the process ended and the number was reused, or the pid file came from another machine), so a process is only
signalled after checking it is still the one that was started: same host, same pid, same start time."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil


@dataclass(frozen=True)
class ProcessIdentity:
    host: str
    pid: int
    started: float
    """When the process started (seconds since the epoch, as the kernel reports it in /proc)."""

    @classmethod
    def of(cls, pid: int) -> ProcessIdentity:
        return cls(socket.gethostname(), pid, psutil.Process(pid).create_time())

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)))

    @classmethod
    def load(cls, path: Path) -> ProcessIdentity | None:
        """The identity saved at `path`; None when there is none or it is unreadable (an older format)."""
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def is_running(self) -> bool:
        if self.host != socket.gethostname():
            return False
        try:
            return psutil.Process(self.pid).create_time() == self.started
        except psutil.Error:
            return False

    def kill_group(self) -> bool:
        """SIGKILL the process group this process leads, if the process is still the one that was started."""
        if not self.is_running():
            return False
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        return True
