"""What a job writes to its output folder, exactly once and never half-written (Decisions 6, 7, 9, 10).

append_row: each successful try's rows are appended, as one checksummed record, to the job's private rows log
(`.batchpoint/<job>/rows.log` in the output folder). A background thread makes appended records durable with
one `fdatasync` for all records appended meanwhile (group commit), so a slow disk does not slow the dispatch
of mini-batches; the coordinator records a success in the ledger only once its record is durable. At the end
the records of the succeeded mini-batches are copied, in mini-batch order, to a temporary file that is fsynced
and renamed to `output_file_name`.

After a crash the log is read back, a torn last record is cut off, and for each mini-batch the last complete
record counts: any earlier one came from a try whose success never reached the ledger, which ran it again.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import struct
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType

from batchpoint.runtime.spec import APPEND_ROW, JobSpec

RECORD = struct.Struct(">4sQQI")
"""Record header: magic, mini-batch index, length of the rows, CRC-32 of the rows."""
MAGIC = b"BPR1"
CHUNK = 1 << 20


class OutputExistsError(Exception):
    """Decision 10: the output file already exists, so the job would overwrite it. The API answers 400."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"The output file '{path}' already exists; a batch job never overwrites or appends to it.")
        self.path = path


class JobAlreadyRunningError(Exception):
    """Another coordinator (in this or another process) is running the same job on the same output folder."""


class MissingRowsError(Exception):
    """Rows the ledger says were committed are not in the rows log (it was removed behind the job's back)."""


def check_output_available(spec: JobSpec) -> None:
    """Raise OutputExistsError if the job's output file exists; call it when the job is submitted. (A remote
    destination is checked when the job starts: `remote_output.remote_output_problem`.)"""
    target = spec.output_file
    if target is not None and target.exists():
        raise OutputExistsError(target)


class JobLock:
    """An exclusive lock on the job's private folder, released by the kernel if the server dies."""

    def __init__(self, spec: JobSpec) -> None:
        self._path = spec.private_dir / "lock"
        self._fd: int | None = None

    def __enter__(self) -> JobLock:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            job = self._path.parent
            raise JobAlreadyRunningError(f"Job '{job.name}' is already running on {job.parent.parent}.") from None
        self._fd = fd
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def remove_private_dir(spec: JobSpec) -> None:
    """Forget the job's committed rows: once its output is written, or when it ends without one."""
    shutil.rmtree(spec.private_dir, ignore_errors=True)
    with contextlib.suppress(OSError):  # other jobs may share the folder
        spec.private_dir.parent.rmdir()


class Output(ABC):
    """Where the coordinator commits the rows of successful tries."""

    @abstractmethod
    def add(self, index: int, rows: bytes) -> None:
        """Commit a successful try's rows; they are durable once `committed` or `flush` has returned the index."""

    @abstractmethod
    def committed(self) -> list[int]:
        """Indexes whose rows became durable since the last call; never waits."""

    @abstractmethod
    def flush(self) -> list[int]:
        """Wait until every added index is durable; returns those not reported yet."""

    @abstractmethod
    def write(self, indexes: Iterable[int]) -> Path | None:
        """Write the final output from the rows of `indexes` (ascending); returns its path, None if there is none."""

    @abstractmethod
    def close(self) -> None:
        """Release files and threads; committed rows stay on disk for a later resume."""


def open_output(spec: JobSpec) -> Output:
    return AppendRowOutput(spec) if spec.output_action == APPEND_ROW else SummaryOnlyOutput()


class SummaryOnlyOutput(Output):
    """Decision 9: no predictions file; a try's success is final as soon as it is known."""

    def __init__(self) -> None:
        self._done: list[int] = []

    def add(self, index: int, rows: bytes) -> None:
        self._done.append(index)

    def committed(self) -> list[int]:
        done, self._done = self._done, []
        return done

    def flush(self) -> list[int]:
        return self.committed()

    def write(self, indexes: Iterable[int]) -> Path | None:
        return None

    def close(self) -> None:
        """Nothing to release: no file, no thread."""


