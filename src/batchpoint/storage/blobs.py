"""File-backed blob containers: the bytes of the local datastores, laid out as plain folders.

Blob names map to paths below the container's folder and can never leave it. Writes go to a temporary
file beside the target and are renamed into place, so a reader never sees half a blob. Metadata and staged
blocks live outside the container folder, so they never show up as data.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from anyio import to_thread

from batchpoint.arm.errors import ArmError

FORBIDDEN_CHARACTERS = ("\\", "\x00")


def invalid_path(name: str, why: str) -> ArmError:
    return ArmError(400, "InvalidResourceName", f"The blob path '{name}' is not allowed: {why}.")


def safe_relative(name: str) -> Path:
    """A blob name as a relative path that stays inside its container (no '..', no absolute paths)."""
    if not name or name.startswith("/"):
        raise invalid_path(name, "it must be a relative path")
    if any(character in name for character in FORBIDDEN_CHARACTERS):
        raise invalid_path(name, "it contains a backslash or NUL character")
    parts = name.split("/")
    if any(part in ("", ".", "..") for part in parts[:-1]) or parts[-1] in (".", ".."):
        raise invalid_path(name, "it contains an empty, '.' or '..' segment")
    return Path(*parts)


@dataclass(frozen=True)
class BlobInfo:
    name: str
    size: int
    modified: datetime
    etag: str
    metadata: dict[str, str]


@dataclass
class BlobContainer:
    """One container: its data folder plus private folders for metadata and staged blocks."""

    root: Path
    state: Path

    def path_of(self, name: str) -> Path:
        candidate = self.root / safe_relative(name)
        root = self.root.resolve()
        resolved = candidate.resolve()
        if resolved != root and root not in resolved.parents:
            raise invalid_path(name, "it leads outside the datastore (through a link)")
        if candidate.is_symlink():
            raise invalid_path(name, "it is a symbolic link")
        return candidate

    def exists(self) -> bool:
        return self.root.is_dir()

    def create(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    async def write(self, name: str, chunks: AsyncIterator[bytes]) -> BlobInfo:
        target = await to_thread.run_sync(self.path_of, name)
        await _receive(target, chunks)
        return await to_thread.run_sync(self._written, name)

    async def stage_block(self, name: str, block_id: str, chunks: AsyncIterator[bytes]) -> None:
        folder = await to_thread.run_sync(self._block_folder_for, name)
        await _receive(folder / _block_file(block_id), chunks)

    def _block_folder_for(self, name: str) -> Path:
        self.path_of(name)
        folder = self._blocks_folder(name)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _written(self, name: str) -> BlobInfo:
        self._metadata_path(name).unlink(missing_ok=True)
        return self.info(name)

    def commit_blocks(self, name: str, block_ids: list[str]) -> BlobInfo:
        target = self.path_of(name)
        folder = self._blocks_folder(name)
        missing = [block for block in block_ids if not (folder / _block_file(block)).exists()]
        if missing:
            raise ArmError(400, "InvalidBlockList", f"Blocks were never staged: {', '.join(missing[:5])}.")
        with _AtomicFile(target) as handle:
            for block in block_ids:
                with open(folder / _block_file(block), "rb") as source:
                    shutil.copyfileobj(source, handle, 1024 * 1024)
        shutil.rmtree(folder, ignore_errors=True)
        return self._written(name)

    def info(self, name: str) -> BlobInfo:
        path = self.path_of(name)
        if not path.is_file():
            raise ArmError(404, "BlobNotFound", f"The blob '{name}' does not exist.")
        return self._info_at(name, path)

    def set_metadata(self, name: str, metadata: dict[str, str]) -> BlobInfo:
        info = self.info(name)
        meta_path = self._metadata_path(name)
        meta_path.parent.mkdir(parents=True, exist_ok=True)
        meta_path.write_text(json.dumps(metadata))
        return BlobInfo(info.name, info.size, info.modified, info.etag, metadata)

    def delete(self, name: str) -> None:
        path = self.path_of(name)
        if not path.is_file():
            raise ArmError(404, "BlobNotFound", f"The blob '{name}' does not exist.")
        path.unlink()
        self._metadata_path(name).unlink(missing_ok=True)

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        """Every blob whose name starts with ``prefix``, in name order, without loading them all at once."""
        if not self.root.is_dir():
            return
        for path in _walk_sorted(self.root):
            name = path.relative_to(self.root).as_posix()
            if name.startswith(prefix):
                yield self._info_at(name, path)

    def _info_at(self, name: str, path: Path) -> BlobInfo:
        stat = path.stat()
        etag = '"0x' + hashlib.sha1(f"{stat.st_mtime_ns}:{stat.st_size}".encode()).hexdigest()[:16].upper() + '"'
        modified = datetime.fromtimestamp(stat.st_mtime, UTC)
        return BlobInfo(name=name, size=stat.st_size, modified=modified, etag=etag, metadata=self._metadata(name))

    def _metadata(self, name: str) -> dict[str, str]:
        path = self._metadata_path(name)
        return json.loads(path.read_text()) if path.exists() else {}

    def _metadata_path(self, name: str) -> Path:
        return self.state / "metadata" / (safe_relative(name).as_posix() + ".json")

    def _blocks_folder(self, name: str) -> Path:
        return self.state / "blocks" / hashlib.sha256(name.encode()).hexdigest()


class _AtomicFile:
    """Write to a temporary file in the target's folder; rename it into place only if the block succeeds."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __enter__(self) -> BinaryIO:
        try:
            self.target.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise ArmError(
                409,
                "InvalidBlobPath",
                f"A blob already exists where '{self.target.parent.name}' would need to be a folder.",
            ) from None
        descriptor, self.temporary = tempfile.mkstemp(prefix=".upload-", dir=self.target.parent)
        self.handle = os.fdopen(descriptor, "wb")
        return self.handle

    def __exit__(
        self, kind: type[BaseException] | None, _value: BaseException | None, _traceback: TracebackType | None
    ) -> None:
        self.handle.close()
        if kind is None:
            os.replace(self.temporary, self.target)
        else:
            os.unlink(self.temporary)


async def _receive(target: Path, chunks: AsyncIterator[bytes]) -> None:
    """Write a request body to ``target`` whole or not at all; the file work runs on worker threads, so the event
    loop only waits for the network."""
    atomic = _AtomicFile(target)
    handle = await to_thread.run_sync(atomic.__enter__)
    try:
        async for chunk in chunks:
            await to_thread.run_sync(handle.write, chunk)
    except BaseException as error:
        await to_thread.run_sync(atomic.__exit__, type(error), error, None)
        raise
    await to_thread.run_sync(atomic.__exit__, None, None, None)


def _block_file(block_id: str) -> str:
    return hashlib.sha256(block_id.encode()).hexdigest()


def _walk_sorted(root: Path) -> Iterator[Path]:
    """Files below ``root`` in blob-name order, skipping in-flight uploads and never following links."""
    entries = sorted(os.scandir(root), key=lambda entry: entry.name + ("/" if entry.is_dir() else ""))
    for entry in entries:
        if entry.is_symlink() or entry.name.startswith(".upload-"):
            continue
        if entry.is_dir():
            yield from _walk_sorted(Path(entry.path))
        elif entry.is_file():
            yield Path(entry.path)
