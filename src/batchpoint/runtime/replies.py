"""A worker's replies as the executors read them, without trusting them: the scoring script runs in the worker and
can write into the pipe it answers on. `ReplyPipe` assembles frames from what has arrived (never blocking on a frame
that claims more than it sends, refusing one longer than MAX_FRAME); `reply` accepts only a well-formed message the
worker may send in its state (`ready` or `init_failed` before its `init()` returned, then `done` or `error` of the
mini-batch it runs). Anything else raises ProtocolError, and the executor stops that worker as one that crashed: its
try is spent (in `init()`: a failed `init()`), and the job goes on (docs/security.md)."""

from __future__ import annotations

import json
import math
import os
import select
import struct
from collections import deque
from dataclasses import MISSING, fields
from multiprocessing.connection import Connection
from typing import Any

from batchpoint.runtime.executor import TryTiming
from batchpoint.runtime.protocol import DONE, ERROR, INIT_FAILED, READY


class ProtocolError(Exception):
    """A worker's reply that is none of the messages it may send now: something in the worker (the script, say) wrote
    into its pipe. The message says what came, briefly."""


class ReplyTooLarge(ProtocolError):
    """A reply longer than MAX_FRAME: a result too large to take (or a length the script wrote)."""


MAX_FRAME = 1 << 30
"""The longest reply taken (a mini-batch's formatted rows); a frame claiming more is refused before it is read."""
MAX_HEADER = 8 << 20
"""The longest message line taken before its payload (a `ready` listing 20,000 modules is about 1 MB)."""
READS_PER_CALL = 16
"""How many reads of up to READ_BYTES one `frames` call makes: a worker writing without end cannot hold the executor."""
READ_BYTES = 1 << 20
HEADER, LONG_HEADER = struct.Struct("!i"), struct.Struct("!Q")
"""multiprocessing's frame header: the length, or -1 then an 8-byte length (`Connection.send_bytes`)."""
FIELDS: dict[str, dict[str, type]] = {
    READY: {},
    INIT_FAILED: {"error": str},
    DONE: {"index": int, "returned": int, "timing": dict},
    ERROR: {"index": int, "error": str, "timing": dict},
}
"""Each reply's fields and their types; `modules`, a list of names, may come with `ready`, `done` and `error`."""
TEACHING = (READY, DONE, ERROR)
MAX_MODULES = 20_000
"""The most module names taken from one reply (a worker of torch and pandas lists about 2,000); they only tell
its template what to import, so what is past it, or no module's name, is dropped rather than refused."""
MAX_MODULE_NAME = 1_000
TIMING_FIELDS = {field.name: field.default is MISSING for field in fields(TryTiming)}
"""`TryTiming`'s fields, each with whether it is required."""
LAST_TIMESTAMP = 253402300799.0
"""The end of year 9999, UTC: the last time a report can show."""
SHOWN = 120
"""How much of a bad reply a message quotes."""


class ReplyPipe:
    """The executor's end of a worker's reply pipe, read without blocking: a frame is taken once it has all arrived."""

    def __init__(self, connection: Connection) -> None:
        self._fd = connection.fileno()
        os.set_blocking(self._fd, False)
        self._buffer = bytearray()
        self._frames: deque[bytes] = deque()
        self.ended = False
        """The worker's end is closed: no more frames will come than those taken."""
        self.broken: ProtocolError | None = None
        """A length that is no frame's came after the frames taken: nothing after it can be read."""

    def frames(self) -> list[bytes]:
        """The frames that have arrived whole since the last call (then see `ended` and `broken`). Raises OSError
        when the pipe cannot be read."""
        self._read()
        taken = list(self._frames)
        self._frames.clear()
        return taken

    def next_frame(self) -> bytes:
        """The next frame, waiting for it (a Ray actor's call, which the executor's deadline bounds). Raises EOFError
        when the worker's end closed first."""
        waiting = select.poll()
        waiting.register(self._fd, select.POLLIN)
        while not self._frames:
            if self.broken is not None:
                raise self.broken
            if self.ended:
                raise EOFError
            waiting.poll()
            self._read()
        return self._frames.popleft()

    def _read(self) -> None:
        if self.broken is not None:
            return
        for _ in range(READS_PER_CALL):
            try:
                chunk = os.read(self._fd, READ_BYTES)
            except BlockingIOError:
                break
            if not chunk:
                self.ended = True
                break
            self._buffer += chunk
        self._split()

    def _split(self) -> None:
        while len(self._buffer) >= HEADER.size:
            (size,), start = HEADER.unpack_from(self._buffer), HEADER.size
            if size == -1:
                if len(self._buffer) < HEADER.size + LONG_HEADER.size:
                    return
                (size,), start = LONG_HEADER.unpack_from(self._buffer, HEADER.size), HEADER.size + LONG_HEADER.size
            if size < 0:
                self.broken = ProtocolError(f"a frame of length {size}")
                return
            if size > MAX_FRAME:
                self.broken = ReplyTooLarge(f"a reply of {size:,} bytes, more than the {MAX_FRAME:,} a reply may hold")
                return
            if len(self._buffer) < start + size:
                return
            with memoryview(self._buffer) as buffer:
                self._frames.append(bytes(buffer[start : start + size]))
            del self._buffer[: start + size]