class AppendRowOutput(Output):
    def __init__(self, spec: JobSpec) -> None:
        assert spec.output_file is not None
        self._target = spec.output_file
        self._temporary = spec.output_file.with_name(f".{spec.output_file_name}.{spec.job_id}.tmp")
        self._log = spec.private_dir / "rows.log"
        self._log.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self._log, os.O_RDWR | os.O_CREAT, 0o644)
        _fsync_dir(self._log.parent)
        self._records: dict[int, tuple[int, int]] = {}
        """Mini-batch index -> (offset, length) of its rows in the log; the last record wins."""
        self._end = self._recover()
        self._unsynced: list[int] = []
        self._syncing: list[int] = []
        self._sync: Future[None] | None = None
        self._syncer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batchpoint-fsync")

    def add(self, index: int, rows: bytes) -> None:
        record = RECORD.pack(MAGIC, index, len(rows), zlib.crc32(rows)) + rows
        written = 0
        while written < len(record):
            written += os.pwrite(self._fd, memoryview(record)[written:], self._end + written)
        self._records[index] = (self._end + RECORD.size, len(rows))
        self._end += len(record)
        self._unsynced.append(index)
        self._start_sync()

    def committed(self) -> list[int]:
        return self._harvest(wait=False)

    def flush(self) -> list[int]:
        done: list[int] = []
        while self._sync is not None:
            done += self._harvest(wait=True)
        return done

    def write(self, indexes: Iterable[int]) -> Path:
        if self._target.exists():
            return self._target  # written before the server died; it was absent when the job was planned
        try:
            with open(self._temporary, "wb") as out:
                for index in indexes:
                    for chunk in self._rows(index):
                        out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(self._temporary, self._target)
        except BaseException:
            self._temporary.unlink(missing_ok=True)  # a full disk, say: nothing half-written stays behind
            raise
        _fsync_dir(self._target.parent)
        return self._target

    def close(self) -> None:
        self._syncer.shutdown(wait=True)
        os.close(self._fd)

    def _start_sync(self) -> None:
        if self._sync is None and self._unsynced:
            self._syncing, self._unsynced = self._unsynced, []
            self._sync = self._syncer.submit(os.fdatasync, self._fd)

    def _harvest(self, wait: bool) -> list[int]:
        if self._sync is None or not (wait or self._sync.done()):
            return []
        self._sync.result()
        done, self._syncing, self._sync = self._syncing, [], None
        self._start_sync()
        return done

    def _rows(self, index: int) -> Iterator[bytes]:
        if index not in self._records:
            raise MissingRowsError(f"The committed rows of mini-batch {index} are missing from {self._log}.")
        offset, length = self._records[index]
        return _chunks(self._fd, offset, length)

    def _recover(self) -> int:
        """Index the complete records and cut off a torn tail; returns where the next record goes."""
        size = os.fstat(self._fd).st_size
        offset = 0
        while offset + RECORD.size <= size:
            magic, index, length, checksum = RECORD.unpack(os.pread(self._fd, RECORD.size, offset))
            start = offset + RECORD.size
            if magic != MAGIC or start + length > size or _crc32(self._fd, start, length) != checksum:
                break
            self._records[index] = (start, length)
            offset = start + length
        os.ftruncate(self._fd, offset)
        return offset


def _chunks(fd: int, offset: int, length: int) -> Iterator[bytes]:
    end = offset + length
    while offset < end:
        chunk = os.pread(fd, min(CHUNK, end - offset), offset)
        if not chunk:
            raise MissingRowsError(f"The rows log ends before offset {end}.")
        yield chunk
        offset += len(chunk)


def _crc32(fd: int, offset: int, length: int) -> int:
    checksum = 0
    for chunk in _chunks(fd, offset, length):
        checksum = zlib.crc32(chunk, checksum)
    return checksum


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
