"""Input listing and mini-batch planning (Decision 5), as iterators so that a large input is never held twice."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path


class InputNotFoundError(Exception):
    """An input path is neither a file nor a folder."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"Input path '{path}' does not exist or is neither a file nor a folder.")
        self.path = path


def iter_input_files(paths: Iterable[Path]) -> Iterator[str]:
    """Absolute paths of the input files: a file is one item (`uri_file`); a folder is walked recursively.

    A folder's files come sorted by relative path, compared component by component, which is the order of a
    depth-first walk over sorted folder entries. Hidden files and folders (name starting with `.`) are skipped;
    symbolic links to folders are not followed (as `os.walk`), so a link cycle cannot loop."""
    for path in paths:
        absolute = os.path.abspath(path)
        if os.path.isfile(absolute):
            yield absolute
        elif os.path.isdir(absolute):
            yield from _walk(absolute)
        else:
            raise InputNotFoundError(Path(absolute))


def _walk(folder: str) -> Iterator[str]:
    with os.scandir(folder) as entries:
        children = sorted(
            (entry.name, entry.is_dir(follow_symlinks=False))
            for entry in entries
            if not entry.name.startswith(".") and (entry.is_file() or entry.is_dir(follow_symlinks=False))
        )
    for name, is_folder in children:
        path = os.path.join(folder, name)
        if is_folder:
            yield from _walk(path)
        else:
            yield path


def plan_mini_batches(files: Iterable[str], size: int) -> Iterator[tuple[str, ...]]:
    """Consecutive runs of `size` files (the last one shorter), in input order."""
    iterator = iter(files)
    while batch := tuple(islice(iterator, size)):
        yield batch
