"""A worker's replies as the executors read them: checked, because the scoring script runs in the worker and can
write into its pipe. Anything that is not one of the worker's messages (`protocol.py`), well formed, raises
ProtocolError, and the executor stops that worker as one that crashed: its try is spent, and the job goes on."""

from __future__ import annotations

from dataclasses import fields
from multiprocessing.connection import Connection
from typing import Any

from batchpoint.runtime.executor import TryTiming
from batchpoint.runtime.protocol import DONE, ERROR, INIT_FAILED, READY, receive


class ProtocolError(Exception):
    """A worker's reply that is none of its messages: something in the worker (the script, say) wrote into its
    pipe. The message says what came, briefly."""


REPLY_FIELDS: dict[str, dict[str, type]] = {
    READY: {},
    INIT_FAILED: {"error": str},
    DONE: {"index": int, "returned": int, "timing": dict},
    ERROR: {"index": int, "error": str, "timing": dict},
}
"""Each reply's fields and their types (`modules`, a list of names, may come with `ready` and `done`)."""
TIMING_FIELDS = frozenset(field.name for field in fields(TryTiming))
SHOWN = 120
"""How much of a bad reply a message quotes."""


def receive_reply(connection: Connection, index: int | None = None) -> tuple[dict[str, Any], bytes]:
    """A worker's next reply: its kind, its fields' types, and for `done` and `error` the mini-batch `index` it was
    sent (None: it was sent none). Raises EOFError when the worker has gone, ProtocolError for anything else."""
    try:
        message, payload = receive(connection)
    except (ValueError, RecursionError) as error:  # not JSON, not UTF-8, or nested past the parser's depth
        raise ProtocolError(f"a reply that is not a message ({type(error).__name__})") from None
    kind = message.get("kind") if isinstance(message, dict) else None
    if kind not in REPLY_FIELDS:
        raise ProtocolError(f"a reply that is not a message: {str(message)[:SHOWN]}")
    for name, expected in REPLY_FIELDS[kind].items():
        if type(message.get(name)) is not expected:
            raise ProtocolError(f"a '{kind}' reply whose '{name}' is {str(message.get(name))[:SHOWN]}")
    modules = message.get("modules")
    if modules is not None and not (isinstance(modules, list) and all(isinstance(name, str) for name in modules)):
        raise ProtocolError(f"a '{kind}' reply whose 'modules' is not a list of names")
    if kind in (DONE, ERROR) and message["index"] != index:
        raise ProtocolError(f"a '{kind}' reply of mini-batch {message['index']}, which it was not running")
    if kind == DONE and message["returned"] < 0:
        raise ProtocolError(f"a 'done' reply of {message['returned']} rows")
    if kind in (DONE, ERROR) and not _is_timing(message["timing"]):
        raise ProtocolError(f"a '{kind}' reply whose 'timing' is {str(message['timing'])[:SHOWN]}")
    return message, payload


def _is_timing(timing: dict[str, Any]) -> bool:
    """`TryTiming`'s fields only, each a number or None, `started` and `elapsed` numbers."""
    numbers = (int, float)
    return (
        set(timing) <= TIMING_FIELDS
        and all(value is None or type(value) in numbers for value in timing.values())
        and all(type(timing.get(name)) in numbers for name in ("started", "elapsed"))
    )


def stopped_for(worker: str, error: ProtocolError, when: str) -> str:
    """Why a worker that sent a bad reply was stopped, for the try's error and the job's logs."""
    return (
        f"{worker} sent {error} {when}, and was stopped: something in it (the scoring script, or a library it uses) "
        "wrote into the pipe batchpoint reads its answers from."
    )
