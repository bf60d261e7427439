"""A hostile scoring script (issue 23): `init()` probes what a worker must not reach and writes each verdict into
its output folder (`probes-<pid>.json`); `run()` still scores its own files. As a command (a pipeline step):
`python hostile_score.py INPUT_FOLDER OUTPUT_FOLDER` probes, then scores every file of INPUT_FOLDER.

What to probe comes from `$TARGETS` (JSON), as an attacker who knows batchpoint's layout would find it. The server is
`targets["server_pid"]`, else this process's parent. Standard library only; Python 3.8 too. Never PTRACE_ATTACH:
it stops the traced server; `process_vm_readv` passes the same permission check and stops nobody.
"""

from __future__ import annotations

import ctypes
import json
import os
import socket
import sys

TARGETS = json.loads(os.environ.get("TARGETS") or "{}")
REPORTED = "hostile probes: "
EFAULT = 14


def probes(targets: dict) -> list:
    """(verdict, probe, detail) for each probe: "refused" when it raised, else "LEAKED"."""
    server = targets.get("server_pid") or os.getppid()
    checks = [
        ("server variables in the environment", lambda: server_variables()),
        ("walk up from an input file to the data directory", lambda: walk_up(targets["input_file"])),
        ("read the issuer's signing key", lambda: read(targets["signing_key"])),
        ("read the SQLite database", lambda: read_database(targets["database"])),
        ("read the TLS private key", lambda: read(targets["tls_key"])),
        ("read a second workspace's uploaded data", lambda: read(targets["other_workspace_file"])),
        ("list another running job's output folder", lambda: os.listdir(targets["other_job_output"])),
        ("read another running job's output", lambda: read(targets["other_job_file"])),
        ("read what the job does not name in an allowed local folder", lambda: read(targets["unnamed_local_file"])),
        ("write into the data directory", lambda: write(os.path.join(targets["data_dir"], "pwned.txt"))),
        ("write into /tmp", lambda: write(f"/tmp/pwned-{os.getpid()}.txt")),
        ("read /proc/<server>/environ", lambda: read(f"/proc/{server}/environ")),
        ("read /proc/<server>/cmdline", lambda: read(f"/proc/{server}/cmdline")),
        ("list /proc", lambda: os.listdir("/proc")),
        ("signal the server", lambda: os.kill(server, 0) or f"may signal pid {server}"),
        ("read the server's memory (process_vm_readv)", lambda: read_memory(server)),
        ("read /etc/shadow", lambda: read("/etc/shadow")),
        ("hold capabilities", capabilities),
    ]
    if "ray_sockets" in targets:  # on a Ray node: the cluster itself, through which code runs on any node
        checks += [
            ("connect a Ray raylet's or object store's socket", lambda: connect_any(targets["ray_sockets"])),
            ("connect Ray's GCS", lambda: tcp(targets["gcs_address"])),
            ("list the Ray session's logs", lambda: os.listdir(targets["ray_logs"])),
        ]
    results = []
    for name, check in checks:
        try:
            results.append(("LEAKED", name, repr(check())[:100]))
        except Exception as error:  # noqa: BLE001 - every refusal raises something, of any kind
            results.append(("refused", name, f"{type(error).__name__}: {error}"[:100]))
    return results


def server_variables() -> dict:
    found = {name: value for name, value in os.environ.items() if name.startswith("BATCHPOINT") or "hunter2" in value}
    if not found:
        raise LookupError(f"none among {sorted(os.environ)}")
    return found


def walk_up(path: str) -> list:
    listed = []
    folder = os.path.dirname(path)
    while folder != "/":
        folder = os.path.dirname(folder)
        listed.append((folder, len(os.listdir(folder))))
    return listed


def read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(60)


def read_database(path: str) -> list:
    import sqlite3

    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
        return connection.execute("select count(*) from resources").fetchall()


def write(path: str) -> str:
    with open(path, "w") as handle:
        handle.write("pwned")
    return f"wrote {path}"


class IOVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("length", ctypes.c_size_t)]


def read_memory(pid: int) -> str:
    """A read at an unmapped address: EFAULT when the permission check passed, EPERM when it did not."""
    libc = ctypes.CDLL(None, use_errno=True)
    buffer = ctypes.create_string_buffer(8)
    local, remote = IOVec(ctypes.cast(buffer, ctypes.c_void_p), 8), IOVec(0x1000, 8)
    if libc.process_vm_readv(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0) < 0:
        error = ctypes.get_errno()
        if error != EFAULT:
            raise PermissionError(error, os.strerror(error))
    return f"may read the memory of pid {pid}"


def connect_any(paths: list) -> str:
    refusals = []
    for path in paths:
        with socket.socket(socket.AF_UNIX) as client:
            try:
                client.connect(path)
            except OSError as error:
                refusals.append(error)
                continue
            return f"connected to {path}"
    raise PermissionError(f"every socket refused: {refusals}")


def tcp(address: str) -> str:
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5):
        return f"connected to {address}"


def capabilities() -> str:
    with open("/proc/self/status") as status:
        effective = next(line.split()[1] for line in status if line.startswith("CapEff"))
    if int(effective, 16) == 0:
        raise PermissionError(f"no capabilities (uid {os.getuid()})")
    return f"CapEff {effective}"


def save(folder: str) -> None:
    """The report in `folder`, and on stdout (a Ray node's output folder stays on the node; its log comes back)."""
    report = {"python": sys.version.split()[0], "uid": os.getuid(), "results": probes(TARGETS)}
    with open(os.path.join(folder, f"probes-{os.getpid()}.json"), "w") as handle:
        json.dump(report, handle)
    print(REPORTED + json.dumps(report), flush=True)


def init() -> None:
    save(os.environ["AZUREML_BI_OUTPUT_PATH"])


def run(mini_batch: list) -> list:
    return [f"{os.path.basename(path)} {len(read(path))}" for path in mini_batch]


if __name__ == "__main__":
    inputs, output = sys.argv[1], sys.argv[2]
    save(output)
    with open(os.path.join(output, "scores.txt"), "w") as scores:
        scores.write("\n".join(run(sorted(os.path.join(inputs, name) for name in os.listdir(inputs)))) + "\n")
