"""What a job writes to its output folder, exactly once and never half-written (Decisions 6, 7, 9, 10).

append_row: each successful try's rows are appended, as one checksummed record, to the job's private rows log
(`.batchpoint/<job>/rows.<generation>.log` in the output folder: each writer of the job has its own, see below).
A background thread makes appended records durable with one `fdatasync` for all records appended meanwhile (group
commit), so a slow disk does not slow the dispatch of mini-batches; the coordinator records a success in the
ledger only once its record is durable. At the end the records of the succeeded mini-batches are copied, in
mini-batch order and each checked again (header and checksum), to a temporary file that is fsynced and linked to
`output_file_name`: a link never replaces a file, so an output is committed once, whoever commits it.

After a crash the logs are read back, a torn last record of the writer's own log is cut off, and for each
mini-batch the last complete record of the newest writer counts: an earlier one came from a try whose success
never reached the ledger, which ran it again.

Writers: a coordinator runs under a *generation* (its ledger's: the lease epoch of the server process that claimed
the job). It holds the job's folder lock (`JobLock`), which names its generation; a newer generation takes the lock
over from an older holder that is alive but stuck (a frozen process, a host cut off), and the older one finds its
lock lost (`JobLock.held`) before it commits anything, rather than trusting it. Each writer appends to its own log,
so a stuck writer that resumes for a moment never overwrites a newer writer's records.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import shutil
import struct
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from batchpoint.runtime.ledger import TakenOver
from batchpoint.runtime.spec import APPEND_ROW, JobSpec
from batchpoint.runtime.stop_points import stop_point

RECORD = struct.Struct(">4sQQI")
"""Record header: magic, mini-batch index, length of the rows, CRC-32 of the rows."""
MAGIC = b"BPR1"
CHUNK = 1 << 20
LOG_NAME = re.compile(r"rows(?:\.(\d+))?\.log")
"""A writer's rows log, `rows.<generation>.log`; `rows.log` is the log of a version before generations."""
NO_HARD_LINKS = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP})
"""What `link` raises on a file system without hard links (some SMB and FUSE mounts)."""


class OutputExistsError(Exception):
    """Decision 10: the output file already exists, so the job would overwrite it. The API answers 400."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"The output file '{path}' already exists; a batch job never overwrites or appends to it.")
        self.path = path


class JobAlreadyRunningError(Exception):
    """Another coordinator (in this or another process) is running the same job on the same output folder."""


class JobLockLost(TakenOver):
    """A newer writer of the job took its folder lock over: this coordinator stops and writes nothing more."""


class MissingRowsError(Exception):
    """Rows the ledger says were committed are not in the rows log (it was removed behind the job's back), or
    their record no longer reads back as written."""


def check_output_available(spec: JobSpec) -> None:
    """Raise OutputExistsError if the job's output file exists; call it when the job is submitted. (A remote
    destination is checked when the job starts: `remote_output.remote_output_problem`.)"""
    target = spec.output_file
    if target is not None and target.exists():
        raise OutputExistsError(target)


class JobLock:
    """An exclusive lock on the job's private folder (released by the kernel if the server dies), held by one
    generation of the job's writers: the lock file names it. A newer generation takes the lock over from an older
    holder by putting a lock file of its own in place; an older generation never gets it."""

    def __init__(self, spec: JobSpec, generation: int = 0) -> None:
        self._path = spec.private_dir / "lock"
        self._generation = generation
        self._fd: int | None = None

    def __enter__(self) -> JobLock:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                locked = True
            except BlockingIOError:
                locked = False
            holder = _generation_in(fd)
            if holder > self._generation:
                raise JobLockLost(f"A newer writer (generation {holder}) has taken the job's folder {self._folder}.")
            if locked:
                _write_generation(fd, self._generation)
            elif 0 <= holder < self._generation:
                os.close(fd)
                fd = -1
                fd = self._take_over()
            else:  # held by the same generation, or by one that has not said which yet
                raise JobAlreadyRunningError(f"Job '{self._folder.name}' is already running on {self._home}.")
        except BaseException:
            if fd >= 0:
                os.close(fd)
            raise
        self._fd = fd
        if not self.held():  # replaced or removed between our open and our lock: look again later
            self.__exit__(None, None, None)
            raise JobAlreadyRunningError(f"Job '{self._folder.name}' changed hands while it was locked; try again.")
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def held(self) -> bool:
        """The lock file in place is still the one this holds (not taken over, not removed)."""
        assert self._fd is not None
        try:
            current = os.stat(self._path)
        except FileNotFoundError:
            return False
        mine = os.fstat(self._fd)
        return (current.st_dev, current.st_ino) == (mine.st_dev, mine.st_ino)

    def check(self) -> None:
        """Raise JobLockLost if the lock is no longer held."""
        if not self.held():
            raise JobLockLost(f"The lock of the job's folder {self._folder} was taken over or removed.")

    @property
    def _folder(self) -> Path:
        return self._path.parent

    @property
    def _home(self) -> Path:
        return self._folder.parent.parent

    def _take_over(self) -> int:
        """A lock file of our own, locked and naming our generation, renamed over the older holder's."""
        fresh = self._path.with_name(f"lock.{self._generation}.{os.getpid()}")
        fd = os.open(fresh, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            _write_generation(fd, self._generation)
            os.rename(fresh, self._path)
        except BaseException:
            os.close(fd)
            fresh.unlink(missing_ok=True)
            raise
        return fd


def _generation_in(fd: int) -> int:
    """The generation a lock file names; -1 for none (a new file, or a version before generations)."""
    text = os.pread(fd, 32, 0).strip()
    return int(text) if text.isdigit() else -1


def _write_generation(fd: int, generation: int) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(generation).encode(), 0)


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
    def write(self, indexes: Iterable[int], before_commit: Callable[[], None]) -> Path | None:
        """Write the final output from the rows of `indexes` (ascending); returns its path, None if there is none.
        `before_commit` is called right before the output is put in place, and may refuse it by raising."""

    @abstractmethod
    def close(self) -> None:
        """Release files and threads; committed rows stay on disk for a later resume."""


