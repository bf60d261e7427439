"""The log a user watches while a job runs: batchpoint's own lines (progress, failures, step states) and the
lines the job's scripts print, copied from the scripts' own files as they grow.

Azure ML clients read logs by line count (``jobs.stream`` prints the lines past the ones it printed before), so
the file only ever grows at its end. Each write is one whole-lines append under a process-wide lock, so the
lines of the threads that write the same log never mix.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

COLLECT_SECONDS = 1.0
"""How often a followed log copies what the scripts printed."""
MAX_COPY_BYTES = 1 << 20
"""At most this much of one source per collection: a script printing in a tight loop cannot stall the copy."""

Sources = Callable[[], dict[str, Path]]
"""The files to copy from, each with the label its lines get: read at each collection (workers come and go)."""

_append_lock = threading.Lock()


class StreamLog:
    def __init__(self, path: Path, sources: Sources | None = None) -> None:
        self.path = path
        self._sources = sources or dict
        self._offsets: dict[Path, int] = {}
        if path.exists():
            # A job resumed after a crash: what its scripts printed before was copied already (up to the last
            # collection; lines printed in the last second before the crash stay in the scripts' own files only).
            self._offsets = {source: source.stat().st_size for source in self._sources().values() if source.exists()}
        path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, text: str) -> None:
        """Append ``text`` (one or more lines), each line stamped with the time."""
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
        self._append("".join(f"{stamp} {line}\n" for line in text.rstrip("\n").splitlines()))

    def collect(self, final: bool = False) -> None:
        """Copy the complete lines the sources gained since the last collection, each prefixed with its label; the
        `final` collection, once the writers have stopped, copies a last line without a newline too, as a line."""
        for label, source in self._sources().items():
            chunk = self._new_lines(source, final)
            if chunk:
                lines = chunk.decode("utf-8", errors="replace").splitlines()
                self._append("".join(f"[{label}] {line}\n" for line in lines))

    def _new_lines(self, source: Path, final: bool) -> bytes:
        offset = self._offsets.get(source, 0)
        try:
            with open(source, "rb") as file:
                file.seek(offset)
                chunk = file.read(MAX_COPY_BYTES)
        except FileNotFoundError:
            return b""
        whole = chunk if final or len(chunk) == MAX_COPY_BYTES else chunk[: chunk.rfind(b"\n") + 1]
        self._offsets[source] = offset + len(whole)
        return whole

    def _append(self, text: str) -> None:
        if text:
            with _append_lock, open(self.path, "a", encoding="utf-8", errors="replace") as log:
                log.write(text)


@contextmanager
def followed(log: StreamLog, interval: float = COLLECT_SECONDS) -> Iterator[StreamLog]:
    """Collect ``log``'s sources every ``interval`` seconds on a thread, and a final time at the end (the job's
    processes have stopped writing: what they left without a newline is copied too)."""
    stop = threading.Event()

    def follow() -> None:
        while not stop.wait(interval):
            log.collect()

    thread = threading.Thread(target=follow, name=f"log {log.path.name}", daemon=True)
    thread.start()
    try:
        yield log
    finally:
        stop.set()
        thread.join()
        log.collect(final=True)