def reply(frame: bytes, ready: bool, index: int | None = None) -> tuple[dict[str, Any], bytes]:
    """A frame's message and payload, if the worker may send it now: before its `init()` returned (not `ready`),
    `ready` or `init_failed`; after, `done` or `error` of the mini-batch `index` it runs (None: it runs none)."""
    header, _, payload = frame.partition(b"\n")
    if len(header) > MAX_HEADER:
        raise ProtocolError(f"a reply whose message is {len(header):,} bytes long")
    try:
        message = json.loads(header)
    except (ValueError, RecursionError) as error:  # not JSON, not UTF-8, or nested past the parser's depth
        raise ProtocolError(f"a reply that is not a message ({type(error).__name__})") from None
    kind = message.get("kind") if isinstance(message, dict) else None
    if not isinstance(kind, str) or kind not in FIELDS:
        raise ProtocolError(f"a reply that is not a message: {str(message)[:SHOWN]}")
    expected = (DONE, ERROR) if ready else (READY, INIT_FAILED)
    if kind not in expected:
        raise ProtocolError(f"a '{kind}' reply {'after' if ready else 'before'} its init() returned")
    for name, wanted in FIELDS[kind].items():
        if type(message.get(name)) is not wanted:
            raise ProtocolError(f"a '{kind}' reply whose '{name}' is {str(message.get(name))[:SHOWN]}")
    message["modules"] = _modules(message.get("modules")) if kind in TEACHING else None
    if kind in (DONE, ERROR):
        _check_answer(kind, message, index)
    return message, payload


def _modules(modules: Any) -> list[str] | None:
    """The module names a reply lists that are names (dotted identifiers), at most MAX_MODULES of them."""
    if not isinstance(modules, list):
        return None
    names = (name for name in modules if isinstance(name, str) and len(name) <= MAX_MODULE_NAME)
    return [name for name in names if all(part.isidentifier() for part in name.split("."))][:MAX_MODULES]


def _check_answer(kind: str, message: dict[str, Any], index: int | None) -> None:
    if message["index"] != index:
        running = f"mini-batch {index}" if index is not None else "none"
        raise ProtocolError(f"a '{kind}' reply of mini-batch {message['index']} (it was running {running})")
    if kind == DONE and message["returned"] < 0:
        raise ProtocolError(f"a 'done' reply of {message['returned']} rows")
    if not _is_timing(message["timing"]):
        raise ProtocolError(f"a '{kind}' reply whose 'timing' is {str(message['timing'])[:SHOWN]}")


def _is_timing(timing: dict[str, Any]) -> bool:
    """`TryTiming`'s fields only, the required ones given; each a finite number (a duration not negative, `started`
    a time a report can show) or, when optional, None."""
    for name, required in TIMING_FIELDS.items():
        value = timing.get(name)
        if value is None and not required:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        try:
            number = float(value)
        except OverflowError:  # an int of hundreds of digits
            return False
        if not math.isfinite(number) or number < 0 or (name == "started" and number > LAST_TIMESTAMP):
            return False
    return set(timing) <= set(TIMING_FIELDS)


def stopped_for(worker: str, error: ProtocolError, when: str) -> str:
    """Why a worker that sent a bad reply was stopped, for the try's error and the job's logs."""
    if isinstance(error, ReplyTooLarge):
        return f"{worker} sent {error} {when}, and was stopped: return smaller results (a smaller mini-batch)."
    return (
        f"{worker} sent {error} {when}, and was stopped: something in it (the scoring script, or a library it uses) "
        "wrote into the pipe batchpoint reads its answers from."
    )
