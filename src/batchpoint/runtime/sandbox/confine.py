"""`enter(policy)`: what a process does to itself to enter the worker sandbox, in this order:

1. its own mount and System V IPC namespaces with a private `/dev/shm`, and the policy's `hide` folders covered
   (as root directly; otherwise inside a user namespace of its own, when the kernel lets unprivileged users make one);
2. a Landlock ruleset from the policy's paths (opened now, before any privilege is dropped), its own `/proc/<pid>`,
   the TCP ports it may connect to;
3. privileges: the worker user (`setresuid`, no supplementary groups) or, keeping uid 0, locked securebits; every
   capability set emptied (with `CAP_SYS_PTRACE` a process reads `/proc/<pid>/environ` through Landlock);
4. a fresh session keyring;
5. `no_new_privs` and `landlock_restrict_self`.

Standard library only, Python 3.8+. The process must have a single thread (Landlock restricts the calling thread).

A policy is plain JSON, written by the server (`policy.py`):
    {"abi": 7, "read_exec": [...], "read": [...], "read_write": [...], "scratch": [...], "install": [...],
     "devices": [...],
     "tcp_connect": null | [443, ...], "user": null | [uid, gid], "private_ipc": true, "hide": [...]}
"""

from __future__ import annotations

import ctypes
import os
from typing import Any

from batchpoint.runtime.sandbox import landlock

PR_CAPBSET_DROP = 24
PR_SET_SECUREBITS = 28
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
SECUREBITS_LOCKED_NOROOT = 0b11101111
"""NOROOT, NO_SETUID_FIXUP, KEEP_CAPS_LOCKED, NO_CAP_AMBIENT_RAISE and each one's lock: uid 0 means nothing."""
CAP_VERSION_3 = 0x20080522
KEYCTL_JOIN_SESSION_KEYRING = 1
SYS_KEYCTL = {"x86_64": 250, "aarch64": 219}
CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWUSER = 0x00020000, 0x08000000, 0x10000000
MS_RDONLY, MS_BIND, MS_REC, MS_PRIVATE = 0x1, 0x1000, 0x4000, 0x40000
RIGHTS = (
    ("read_exec", landlock.READ_EXEC),
    ("read", landlock.READ),
    ("read_write", landlock.READ_WRITE),
    ("scratch", landlock.SCRATCH),
    ("install", landlock.INSTALL),
    ("devices", landlock.DEVICE),
)
"""What each list of a policy grants."""


class SandboxUnavailable(RuntimeError):
    """This kernel has no Landlock: the process cannot be sandboxed."""


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def enter(policy: dict[str, Any]) -> dict[str, Any]:
    """Apply `policy` to this single-threaded process, for good; returns what was applied."""
    abi = min(landlock.abi_version(), int(policy.get("abi", 1 << 16)))
    if abi < 1:
        raise SandboxUnavailable("this kernel has no Landlock: the worker cannot be sandboxed")
    private = _private_namespaces(policy) if policy.get("private_ipc") or policy.get("hide") else False
    tcp = policy.get("tcp_connect")
    ruleset = landlock.Ruleset(abi, restrict_tcp=tcp is not None)
    for key, rights in RIGHTS:
        for path in policy.get(key, ()):
            ruleset.allow(path, rights)
    ruleset.allow(f"/proc/{os.getpid()}", landlock.READ)  # its own entry only: not its children's, nobody else's
    for port in tcp or ():
        ruleset.allow_tcp_connect(int(port))
    _drop_privileges(policy.get("user"))
    _new_session_keyring()
    ruleset.restrict_self()
    return {"abi": abi, "private_ipc": private, "tcp": bool(ruleset.handled_net), "uid": os.getuid()}


def _fail(what: str) -> None:
    errno = ctypes.get_errno()
    raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _private_namespaces(policy: dict[str, Any]) -> bool:
    """Own mount and IPC namespaces, a private /dev/shm, the `hide` paths covered. Without root, a user namespace
    gives the right to mount; where the kernel refuses one, a policy that hides nothing goes on with the shared
    /dev/shm (False), one that must hide something fails."""
    libc = landlock.libc()
    if os.geteuid() != 0:
        uid, gid = os.geteuid(), os.getegid()
        if libc.unshare(CLONE_NEWUSER) != 0:
            if policy.get("hide"):
                _fail("unshare(CLONE_NEWUSER)")
            return False
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
            with open(f"/proc/self/{name}", "w") as handle:
                handle.write(text)
    if libc.unshare(CLONE_NEWNS | CLONE_NEWIPC) != 0:
        _fail("unshare(CLONE_NEWNS | CLONE_NEWIPC)")
    if libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        _fail("mount(/, MS_REC | MS_PRIVATE)")
    size = str(policy.get("shm_size", "25%"))
    if libc.mount(b"tmpfs", b"/dev/shm", b"tmpfs", 0, f"size={size},mode=1777".encode()) != 0:
        _fail("mount(tmpfs, /dev/shm)")
    for path in policy.get("hide", ()):
        _hide(path)
    return True


def _hide(path: str) -> None:
    """An empty read-only tmpfs over a folder, /dev/null over anything else: for path-named unix sockets, which
    Landlock does not mediate (a raylet's, PostgreSQL's, of the worker's own uid)."""
    if not os.path.lexists(path):
        return
    libc = landlock.libc()
    if os.path.isdir(path):
        result = libc.mount(b"tmpfs", path.encode(), b"tmpfs", MS_RDONLY, b"size=4k,mode=0555")
    else:
        result = libc.mount(b"/dev/null", path.encode(), None, MS_BIND, None)
    if result != 0:
        _fail(f"mount over {path}")


def _last_capability() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as handle:
            return int(handle.read())
    except (OSError, ValueError):
        return 63


def _drop_privileges(user: list[int] | None) -> None:
    """Become `user` (uid, gid) or, keeping the uid, make uid 0 mean nothing; no capability is left either way."""
    libc = landlock.libc()
    if os.geteuid() == 0:
        if user is None and libc.prctl(PR_SET_SECUREBITS, SECUREBITS_LOCKED_NOROOT, 0, 0, 0) != 0:
            _fail("prctl(PR_SET_SECUREBITS)")
        for capability in range(_last_capability() + 1):
            if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0 and ctypes.get_errno() != 22:  # EINVAL: unknown
                _fail(f"prctl(PR_CAPBSET_DROP, {capability})")
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    if user is not None:
        uid, gid = user
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)  # from uid 0 to another: the kernel empties the capability sets
        if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid):
            raise OSError(f"the worker's user {uid}:{gid} could not be set")
    if libc.capset(ctypes.byref(_CapHeader(CAP_VERSION_3, 0)), (_CapData * 2)()) != 0:
        _fail("capset")


def _new_session_keyring() -> None:
    """A fresh anonymous session keyring: keys of the server's session are not the worker's."""
    number = SYS_KEYCTL.get(os.uname().machine)
    if number is not None:
        landlock.libc().syscall(ctypes.c_long(number), ctypes.c_long(KEYCTL_JOIN_SESSION_KEYRING), None)
