"""ARM matches the fixed segments of a path case-insensitively; routes are written in canonical casing."""

from __future__ import annotations

from functools import lru_cache

CANONICAL_SEGMENTS = {
    name.lower(): name
    for name in (
        "subscriptions",
        "resourceGroups",
        "providers",
        "Microsoft.MachineLearningServices",
        "Microsoft.Resources",
        "workspaces",
        "batchEndpoints",
        "deployments",
        "computes",
        "listkeys",
        "locations",
        "mfeOperationsStatus",
        "mfeOperationResults",
        "models",
        "codes",
        "environments",
        "data",
        "datastores",
        "components",
        "versions",
        "jobs",
        "Microsoft.Authorization",
        "roleAssignments",
    )
}


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


@lru_cache(maxsize=4096)
def canonical_path(path: str) -> str:
    """Cached: clients repeat the same few paths, and this runs on every request."""
    if not path[:14].lower().startswith("/subscriptions"):
        return path
    segments = path[1:].split("/")
    for position in _type_positions(segments):
        segments[position] = CANONICAL_SEGMENTS.get(segments[position].lower(), segments[position])
    return "/" + "/".join(segments)