def open_output(spec: JobSpec, generation: int = 0) -> Output:
    return AppendRowOutput(spec, generation) if spec.output_action == APPEND_ROW else SummaryOnlyOutput()


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

    def write(self, indexes: Iterable[int], before_commit: Callable[[], None]) -> Path | None:
        return None

    def close(self) -> None:
        """Nothing to release: no file, no thread."""


@dataclass(frozen=True, slots=True)
class _Record:
    """Where a mini-batch's rows are: in which log (its open file), at which offset, how long."""

    fd: int
    offset: int
    length: int


class AppendRowOutput(Output):
    def __init__(self, spec: JobSpec, generation: int = 0) -> None:
        assert spec.output_file is not None
        self._target = spec.output_file
        self._temporary = spec.private_dir / f"output.{generation}.tmp"  # whatever the length of the output's name
        self._log = spec.private_dir / f"rows.{generation}.log"
        self._log.parent.mkdir(parents=True, exist_ok=True)
        self._records: dict[int, _Record] = {}
        """Mini-batch index -> its record; the last one of the newest writer wins."""
        self._others = [os.open(path, os.O_RDONLY) for path in _older_logs(self._log)]
        for fd in self._others:
            _index(fd, self._records)
        self._fd = os.open(self._log, os.O_RDWR | os.O_CREAT, 0o644)
        _fsync_dir(self._log.parent)
        self._end = _index(self._fd, self._records)
        os.ftruncate(self._fd, self._end)  # a torn last record of our own
        self._unsynced: list[int] = []
        self._syncing: list[int] = []
        self._sync: Future[None] | None = None
        self._syncer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batchpoint-fsync")

    def add(self, index: int, rows: bytes) -> None:
        record = RECORD.pack(MAGIC, index, len(rows), zlib.crc32(rows)) + rows
        written = 0
        while written < len(record):
            written += os.pwrite(self._fd, memoryview(record)[written:], self._end + written)
        self._records[index] = _Record(self._fd, self._end + RECORD.size, len(rows))
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

    def write(self, indexes: Iterable[int], before_commit: Callable[[], None]) -> Path:
        if self._target.exists():
            return self._target  # committed before the server died; it was absent when the job was planned
        try:
            with open(self._temporary, "wb") as out:
                for index in indexes:
                    for chunk in self._rows(index):
                        out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            before_commit()
            stop_point("output-commit", str(self._target))
            _commit(self._temporary, self._target)
        finally:
            self._temporary.unlink(missing_ok=True)  # committed, or a full disk say: nothing half-written stays
        _fsync_dir(self._target.parent)
        return self._target

    def close(self) -> None:
        self._syncer.shutdown(wait=True)
        for fd in (self._fd, *self._others):
            os.close(fd)

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
        """The record's rows, checked again as they are read: its header, then its checksum."""
        record = self._records.get(index)
        if record is None:
            raise MissingRowsError(f"The committed rows of mini-batch {index} are missing from {self._log.parent}.")
        header = os.pread(record.fd, RECORD.size, record.offset - RECORD.size)
        magic, stored_index, length, checksum = RECORD.unpack(header) if len(header) == RECORD.size else (b"", 0, 0, 0)
        if (magic, stored_index, length) != (MAGIC, index, record.length):
            raise MissingRowsError(f"The record of mini-batch {index} in {self._log.parent} was overwritten.")
        crc = 0
        for chunk in _chunks(record.fd, record.offset, record.length):
            crc = zlib.crc32(chunk, crc)
            yield chunk
        if crc != checksum:
            raise MissingRowsError(f"The rows of mini-batch {index} in {self._log.parent} fail their checksum.")


def _older_logs(own: Path) -> list[Path]:
    """The other writers' logs of the job, oldest generation first (a version before generations: oldest)."""
    logs = []
    for path in own.parent.iterdir():
        match = LOG_NAME.fullmatch(path.name)
        if match is not None and path != own:
            logs.append((int(match[1]) if match[1] is not None else -1, path))
    return [path for _, path in sorted(logs)]


def _index(fd: int, records: dict[int, _Record]) -> int:
    """Index a log's complete records (a later one of a mini-batch replaces an earlier); returns where they end."""
    size = os.fstat(fd).st_size
    offset = 0
    while offset + RECORD.size <= size:
        magic, index, length, checksum = RECORD.unpack(os.pread(fd, RECORD.size, offset))
        start = offset + RECORD.size
        if magic != MAGIC or start + length > size or _crc32(fd, start, length) != checksum:
            break
        records[index] = _Record(fd, start, length)
        offset = start + length
    return offset


def _commit(temporary: Path, target: Path) -> None:
    """Put the output in place unless it is there already: committed by another writer of the job (a replica that
    took it over), whose rows are the same committed rows. A link never replaces a file; a file system without
    hard links gets a rename of what is not there yet."""
    try:
        os.link(temporary, target)
    except FileExistsError:
        return
    except OSError as error:
        if error.errno not in NO_HARD_LINKS:
            raise
        if not target.exists():
            os.replace(temporary, target)


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
