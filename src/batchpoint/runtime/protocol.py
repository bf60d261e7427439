"""Messages between the local executor and its worker processes, over a pair of pipes.

Each message is one frame: a line of JSON `{"kind": ..., ...}`, then a raw payload (the formatted rows of a
`done`, empty otherwise). JSON rather than pickle, so that a scoring script cannot make the server unpickle
anything; one frame per message, so that a mini-batch costs one write and one wake-up each way.

Executor to worker: `boot` (read by the sandbox's boot, `sandbox/boot.py`, before the worker runs), `config`
(once), then `run` or `stop`. A `run` may be sent while the worker still runs
the one before: it waits in the pipe, and the worker starts it as soon as it has answered the one before.
Worker to executor: `ready` (after `init()`) or `init_failed`, then `done` or `error` for each `run`. The worker's
side is untrusted (the scoring script runs there and can write to its pipe): the executors read its replies with
`replies.ReplyPipe` and `replies.reply`, which refuse anything else.
"""

from __future__ import annotations

import json
from multiprocessing.connection import Connection
from typing import Any

BOOT, CONFIG, RUN, STOP = "boot", "config", "run", "stop"
READY, INIT_FAILED, DONE, ERROR = "ready", "init_failed", "done", "error"


def send(connection: Connection, kind: str, payload: bytes = b"", **fields: Any) -> None:
    connection.send_bytes(encode(kind, payload, **fields))


def encode(kind: str, payload: bytes = b"", **fields: Any) -> bytes:
    """One message's frame, for a sender that must know its size before it writes it."""
    return json.dumps({"kind": kind, **fields}).encode() + b"\n" + payload


def receive(connection: Connection) -> tuple[dict[str, Any], bytes]:
    """The next message and its payload; raises EOFError when the other side has gone."""
    header, _, payload = connection.recv_bytes().partition(b"\n")  # JSON escapes its newlines
    message: dict[str, Any] = json.loads(header)
    return message, payload
