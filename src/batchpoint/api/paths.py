"""ARM matches the fixed segments of a path case-insensitively; routes are written in canonical casing."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from batchpoint.arm.registry import ResourceType

FIXED_SEGMENTS = (
    "subscriptions",
    "providers",
    "listkeys",
    "locations",
    "mfeOperationsStatus",
    "mfeOperationResults",
    "vmSizes",
    "Microsoft.Authorization",
    "roleAssignments",
)
"""The segments of the routes written by hand; each registered resource type adds its collection (and its
provider namespace)."""


class PathCanonicalizer:
    def __init__(self, types: Iterable[ResourceType]) -> None:
        segments = [*FIXED_SEGMENTS]
        for each in types:
            segments += [each.collection, *([each.namespace] if each.namespace else [])]
        self._canonical = {name.lower(): name for name in segments}
        self.canonical_path = lru_cache(maxsize=4096)(self._canonical_path)
        """Cached: clients repeat the same few paths, and this runs on every request."""

    def _canonical_path(self, path: str) -> str:
        if not path[:14].lower().startswith("/subscriptions"):
            return path
        segments = path[1:].split("/")
        for position in _type_positions(segments):
            segments[position] = self._canonical.get(segments[position].lower(), segments[position])
        return "/" + "/".join(segments)


def _type_positions(segments: list[str]) -> list[int]:
    """Indexes of the fixed (type) segments of an ARM path; names in between keep their casing."""
    lowered = [segment.lower() for segment in segments]
    positions: list[int] = []
    index = 0
    if index < len(segments) and lowered[index] == "subscriptions":
        positions.append(index)
        index += 2
    if index < len(segments) and lowered[index] == "resourcegroups":
        positions.append(index)
        index += 2
    if index < len(segments) and lowered[index] == "providers":
        positions += [index, index + 1]
        index += 2
        positions += list(range(index, len(segments), 2))
    return [position for position in positions if position < len(segments)]
