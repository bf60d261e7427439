"""Landlock (Linux 5.13+) through ctypes: the ABI version, a ruleset of path and TCP port rules, the scopes of ABI 6,
and restricting the calling thread.

Standard library only and Python 3.8+: it runs in the deployment's interpreter before anything of the deployment
does. `landlock_restrict_self` restricts the CALLING THREAD ONLY (threads started before keep their freedom):
call it while the process has one thread.
"""

from __future__ import annotations

import ctypes
import os
import stat
from typing import Any

# The three system calls have these numbers on every architecture (they came after the tables were unified).
SYS_CREATE_RULESET, SYS_ADD_RULE, SYS_RESTRICT_SELF = 444, 445, 446
CREATE_RULESET_VERSION = 1
RULE_PATH_BENEATH, RULE_NET_PORT = 1, 2
PR_SET_NO_NEW_PRIVS = 38
EOPNOTSUPP = 95

# Filesystem rights (ABI 1 unless noted).
EXECUTE = 1 << 0
WRITE_FILE = 1 << 1
READ_FILE = 1 << 2
READ_DIR = 1 << 3
REMOVE_DIR = 1 << 4
REMOVE_FILE = 1 << 5
MAKE_CHAR = 1 << 6
MAKE_DIR = 1 << 7
MAKE_REG = 1 << 8
MAKE_SOCK = 1 << 9
MAKE_FIFO = 1 << 10
MAKE_BLOCK = 1 << 11
MAKE_SYM = 1 << 12
REFER = 1 << 13  # ABI 2
TRUNCATE = 1 << 14  # ABI 3
IOCTL_DEV = 1 << 15  # ABI 5
FILE_ONLY = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV
"""The rights a rule on a file (not a folder) may carry: the kernel refuses the others there."""

NET_BIND_TCP = 1 << 0  # ABI 4
NET_CONNECT_TCP = 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
SCOPE_SIGNAL = 1 << 1

# What a policy grants, by kind of path.
READ = READ_FILE | READ_DIR
READ_EXEC = READ | EXECUTE
READ_WRITE = READ | WRITE_FILE | REMOVE_DIR | REMOVE_FILE | MAKE_DIR | MAKE_REG | REFER | TRUNCATE
"""No symbolic links (one in an output folder could make the server read what the worker cannot), no FIFOs (one
where the server reads would block it), no sockets, no devices."""
SCRATCH = READ_WRITE | EXECUTE | MAKE_SOCK
"""A worker's private folder: sockets too, for multiprocessing's managers and forkserver."""
INSTALL = READ_WRITE | EXECUTE | MAKE_SYM
"""What an environment build fills (the environment, the installer's cache): virtual environments hold links."""
DEVICE = READ_FILE | WRITE_FILE | IOCTL_DEV


def handled_fs(abi: int) -> int:
    """Every filesystem right ABI `abi` knows: all of them are denied but where a rule grants them."""
    if abi >= 5:
        return (1 << 16) - 1
    if abi >= 3:
        return (1 << 15) - 1
    return (1 << 14) - 1 if abi == 2 else (1 << 13) - 1


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class _NetPortAttr(ctypes.Structure):
    _fields_ = [("allowed", ctypes.c_uint64), ("port", ctypes.c_uint64)]


_libc: ctypes.CDLL | None = None


def libc() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.syscall.restype = ctypes.c_long
    return _libc


def check(result: int, what: str) -> int:
    """`result` of a libc call, or OSError with its errno."""
    if result < 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")
    return result


def _syscall(number: int, *arguments: Any) -> int:
    return int(libc().syscall(ctypes.c_long(number), *arguments))


def abi_version() -> int:
    """The kernel's Landlock ABI; 0 when it has none (too old, not built, or left out of the `lsm=` list)."""
    if os.uname().sysname != "Linux":
        return 0
    version = _syscall(SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(CREATE_RULESET_VERSION))
    return max(version, 0)


class Ruleset:
    """Denies every filesystem right of `abi` but those the rules grant, TCP bind and connect but to the allowed
    ports when `restrict_tcp` (ABI 4+), and signals and abstract unix sockets beyond the sandbox (ABI 6+)."""

    def __init__(self, abi: int, restrict_tcp: bool) -> None:
        if abi < 1:
            raise OSError(EOPNOTSUPP, "this kernel has no Landlock")
        self.handled_fs = handled_fs(abi)
        self.handled_net = NET_BIND_TCP | NET_CONNECT_TCP if restrict_tcp and abi >= 4 else 0
        self.scoped = SCOPE_SIGNAL | SCOPE_ABSTRACT_UNIX_SOCKET if abi >= 6 else 0
        attr = _RulesetAttr(self.handled_fs, self.handled_net, self.scoped)
        size = 24 if abi >= 6 else 16 if abi >= 4 else 8  # an older kernel takes the prefix it knows
        created = _syscall(SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
        self.fd = check(created, "landlock_create_ruleset")
        self.missing: list[str] = []
        """Paths of rules that were skipped because nothing is there."""

    def allow(self, path: str, rights: int) -> None:
        """Grant `rights` beneath the folder `path`, or on the file `path` (its file rights only)."""
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except FileNotFoundError:
            self.missing.append(path)
            return
        try:
            if not stat.S_ISDIR(os.fstat(fd).st_mode):
                rights &= FILE_ONLY
            self._add(RULE_PATH_BENEATH, _PathBeneathAttr(rights & self.handled_fs, fd), path)
        finally:
            os.close(fd)

    def allow_tcp_connect(self, port: int) -> None:
        if self.handled_net:
            self._add(RULE_NET_PORT, _NetPortAttr(NET_CONNECT_TCP, port), f"tcp port {port}")

    def _add(self, kind: int, attr: ctypes.Structure, what: str) -> None:
        result = _syscall(
            SYS_ADD_RULE, ctypes.c_int(self.fd), ctypes.c_int(kind), ctypes.byref(attr), ctypes.c_uint32(0)
        )
        check(result, f"landlock_add_rule({what})")

    def restrict_self(self) -> None:
        """No new privileges, then enforce: for good, on this thread and every process it starts."""
        check(libc().prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")
        check(_syscall(SYS_RESTRICT_SELF, ctypes.c_int(self.fd), ctypes.c_uint32(0)), "landlock_restrict_self")
        os.close(self.fd)
        self.fd = -1
