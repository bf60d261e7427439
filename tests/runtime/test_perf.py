"""The resource monitor's machine row (runtime/perf.py): its connection counts are the machine's, as psutil counts
them, read from the kernel's counters."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

COUNT = """
import json, socket, time
import psutil
from batchpoint.runtime.perf import _connections

server = socket.create_server(("127.0.0.1", 0))
client = socket.create_connection(server.getsockname())
accepted, _ = server.accept()
closing = socket.create_connection(server.getsockname())
closed, _ = server.accept()
closing.close()  # the side that closes first waits in TIME_WAIT, which psutil lists
closed.close()
time.sleep(0.2)
udp = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
udp.bind(("::1", 0))
print(json.dumps({kind: [_connections(kind), len(psutil.net_connections(kind))] for kind in ("tcp", "udp")}))
"""


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"), reason="a network namespace of its own"
)
def test_the_connection_counts_are_psutils_in_a_network_namespace_of_known_sockets() -> None:
    """In a network namespace of its own, a process with a listening TCP socket, both ends of a connection, a
    closed connection waiting in TIME_WAIT and an IPv6 UDP socket: 4 TCP, 1 UDP, as psutil lists them."""
    found = subprocess.run(
        ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$0" -c "$1"', sys.executable, COUNT],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    assert json.loads(found.stdout) == {"tcp": ["4", 4], "udp": ["1", 1]}
